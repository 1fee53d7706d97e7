"""`poshost issuer-sim` subcommands and the demo card file."""

from __future__ import annotations

from click.testing import CliRunner

from host.cli import main
from tools.issuer_sim.cards import format_cards, load_cards
from tools.issuer_sim.config import DEMO_KEYS, SPECS_DIR
from tools.issuer_sim.demo import HEADER, demo_cards
from tools.issuer_sim.ledger import Ledger
from tools.issuer_sim.security import IssuerKeys


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
