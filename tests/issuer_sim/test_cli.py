"""`poshost issuer-sim` subcommands and the demo card file."""

from __future__ import annotations

import signal
import subprocess
import sys

import trio
from click.testing import CliRunner

from host.cli import main
from tests.host.harness import free_port
from tools.issuer_sim.cards import format_cards, load_cards
from tools.issuer_sim.config import DEMO_KEYS, SPECS_DIR
from tools.issuer_sim.demo import HEADER, demo_cards
from tools.issuer_sim.ledger import Ledger
from tools.issuer_sim.security import IssuerKeys
from tools.issuer_sim.testing import PIN, RICH, Builder, connect


def test_shipped_demo_cards_match_the_generator_and_hold_no_pins():
    text = (SPECS_DIR / "cards.toml").read_text()
    assert text == format_cards(demo_cards(), HEADER)
    assert "pin =" not in text
    keys = IssuerKeys(DEMO_KEYS)
    for card in load_cards(SPECS_DIR / "cards.toml"):
        assert card.pvv == keys.generate_pvv(card.pan, "1234", card.pvki)
    statuses = {c.status for c in load_cards(SPECS_DIR / "cards.toml")}
    assert statuses == {"active", "lost", "stolen", "blocked"}


def test_cards_add_list_and_reset(tmp_path):
    runner = CliRunner()
    cards = tmp_path / "cards.toml"
    state = tmp_path / "state.sqlite"
    base = ["issuer-sim", "--cards", str(cards), "--state", str(state)]
    r = runner.invoke(
        main,
        [*base, "cards", "add", "6222021234567890", "--expiry", "2912", "--pin", "4321",
         "--balance", "5000", "--daily-limit", "2000", "--label", "mine"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "622202******7890" in r.output
    text = cards.read_text()
    assert "4321" not in text.replace("6222021234567890", "")
    card = load_cards(cards)[0]
    assert card.pvv == IssuerKeys(DEMO_KEYS).generate_pvv("6222021234567890", "4321", 1)
    dup = ["cards", "add", "6222021234567890", "--expiry", "2912", "--pin", "1111"]
    again = runner.invoke(main, [*base, *dup])
    assert again.exit_code != 0 and "already" in again.output
    r = runner.invoke(main, [*base, "cards", "list"])
    assert r.exit_code == 0, r.output
    assert "622202******7890" in r.output and "6222021234567890" not in r.output
    # live state: spend, list shows it, reset restores
    r = runner.invoke(main, [*base, "reset"])
    assert r.exit_code == 0, r.output
    ledger = Ledger(state)
    ledger._db.execute("UPDATE cards SET balance = 1")
    ledger.close()
    assert "           1" in runner.invoke(main, [*base, "cards", "list"]).output
    runner.invoke(main, [*base, "reset"])
    ledger = Ledger(state)
    assert ledger.balance("6222021234567890") == 5000
    ledger.close()


def test_help_lists_subcommands():
    r = CliRunner().invoke(main, ["issuer-sim", "--help"])
    assert r.exit_code == 0
    for word in ("cards", "reset", "--rules", "--script", "--control", "--latency", "--record"):
        assert word in r.output


RULE_05 = '[[rule]]\nname = "coded"\namount = 111\nresponse = "05"\n'
RULE_51 = RULE_05.replace('"05"', '"51"')
NEW_ZPK = "1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A"


def test_a_bad_rules_file_names_file_line_and_rule_without_a_traceback(tmp_path):
    rules = tmp_path / "rules.toml"
    cases = {
        '# one rule\n[rule]\nresponse = "05"\n': ":2: [rule] declares a single table",
        RULE_05 + '\n[[rule]]\nname = "typo"\nmti = 200\nresponse = "05"\n': (
            ":6: rule 'typo': mti = 200 must be a string in quotes, e.g. mti = \"0200\""
        ),
        '[[rule]]\nmti = "200"\nresponse = "05"\n': ":1: rule 'rule 1': mti '200' is not 4 digits",
        "[[rule]\n": ": not valid TOML",
    }
    for text, message in cases.items():
        rules.write_text(text)
        args = ["issuer-sim", "--rules", str(rules), "--state", str(tmp_path / "s.sqlite")]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert f"{rules}{message}" in result.output
        assert "Traceback" not in result.output


def test_key_options_are_checked_and_never_echoed(tmp_path):
    base = ["issuer-sim", "--state", str(tmp_path / "s.sqlite")]
    result = CliRunner().invoke(main, [*base, "--zpk", "NOTHEX" * 6])
    assert result.exit_code == 2 and "key zpk: not hexadecimal" in result.output
    assert "NOTHEX" not in result.output
    result = CliRunner().invoke(main, [*base, "--pvk", "ABCD"])
    assert result.exit_code == 2 and "key pvk: 4 hex digits, expected 32" in result.output


def test_serve_with_zpk_option_and_sighup_reloads_the_rules(tmp_path):
    """The real command in its own process: --zpk is the key PIN blocks are checked under,
    and SIGHUP rereads the rules file (a broken file keeps the rules in force)."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULE_05)
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "from host.cli import main; main()",
        "issuer-sim",
        "--listen",
        f"127.0.0.1:{port}",
    ]
    cmd += ["--state", str(tmp_path / "s.sqlite"), "--rules", str(rules), "--zpk", NEW_ZPK]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    b = Builder()

    async def code(msg) -> str:
        async with await connect(port) as c:
            return (await c.request(msg))[39]

    async def body():
        with trio.fail_after(20):
            while True:
                try:
                    await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                    break
                except OSError:
                    await trio.sleep(0.1)
            assert await code(b.purchase(RICH, 100, pin=PIN, zpk=NEW_ZPK)) == "00"
            assert await code(b.purchase(RICH, 100, pin=PIN)) == "55"  # the demo ZPK is gone
            assert await code(b.purchase(RICH, 111)) == "05"
            rules.write_text(RULE_51)
            proc.send_signal(signal.SIGHUP)
            while await code(b.purchase(RICH, 111)) != "51":
                await trio.sleep(0.05)
            rules.write_text("[rule]\n")
            proc.send_signal(signal.SIGHUP)
            await trio.sleep(0.3)
            assert await code(b.purchase(RICH, 111)) == "51"

    try:
        trio.run(body)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "rules reloaded" in out and "rules not reloaded, keeping the old ones" in out
    assert f"{rules}:1: [rule] declares a single table" in out
    assert NEW_ZPK not in out
