"""Issue 16 blockers 1 and 2, driven the way a newcomer hit them: the emulator CLI against a
real host and issuer simulator over TCP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

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
