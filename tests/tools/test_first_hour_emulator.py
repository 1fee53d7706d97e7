"""Issue 16 blockers 1 and 2, driven the way a newcomer hit them: the emulator CLI against a
real host and issuer simulator over TCP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from tools.certify.stack import ThreadedStack
from tools.terminal.cli import terminal
from tools.terminal.state import TerminalState

RICH = "6222020000000001"


def run(stack, *args):
    base = ["--host", stack.address, "--timeout", "5"]
    return CliRunner().invoke(terminal, [*base, *args], catch_exceptions=False)


def test_sign_on_first_then_the_stale_reversal_goes_out(stack, tmp_path):
    """Another tool re-keys the TID; the emulator's purchase then fails its response MAC and
    leaves an A0 reversal pending. `sign-on` must still work and then send that reversal."""
    mine, other = tmp_path / "mine.json", tmp_path / "other.json"
    profile = ["--profile", "demo:12345678"]
    assert run(stack, "--state", str(mine), *profile, "sign-on").exit_code == 0
    shutil.copy(mine, other)  # the other tool: same TID, its own memory
    assert run(stack, "--state", str(other), *profile, "sign-on").exit_code == 0
    card = ["--pan", RICH, "--expiry", "3012", "--pin", "1234"]
    # A MACed request under the new MAK puts the other tool's keys in force.
    assert run(stack, "--state", str(other), *profile, "balance", *card).exit_code == 0
    bought = run(stack, "--state", str(mine), *profile, "purchase", "--amount", "100", *card)
    assert bought.exit_code != 0
    assert TerminalState.load(mine).pending_reversal is not None, bought.output

    signed = run(stack, "--state", str(mine), *profile, "sign-on")
    assert signed.exit_code == 0, signed.output
    assert "signed on" in signed.output
    assert "pending reversal of STAN" in signed.output and ": 00 " in signed.output
    state = TerminalState.load(mine)
    assert state.pending_reversal is None
    assert state.log[-1].status == "reversed"
    assert run(stack, "--state", str(mine), *profile, "echo").exit_code == 0


def test_each_terminal_keeps_its_own_state_file(stack, tmp_path, monkeypatch):
    """`--profile demo:12345681` used to overwrite 12345678's state (its batch log and pending
    reversal). Now each TID has var/terminals/TID.json; commands without --profile talk to the
    terminal last named."""
    runner = CliRunner()
    base = ["--host", stack.address, "--timeout", "5"]
    card = ["--pan", RICH, "--expiry", "3012", "--pin", "1234"]
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(terminal, [*base, "--profile", "demo:12345679", "sign-on"])
    assert first.exit_code == 0, first.output
    bought = runner.invoke(terminal, [*base, "purchase", "--amount", "100", *card])
    assert bought.exit_code == 0, bought.output
    other = runner.invoke(terminal, [*base, "--profile", "demo:12345681", "status"])
    assert other.exit_code == 0 and "terminal 12345681" in other.output
    mine = TerminalState.load(Path("var/terminals/12345679.json"))
    assert [e.status for e in mine.log] == ["approved"] and mine.mak is not None
    assert Path("var/terminals/12345681.json").exists()
    # Without --profile: the terminal last named (12345681), not 12345679.
    shown = runner.invoke(terminal, [*base, "status", "--json"])
    assert json.loads(shown.output)["tid"] == "12345681"
    back = runner.invoke(terminal, [*base, "--profile", "demo:12345679", "status"])
    assert "purchase" in back.output and "approved" in back.output
    # An explicit --state holding another terminal is refused, not silently reset.
    clash = runner.invoke(
        terminal,
        [
            *base,
            "--state",
            "var/terminals/12345679.json",
            "--profile",
            "demo:12345681",
            "status",
        ],
    )
    assert clash.exit_code != 0 and "holds terminal 12345679" in clash.output
    assert TerminalState.load(Path("var/terminals/12345679.json")).log


def test_load_uses_its_own_terminals_and_leaves_the_emulator_alone(stack, tmp_path):
    """The first `load` run got 29 x 94 and re-keyed a demo terminal under the emulator. Now load
    provisions LT terminals in the host's journal (through the root --config) and uses them."""
    from host.cli import main

    mine = tmp_path / "mine.json"
    profile = ["--state", str(mine), "--profile", "demo:12345680"]
    card = ["--pan", RICH, "--expiry", "3012", "--pin", "1234"]
    assert run(stack, *profile, "sign-on").exit_code == 0
    assert run(stack, *profile, "purchase", "--amount", "100", *card).exit_code == 0

    config = tmp_path / "host.toml"
    config.write_text(f'[data]\ndir = "{stack.data_dir / "host"}"\n')
    loaded = CliRunner().invoke(
        main,
        ["--config", str(config), "load", "--host", stack.address, "--terminals", "2",
         "--rate", "20", "--duration", "1", "--quiet", "--state", str(tmp_path / "stans.json"),
         "--json", str(tmp_path / "load.json")],
    )  # fmt: skip
    assert loaded.exit_code == 0, loaded.output
    assert "added 2 load terminal(s)" in loaded.output
    summary = json.loads((tmp_path / "load.json").read_text())
    assert summary["response_codes"] == {"00": 20} and not summary["errors"]
    stans = json.loads((tmp_path / "stans.json").read_text())
    assert sorted(stans) == ["LT000001", "LT000002"]
    # The emulator's keys and STANs are still its own: the next purchase is approved.
    again = run(stack, *profile, "purchase", "--amount", "100", *card)
    assert again.exit_code == 0, again.output
    assert TerminalState.load(mine).log[-1].code == "00"


