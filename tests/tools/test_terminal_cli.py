"""`poshost terminal` against a real host and issuer simulator, one subcommand at a time."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner

from codec import terminal as terminal_codec
from codec.txntypes import identify
from tools.terminal.cli import terminal
from tools.terminal.state import TerminalState

RICH = "6222020000000001"


class Pos:
    """Runs `poshost terminal` commands on one state file."""

    def __init__(self, stack, path, profile):
        self.stack, self.path, self.profile = stack, path, profile

    def __call__(self, *args, ok=True):
        result = CliRunner().invoke(
            terminal,
            ["--state", str(self.path), "--profile", self.profile, "--host", self.stack.address,
             "--timeout", "5", *args],
        )  # fmt: skip
        if ok:
            assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    @property
    def state(self) -> TerminalState:
        return TerminalState.load(self.path)

    def last(self):
        return self.state.log[-1]


def balance(stack, pan=RICH) -> int:
    async def get():
        return (await stack.stack.sim.card(pan)).balance

    return stack.call(get)


def wait_balance(stack, expected, pan=RICH, timeout=5.0) -> int:
    """The host forwards reversals to the issuer by store-and-forward: poll for the effect."""
    deadline = time.monotonic() + timeout
    while (value := balance(stack, pan)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def served(stack, flow: str) -> bool:
    return flow in stack.stack.running.host.flows


@pytest.fixture(scope="module")
def pos(stack, tmp_path_factory):
    p = Pos(stack, tmp_path_factory.mktemp("t") / "terminal.json", "demo:12345678")
    p("sign-on")
    return p


@pytest.mark.parametrize("tid", ["12345679", "12345680"])  # key modes 001 and 004
def test_sign_on_echo_sign_off(stack, tmp_path, tid):
    p = Pos(stack, tmp_path / "t.json", f"demo:{tid}")
    out = p("sign-on").output
    assert "signed on: batch 000001" in out
    state = p.state
    assert len(state.mak) == 8 and len(state.pik) == (8 if tid == "12345679" else 16)
    assert (state.tdk is not None) == (tid == "12345680")
    assert "00 APPROVED" in p("echo").output
    p("sign-off")
    assert p.state.mak is None
    # Without keys the terminal refuses to build a MAC'd message.
    r = p("purchase", "--amount", "100", "--pan", RICH, ok=False)
    assert r.exit_code != 0 and "sign on first" in r.output


def test_state_file_holds_clear_test_keys_and_is_private(pos):
    data = json.loads(pos.path.read_text())
    assert data["keys"]["tmk"] == "11111111111111112222222222222222"
    assert "TEST" in data["note"]
    assert pos.path.stat().st_mode & 0o077 == 0


def test_purchase_with_pin_prints_both_copies_and_debits_the_card(stack, pos):
    before = balance(stack)
    out = pos("--trace", "purchase", "--amount", "1234", "--pan", RICH, "--expiry", "3012",
              "--pin", "1234").output  # fmt: skip
    assert out.count("MERCHANT COPY") == 1 and out.count("CARDHOLDER COPY") == 1
    assert "622202******0001" in out and RICH not in out  # masked in receipts and dumps
    assert "AMOUNT       12.34 CNY" in out and "00 APPROVED" in out and "POSHOST DEMO SHOP" in out
    assert out.count("ENTRY MODE   MANUAL + PIN") == 2
    # A PIN was verified: no signature line on either copy; the date carries the year.
    assert out.count("PIN VERIFIED") == 2 and "SIGNATURE" not in out
    assert re.search(r"DATE/TIME    20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", out)
    assert "0200 purchase" in out and "0210 purchase" in out  # --trace: both messages
    entry = pos.last()
    assert entry.status == "approved" and len(entry.rrn) == 12 and entry.auth_code
    assert f"REF NO       {entry.rrn}" in out
    assert balance(stack) == before - 1234


def test_wrong_pin_is_declined_55(pos):
    r = pos("purchase", "--amount", "100", "--pan", RICH, "--pin", "9999", ok=False)
    assert r.exit_code == 3 and "55 INCORRECT PIN" in r.output
    assert pos.last().status == "declined" and pos.state.pending_reversal is None


def test_balance_by_track2_prompts_for_the_pin(pos):
    r = CliRunner().invoke(
        terminal,
        ["--state", str(pos.path), "--host", pos.stack.address, "balance",
         "--track2", f"{RICH}=30121010000000000000", "--ask-pin"],
        input="1234\n",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert re.search(r"AVAILABLE    -?[\d,]+\.\d\d CNY", r.output), r.output
    assert "BALANCE INQUIRY" in r.output and "ENTRY MODE   SWIPE + PIN" in r.output


def test_dukpt_terminal_purchase(stack, tmp_path):
    p = Pos(stack, tmp_path / "d.json", "demo:12345681")
    p("sign-on")
    ksn0 = p.state.ksn
    assert "00 APPROVED" in p("purchase", "--amount", "500", "--pan", RICH, "--pin", "1234").output
    assert p.state.ksn != ksn0  # the PIN pad advanced its KSN counter


def test_reverse_undoes_the_last_purchase_at_the_issuer(stack, pos):
    pos("purchase", "--amount", "777", "--pan", RICH, "--pin", "1234")
    before = balance(stack)
    out = pos("reverse").output
    assert "00 APPROVED" in out
    assert pos.last().status == "reversed"
    assert wait_balance(stack, before + 777) == before + 777


def test_late_response_makes_the_terminal_reverse_by_itself(stack, pos):
    async def slow(ms):
        stack.stack.sim.update_settings({"latency": f"fixed:{ms}"})

    stack.call(slow, 2500)
    try:
        r = CliRunner().invoke(
            terminal,
            ["--state", str(pos.path), "--host", pos.stack.address, "--timeout", "1",
             "purchase", "--amount", "300", "--pan", RICH, "--pin", "1234"],
        )  # fmt: skip
    finally:
        stack.call(slow, 0)
    assert r.exit_code != 0
    assert "no response in time" in r.output and "REVERSED     reason 98" in r.output
    state = pos.state
    assert state.pending_reversal is None and state.log[-1].status == "reversed"


@pytest.mark.parametrize(
    ("command", "txn_type", "flow"),
    [
        (["preauth", "--amount", "2000", "--pan", RICH, "--pin", "1234"], "preauth", "preauth"),
        (["completion", "--amount", "1800"], "completion", "completion"),
        (["completion-void"], "completion_void", "completion_void"),
        (["preauth", "--amount", "900", "--pan", RICH], "preauth", "preauth"),
        (["preauth-cancel"], "preauth_cancel", "preauth_cancel"),
        (["purchase", "--amount", "4200", "--pan", RICH], "purchase", "purchase"),
        (["void"], "void", "void"),
        (["purchase", "--amount", "5100", "--pan", RICH], "purchase", "purchase"),
        (["refund", "--amount", "100"], "refund", "refund"),
    ],
)
def test_every_financial_subcommand_sends_its_type(stack, pos, command, txn_type, flow):
    """Each subcommand sends the message the terminal dialect names; the host answers 00 when it
    serves the flow and 40 (function not supported) while it does not."""
    originals = {"completion": "preauth", "completion_void": "completion", "void": "purchase",
                 "preauth_cancel": "preauth", "refund": "purchase"}  # fmt: skip
    if txn_type in originals:  # name the original explicitly: it may have been declined 40
        stan = next(e.stan for e in reversed(pos.state.log) if e.type == originals[txn_type])
        command = [*command, "--stan", stan]
    r = pos(*command, ok=False)
    entry = pos.last()
    assert entry.type == txn_type
    request = terminal_codec.decode(bytes.fromhex(entry.request))
    assert identify(request).name == txn_type
    if txn_type in ("void", "completion_void", "preauth_cancel", "completion", "refund"):
        original = next(e for e in pos.state.log if e.stan == entry.original_stan)
        assert str(request[61])[6:12] == original.stan  # 61 names the original
        assert request.get(37) == (original.rrn or None)
    expected = "00" if served(stack, flow) else "40"
    assert entry.code == expected, r.output
    assert r.exit_code == (0 if expected == "00" else 2)
    if txn_type in ("void", "completion_void", "preauth_cancel", "completion", "refund"):
        assert r.output.count(f"ORIG TRACE   {entry.original_stan}") == 2, r.output
    if txn_type in ("void", "refund") and expected == "00":
        # money going back to the card is negative on the slip
        assert re.search(r"AMOUNT       -[\d,]+\.\d\d CNY", r.output), r.output
    if expected == "00" and "--pin" not in command:
        assert r.output.count("CARDHOLDER SIGNATURE") == 1  # the merchant copy only


def test_transfer_moves_money_between_two_cards_and_the_slip_masks_both(stack, pos):
    payee = "6222020000000007"
    before = balance(stack), balance(stack, payee)
    out = pos("transfer", "--amount", "1500", "--to", payee, "--pan", RICH, "--pin", "1234").output
    assert out.count("TRANS TYPE   TRANSFER") == 2 and "00 APPROVED" in out
    assert out.count("TO CARD      622202******0007") == 2 and payee not in out
    entry = pos.last()
    assert (entry.type, entry.status) == ("transfer", "approved")
    request = terminal_codec.decode(bytes.fromhex(entry.request))
    assert identify(request).name == "transfer" and request[48] == payee
    assert (balance(stack), balance(stack, payee)) == (before[0] - 1500, before[1] + 1500)
    typo = pos("transfer", "--amount", "100", "--to", "6222020000000008", "--pan", RICH, ok=False)
    assert typo.exit_code == 3 and "14 INVALID CARD NUMBER" in typo.output
    bad = pos("transfer", "--amount", "100", "--to", "6222-0200", "--pan", RICH, ok=False)
    assert bad.exit_code == 2 and "payee" in bad.output


def test_settle_from_the_terminals_own_log(stack, pos):
    state = pos.state
    r = pos("settle", ok=False)
    assert f"batch {state.batch}: debits" in r.output
    if served(stack, "settlement"):
        assert r.exit_code == 0, r.output
        assert "closed; new batch" in r.output
        assert pos.state.batch != state.batch and not pos.state.log
        # the settlement slip: totals per type, signed, and the host's verdict
        assert "SETTLEMENT" in r.output and "domestic balanced" in r.output, r.output
        sales = [e for e in state.log if e.type == "purchase" and e.status in ("approved",
                 "voided")]  # fmt: skip
        total = sum(e.amount for e in sales)
        assert re.search(rf"SALE\s+{len(sales)}\s+{total / 100:,.2f}\n", r.output), r.output
        assert re.search(r"VOID\s+\d+\s+-[\d,]+\.\d\d\n", r.output), r.output
        # a transfer is captured as a debit on both sides: the terminal's totals balanced
        transfers = [e for e in state.log if e.type == "transfer" and e.status == "approved"]
        if transfers:
            total = sum(e.amount for e in transfers)
            pattern = rf"TRANSFER\s+{len(transfers)}\s+{total / 100:,.2f}\n"
            assert re.search(pattern, r.output), r.output
        assert "NET (CAPTURED)" in r.output
    else:
        assert "40 FUNCTION NOT SUPPORTED" in r.output
        assert pos.state.batch == state.batch  # nothing closed without the host's answer