CERT_SUITE = """[suite]
name = "mini"
[[case]]
id = "purchase"
profile = "demo:12345679"
[[case.step]]
send = "purchase"
pan = "6222020000000001"
amount = 100
pin = "1234"
expect = { code = "00" }
"""


def test_certify_against_a_running_host_uses_its_own_terminals(tmp_path):
    """certify --host re-keyed the demo terminal under the emulator. Now it adds a twin
    (C2345679: same merchant, key mode, TEST TMK) to the host's journal and runs on that."""
    with ThreadedStack(tmp_path / "stack") as own:  # the emulator starts at STAN 1 here
        _certify_beside_the_emulator(own, tmp_path)


def _certify_beside_the_emulator(stack, tmp_path):
    from host.cli import main
    from host.store import SyncStore

    mine = tmp_path / "mine.json"
    profile = ["--state", str(mine), "--profile", "demo:12345679"]
    card = ["--pan", RICH, "--expiry", "3012", "--pin", "1234"]
    assert run(stack, *profile, "sign-on").exit_code == 0
    suite = tmp_path / "mini.toml"
    suite.write_text(CERT_SUITE)
    config = tmp_path / "host.toml"
    config.write_text(f'[data]\ndir = "{stack.data_dir / "host"}"\n')
    out = tmp_path / "out"
    certified = CliRunner().invoke(
        main,
        ["--config", str(config), "certify", str(suite), "--host", stack.address,
         "--out", str(out)],
    )  # fmt: skip
    assert certified.exit_code == 0, certified.output
    assert json.loads((out / "stans.json").read_text()).keys() == {"C2345679"}
    with SyncStore.open(f"sqlite:///{stack.data_dir / 'host' / 'poshost.sqlite'}") as store:
        twin = store.get_terminal("C2345679")
        assert twin.mid == "123456789012345" and twin.key_mode == "001"
    again = run(stack, *profile, "purchase", "--amount", "100", *card)
    assert again.exit_code == 0, again.output


def test_certify_host_without_a_reachable_journal_says_so(tmp_path, monkeypatch):
    from host.cli import main

    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "mini.toml"
    suite.write_text(CERT_SUITE)
    import socket

    with socket.socket() as listener:  # a host that answers the connect, but no journal here
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        r = CliRunner().invoke(main, ["certify", str(suite), "--host", host],
                               env={"POSHOST_CONFIG": None})  # fmt: skip
    assert r.exit_code == 4 and "--demo-terminals" in r.output
    assert not (tmp_path / "var" / "poshost.sqlite").exists()
