"""``poshost terminal``: a UnionPay-style POS terminal on the command line.

    poshost terminal --profile demo:12345678 sign-on
    poshost terminal purchase --amount 1000 --pan 6222020000000001 --expiry 3012 --pin 1234
    poshost terminal void                  # the last approved purchase
    poshost terminal settle

The terminal's memory (keys, batch, STAN, log) lives in the --state file (JSON). It holds TEST
keys in clear, as a PIN pad's secure memory would: never put a production key in it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click
import trio

from codec import subfields, txntypes
from host.harness import DECLINED, Unreachable, format_amount, signed_amount
from tools.terminal.device import HostUnreachable, TerminalError
from tools.terminal.pos import Outcome, Pos, receipt, response_text, settlement_slip
from tools.terminal.state import (
    LogEntry,
    StateError,
    TerminalState,
    current_state_path,
    from_profile,
    merchant_name_of,
    remember_current,
    state_path_for,
)


class Ctx:
    def __init__(self, state_path: Path | None, host: str | None, trace: bool, timeout: float,
                 profile: str | None):  # fmt: skip
        self.state_path = state_path
        self.host = host
        self.trace = trace
        self.timeout = timeout
        self.profile = profile

    def resolve_path(self) -> Path:
        """--state when given; else the profile's own file; else the terminal last named."""
        if self.state_path is not None:
            return self.state_path
        if self.profile:
            tid = self.profile.partition(":")[2]
            if not tid.isalnum():
                raise StateError(f"unknown profile {self.profile!r}: use demo:TID")
            return state_path_for(tid)
        return current_state_path()

    def pos(self) -> Pos:
        path = self.resolve_path()
        if self.profile:
            state = TerminalState.load(path) if path.exists() else None
            if state is not None and state.profile != self.profile:
                raise StateError(
                    f"{path} holds terminal {state.tid} ({state.profile}), not {self.profile}: "
                    "drop --state (each terminal gets its own file) or name another file"
                )
            if state is None:
                state = from_profile(self.profile, self.host)
                state.save(path)
            if self.state_path is None:
                remember_current(state.tid)
        else:
            state = TerminalState.load(path)
        if self.host:
            state.host = self.host
        return Pos(state, path, timeout=self.timeout, trace=click.echo if self.trace else None)


def _run(fn):
    """Run an async command body; terminal and state errors become clean CLI errors."""

    @functools.wraps(fn)
    @click.pass_obj
    def wrapper(ctx: Ctx, **kwargs):
        try:
            pos = ctx.pos()
            trio.run(functools.partial(fn, pos, **kwargs))
        except HostUnreachable as exc:
            raise Unreachable(str(exc)) from exc
        except (TerminalError, StateError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


# What a void can name: the settled types that an undoing type undoes (purchase, completion),
# and the QR sales, which void and refund by the same rows (docs/qr.md).
VOIDABLE = (
    *(txntypes.TYPES[t].undoes or "" for t in txntypes.UNDOING_SETTLED),
    *txntypes.QR_SALES,
)


@click.group()
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The terminal's state file (JSON; TEST keys in clear). Default: var/terminals/TID.json "
    "of the --profile's terminal, else of the terminal last named with --profile.",
)
@click.option("--profile", help="Initialise the state from a profile, e.g. demo:12345678.")
@click.option("--host", help="HOST:PORT of the acquiring host (default: the state's, :8583).")
@click.option("--trace", is_flag=True, help="Print masked dumps of every message.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Response timeout.")
@click.pass_context
def terminal(ctx: click.Context, state_path, profile, host, trace, timeout) -> None:
    """A UnionPay-style POS terminal emulator with its own state file."""
    ctx.obj = Ctx(state_path, host, trace, timeout, profile)


def _finish(pos: Pos, txn_type: str, out: Outcome, *, receipts: bool = True) -> None:
    if receipts and out.response is not None and txn_type not in ("management",):
        click.echo(receipt(pos.state, txn_type, out, "merchant"))
        click.echo(receipt(pos.state, txn_type, out, "cardholder"))
    elif out.response is not None:
        click.echo(f"{out.code} {response_text(out.code)}")
    if out.processing == 3:
        click.echo("host asks: sign on again")
    if out.error:
        if receipts and out.response is None:
            click.echo(receipt(pos.state, txn_type, out, "merchant"))
        raise click.ClickException(out.error)
    if out.code != "00":
        raise SystemExit(DECLINED)


# -- management ------------------------------------------------------------------------------


@terminal.command("sign-on")
@click.option("--operator", default="01", show_default=True, help="Operator number.")
@click.option("--password", default="", help="Operator password (sent after the number in 63).")
@click.option("--mode", type=click.Choice(["001", "003", "004"]), help="Key layout override.")
@_run
async def sign_on(pos: Pos, operator: str, password: str, mode: str | None) -> None:
    """Sign on: receive new PIK/MAK (and TDK) under the TMK, adopt the host's batch."""
    if mode:
        pos.device.key_mode = pos.state.key_mode = mode
    request = pos.device.sign_on_request(f"{operator:<3}"[:3] + password[:12])
    out, reversal = await pos.sign_on(request)
    if out.code == "00":
        click.echo(f"signed on: batch {pos.device.batch}, key mode {pos.device.key_mode}")
    if reversal is not None:
        code = reversal.code
        click.echo(
            f"pending reversal of STAN {reversal.request[11]} sent: {code} {response_text(code)}"
        )
    _finish(pos, "management", out, receipts=False)


@terminal.command("sign-off")
@_run
async def sign_off(pos: Pos) -> None:
    """Sign off: the host forgets the session; the terminal drops its working keys. The 0820
    carries a MAC under the MAK, so the host knows it comes from this terminal."""
    out = await pos.exchange(pos.device.sign_off_request())
    if out.code == "00":
        pos.device.pik = pos.device.mak = pos.device.tdk = None
        pos.save()
    _finish(pos, "management", out, receipts=False)


@terminal.command("echo")
@_run
async def echo(pos: Pos) -> None:
    """Echo test (0820, 60.3 301)."""
    _finish(pos, "management", await pos.exchange(pos.device.management_request("0820", "301")))


# -- card input ------------------------------------------------------------------------------


def card_options(fn):
    fn = click.option("--pan", help="Card number (manual entry).")(fn)
    fn = click.option("--expiry", help="YYMM.")(fn)
    fn = click.option("--track2", help="Track 2, e.g. 6222020000000001=30121010000000000000.")(fn)
    fn = click.option("--pin", help="PIN (test cards only; use --ask-pin to type it).")(fn)
    fn = click.option("--ask-pin", is_flag=True, help="Prompt for the PIN without echo.")(fn)
    return fn


def _card(pan, expiry, track2, pin, ask_pin, required=True) -> dict:
    if ask_pin:
        pin = click.prompt("PIN", hide_input=True)
    if track2 and not pan:
        pan_part, _, rest = track2.partition("=")
        expiry = expiry or (rest[:4] if len(rest) >= 4 else None)
        return {"track2": track2, "pin": pin, "_pan": pan_part, "_expiry": expiry or ""}
    if not pan:
        if required:
            raise click.UsageError("give the card: --pan (and --expiry) or --track2")
        return {"pin": pin, "_pan": "", "_expiry": ""}
    return {"pan": pan, "expiry": expiry, "pin": pin, "_pan": pan, "_expiry": expiry or ""}


def _request_kwargs(card: dict) -> dict:
    return {k: v for k, v in card.items() if not k.startswith("_") and v is not None}


async def _financial(pos: Pos, txn_type: str, amount: int | None, card: dict, **extra) -> None:
    original: LogEntry | None = extra.pop("original_entry", None)
    # a sale of another till (the master voiding a secondary's sale) is not in this log
    other_till = extra.pop("other_till", False)
    req_kwargs = _request_kwargs(card)
    if original is not None:
        req_kwargs.update(
            rrn=original.rrn or None,
            auth_code=original.auth_code or None,
            original=subfields.Field61(original.batch, original.stan, original.date or "0000"),
        )
    req_kwargs.update(extra)
    request = pos.device.financial_request(txn_type, amount=amount, **req_kwargs)
    entry = LogEntry(
        type=txn_type,
        stan=str(request[11]),
        batch=pos.device.batch,
        amount=amount or 0,
        pan=card["_pan"],
        expiry=card["_expiry"],
        original_stan=original.stan if original is not None and not other_till else "",
    )
    if txn_type == "balance_inquiry":
        out = await pos.exchange(request)
    else:
        out = await pos.transact(txn_type, request, entry)
    _finish(pos, txn_type, out)


def _amount(value: str) -> int:
    """Amount in minor units (fen): 1000 = 10.00."""
    if not value.isdigit() or int(value) <= 0:
        raise click.BadParameter("a positive whole number of fen (1000 = 10.00)")
    return int(value)


amount_option = click.option(
    "--amount", required=True, callback=lambda c, p, v: _amount(v), help="Minor units (fen)."
)


@terminal.command()
@amount_option
@card_options
@_run
async def purchase(pos: Pos, amount, pan, expiry, track2, pin, ask_pin) -> None:
    """Sale (0200, 3 = 000000, 60.1 = 22)."""
    await _financial(pos, "purchase", amount, _card(pan, expiry, track2, pin, ask_pin))


@terminal.command()
@card_options
@_run
async def balance(pos: Pos, pan, expiry, track2, pin, ask_pin) -> None:
    """Balance inquiry (0200, 3 = 310000)."""
    await _financial(pos, "balance_inquiry", None, _card(pan, expiry, track2, pin, ask_pin))


@terminal.command()
@amount_option
@card_options
@_run
async def preauth(pos: Pos, amount, pan, expiry, track2, pin, ask_pin) -> None:
    """Pre-authorization (0100, 3 = 030000, 25 = 06)."""
    await _financial(pos, "preauth", amount, _card(pan, expiry, track2, pin, ask_pin))


def _payee(value: str) -> str:
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise click.BadParameter("the payee's card number: up to 19 digits")
    return value


@terminal.command()
@amount_option
@click.option(
    "--to", "payee", required=True, callback=lambda c, p, v: _payee(v),
    help="The payee's card number (PAN): its issuer credits it.",
)  # fmt: skip
@card_options
@_run
async def transfer(pos: Pos, amount, payee, pan, expiry, track2, pin, ask_pin) -> None:
    """Card-to-card transfer (0200, 3 = 400000, 60.1 = 47, the payee's PAN in 48): this card
    is debited, the --to card credited. Reversible like a sale."""
    card = _card(pan, expiry, track2, pin, ask_pin)
    await _financial(pos, "transfer", amount, card, payee=payee)


def _follow_up(name: str, types: tuple[str, ...], help_text: str, other_tills: bool = False):
    """voids, cancels and completions: they name an original from the log (default: the last
    approved one of ``types``) and send its card, amount, RRN, auth code and 61. With
    ``other_tills``, ``--rrn`` names a sale of another till instead (docs/tills.md): its RRN,
    its till's batch and STAN and its date, as that till's slip prints them."""

    def other_till_options(fn):
        if not other_tills:
            return fn
        fn = click.option("--rrn", help="RRN of another till's sale (a master voiding it).")(fn)
        fn = click.option("--orig-batch", help="That till's batch (with --rrn).")(fn)
        return click.option("--date", "orig_date", help="MMDD of the sale (with --rrn).")(fn)

    @click.option("--stan", help="STAN of the original in this terminal's log (default: last).")
    @click.option("--amount", help="Amount in fen (default: the original's).")
    @other_till_options
    @card_options
    @_run
    async def command(pos: Pos, stan, amount, pan, expiry, track2, pin, ask_pin, **other):
        if other.get("rrn"):
            if not (stan and other.get("orig_batch") and other.get("orig_date") and amount):
                raise click.UsageError(
                    "--rrn needs --stan, --orig-batch, --date, --amount and the card"
                )
            card = _card(pan, expiry, track2, pin, ask_pin)
            original = LogEntry(
                types[0], f"{int(stan):06d}", other["orig_batch"], _amount(amount),
                card["_pan"], rrn=other["rrn"], date=other["orig_date"],
            )  # fmt: skip
            await _financial(
                pos, name, original.amount, card, original_entry=original, other_till=True
            )
            return
        original = pos.state.find(stan, types)
        card = _card(pan, expiry, track2, pin, ask_pin, required=False)
        if not card["_pan"] and original.pan:
            card.update(pan=original.pan, _pan=original.pan, _expiry=original.expiry)
            if original.expiry:
                card["expiry"] = original.expiry
        value = _amount(amount) if amount else original.amount
        await _financial(pos, name, value, card, original_entry=original)

    command.__doc__ = help_text
    return terminal.command(name.replace("_", "-").replace("preauth-", "preauth-"))(command)


_follow_up(
    "void", ("purchase", *txntypes.QR_SALES),
    "Void a purchase or QR sale of this batch, or with --rrn a sale of another till of this"
    " master's group (0200, 3 = 200000, 60.1 = 23).",
    other_tills=True,
)  # fmt: skip
_follow_up(
    "preauth_cancel", ("preauth",), "Cancel a pre-authorization (0100, 3 = 200000, 60.1 = 11)."
)
_follow_up("completion", ("preauth",), "Complete a pre-authorization (0200, 25 = 06, 60.1 = 20).")
_follow_up("completion_void", ("completion",), "Void a completion (0200, 3 = 200000, 60.1 = 21).")


@terminal.command()
@click.option("--stan", help="STAN of a purchase in this terminal's log (default: last one).")
@click.option("--rrn", help="RRN of the original (a sale of an earlier batch or day).")
@click.option("--date", "orig_date", help="MMDD of the original (with --rrn).")
@click.option("--amount", help="Amount to refund in fen (default: the original's).")
@card_options
@_run
async def refund(pos: Pos, stan, rrn, orig_date, amount, pan, expiry, track2, pin, ask_pin):
    """Refund (0220, 3 = 200000, 60.1 = 25): 37 names the original's RRN, 61 its date."""
    if rrn:
        card = _card(pan, expiry, track2, pin, ask_pin)
        if not amount:
            raise click.UsageError("--rrn needs --amount")
        original = LogEntry(
            "purchase", "000000", "000000", 0, card["_pan"], rrn=rrn, date=orig_date or "0000"
        )
    else:
        original = pos.state.find(stan, VOIDABLE)
        card = _card(pan, expiry, track2, pin, ask_pin, required=False)
        if not card["_pan"] and original.pan:
            card.update(pan=original.pan, _pan=original.pan, _expiry=original.expiry)
    value = _amount(amount) if amount else original.amount
    # 38 is not sent with a refund; 61 carries the original's batch, STAN and date.
    original.auth_code = ""
    await _financial(pos, "refund", value, card, original_entry=original)


# -- QR wallet payments (docs/qr.md) ----------------------------------------------------------


@terminal.command("qr-pay")
@amount_option
@click.option("--code", required=True, help="The payment code scanned off the customer's phone.")
@_run
async def qr_pay(pos: Pos, amount: int, code: str) -> None:
    """Pay by the customer's payment code (0200, 60.1 = 36, the code in 48). The host may wait
    for the customer to confirm ("user paying") before it answers."""
    request = pos.device.financial_request("qr_pay", amount=amount, extra={48: code, 22: "032"})
    entry = LogEntry(type="qr_pay", stan=str(request[11]), batch=pos.device.batch, amount=amount,
                     pan="")  # fmt: skip
    _finish(pos, "qr_pay", await pos.transact("qr_pay", request, entry))


@terminal.command("qr-order")
@amount_option
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the QR here (default var/terminals/<TID>-qr-<STAN>.png).")  # fmt: skip
@_run
async def qr_order(pos: Pos, amount: int, png_path: Path | None) -> None:
    """Show a QR for the customer to scan (0200, 60.1 = 37): printed here as text and saved as
    PNG. Then `poshost terminal qr-query` says whether it was paid."""
    request = pos.device.financial_request("qr_order", amount=amount, extra={22: "032"})
    entry = LogEntry(type="qr_order", stan=str(request[11]), batch=pos.device.batch,
                     amount=amount, pan="")  # fmt: skip
    out = await pos.transact("qr_order", request, entry)
    if out.code == "00" and out.response is not None:
        content = str(out.response.get(63, ""))[3:]
        path = png_path or Path("var/terminals") / f"{pos.state.tid}-qr-{request[11]}.png"
        click.echo(show_qr(content, path))
        rrn = out.response.get(37)
        click.echo(f"order RRN {rrn}: waiting for the customer; QR saved to {path}")
        click.echo(f"content {content}")
        return
    _finish(pos, "qr_order", out)


def show_qr(content: str, path: Path) -> str:
    """The QR as text for this terminal window, saved as PNG too (segno, pure Python)."""
    import io

    import segno

    qr = segno.make(content, error="m")
    path.parent.mkdir(parents=True, exist_ok=True)
    qr.save(str(path), scale=8, border=4)
    text = io.StringIO()
    qr.terminal(out=text, compact=True, border=2)
    return text.getvalue()


@terminal.command("qr-query")
@click.option("--rrn", help="RRN of the order (default: the last order waiting in the log).")
@_run
async def qr_query(pos: Pos, rrn: str | None) -> None:
    """Has the order been paid? (0200, 60.1 = 38, 37 names it): 00 paid, 09 not yet, 12 closed."""
    entry = None
    if rrn is None:
        waiting = [e for e in pos.state.log if e.type in txntypes.QR_SALES
                   and e.status in ("ordered", "unknown") and e.rrn]  # fmt: skip
        if not waiting:
            raise click.UsageError("no order waits in this terminal's log: give --rrn")
        entry, rrn = waiting[-1], waiting[-1].rrn
    else:
        entry = next((e for e in pos.state.log if e.rrn == rrn), None)
    out = await pos.exchange(pos.device.financial_request("qr_query", rrn=rrn))
    if out.response is not None and entry is not None:
        if out.code == "00":
            entry.status, entry.auth_code = "approved", str(out.response.get(38, "") or "")
        elif out.code == "12":
            entry.status = "closed"
        pos.save()
    if out.code == "00" and out.response is not None:
        amount = int(str(out.response.get(4, "0")) or 0)
        click.echo(f"order {rrn}: PAID {format_amount(amount)}, auth {out.response.get(38, '-')}")
        return
    if out.response is not None:
        click.echo(f"order {rrn}: {out.code} {response_text(out.code)}")
    if out.error:
        raise click.ClickException(out.error)
    raise SystemExit(DECLINED)


@terminal.command()
@click.option("--reason", default="06", show_default=True, help="39 of the 0400.")
@_run
async def reverse(pos: Pos, reason: str) -> None:
    """Reverse the last approved reversible transaction of the batch (0400)."""
    out = await pos.reverse_last(reason)
    click.echo(f"reversal of STAN {out.request[11]}: {out.code} {response_text(out.code)}")
    if out.code != "00":
        raise SystemExit(DECLINED)


@terminal.command()
@_run
async def settle(pos: Pos) -> None:
    """Batch settlement (0500) with totals from the terminal's own log; batch upload (0320)
    when the host says not balanced; then the batch closes and its number advances."""
    batch = pos.device.batch
    domestic, foreign = pos.totals()
    entries = [e for e in pos.state.log if e.batch == batch]
    click.echo(
        f"batch {batch}: debits {domestic.debit_count + foreign.debit_count} / "
        f"{format_amount(domestic.debit_amount + foreign.debit_amount)}, credits "
        f"{domestic.credit_count + foreign.credit_count} / "
        f"{format_amount(domestic.credit_amount + foreign.credit_amount)}"
    )
    out, uploads = await pos.settle()
    if out.response is None:
        raise click.ClickException(out.error or "no response")
    if out.code != "00":
        click.echo(settlement_slip(pos.state, batch, entries, out, response_text(out.code)))
        raise SystemExit(DECLINED)
    dom, forn = subfields.parse_field48_settlement(str(out.response[48]))
    words = {"1": "balanced", "2": "NOT balanced", "3": "error"}
    verdict = f"domestic {words.get(dom.result, dom.result)}, foreign {words.get(forn.result)}"
    click.echo(settlement_slip(pos.state, batch, entries, out, verdict))
    if uploads:
        codes = ", ".join(str(u.code) for u in uploads)
        click.echo(f"batch upload: {len(uploads)} message(s), answers {codes}")
    click.echo(f"batch {batch} closed; new batch {pos.device.batch}")


@terminal.command()
@click.option("--json", "as_json", is_flag=True, help="The whole state (keys hidden) as JSON.")
@click.pass_obj
def status(ctx: Ctx, as_json: bool) -> None:
    """Show the terminal: TID, batch, STAN, keys loaded, pending reversal, the batch's log."""
    try:
        state = ctx.pos().state
    except StateError as exc:
        raise click.ClickException(str(exc)) from exc
    data = state.to_dict()
    data["keys"] = {k: ("loaded" if v else None) for k, v in data["keys"].items()}
    for e in data["log"]:
        e.pop("request", None)
        e["pan"] = e["pan"][:6] + "****" + e["pan"][-4:] if e["pan"] else ""
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"terminal {state.tid} merchant {state.mid} host {state.host}")
    loaded = [name.upper() for name, value in data["keys"].items() if value and name != "ksn"]
    click.echo(
        f"batch {state.batch} stan {state.stan:06d} "
        f"signed on: {'yes' if state.mak is not None else 'no'} "
        f"keys loaded: {' '.join(loaded) or 'none'}"
    )
    if state.pending_reversal:
        click.echo(f"pending reversal (reason {state.pending_reversal['reason']})")
    for e in data["log"]:
        money = format_amount(signed_amount(e["amount"], e["type"])) if e["amount"] else "-"
        click.echo(
            f"  {e['stan']} {e['type']:16} {money:>16} {e['pan']:20} {e['code']:2} "
            f"{e['status']:9} rrn {e['rrn'] or '-'}"
        )


# -- activation ------------------------------------------------------------------------------


@terminal.command("activate")
@click.argument("code")
@click.option("--serial", required=True, help="This device's serial number (TUSN).")
@click.option("--tid", required=True, help="Terminal id the code was issued for.")
@click.option("--mid", required=True, help="The terminal's merchant id.")
@click.option("--key-mode", type=click.Choice(["001", "003", "004"]), default="003",
              show_default=True, help="Sign-on key layout to use afterwards.")  # fmt: skip
@click.option("--kdk", "kdk_hex", help="TEST manufacturer KDK (hex; default: the demo KDK).")
@click.option("--transport-key", "tk_hex", help="This device's own TEST transport key (hex).")
@click.option("--merchant-name", help="Name printed on slips (default: the estate's, by MID).")
@click.pass_obj
def activate(ctx: Ctx, code, serial, tid, mid, key_mode, kdk_hex, tk_hex, merchant_name) -> None:
    """Activate a new terminal with a one-time CODE: receive and store its TMK."""
    from tools.terminal.activation import (
        DEMO_TEST_KDK,
        ActivationError,
        activation_request,
        open_tmk,
        transport_key,
    )
    from tools.terminal.client import TerminalClient
    from tools.terminal.device import Device

    transport = (
        bytes.fromhex(tk_hex)
        if tk_hex
        else transport_key(bytes.fromhex(kdk_hex) if kdk_hex else DEMO_TEST_KDK, serial)
    )
    address = ctx.host or "127.0.0.1:8583"
    host, _, port = address.rpartition(":")
    device = Device(tid, mid, bytes(16), key_mode)

    async def exchange():
        client = await TerminalClient.connect(host or "127.0.0.1", int(port), device, ctx.timeout)
        try:
            request = activation_request(device.next_stan(), tid, mid, code, serial)
            return (await client.exchange(request))[0]
        finally:
            await client.aclose()

    try:
        resp = trio.run(exchange)
    except (OSError, TerminalError, trio.TooSlowError) as exc:
        raise click.ClickException(f"activation failed: {exc}") from exc
    result = str(resp.get(39, ""))
    if result != "00":
        click.echo(f"{result} {response_text(result)}")
        raise SystemExit(DECLINED)
    try:
        tmk = open_tmk(transport, bytes(resp[62]))
    except ActivationError as exc:
        raise click.ClickException(str(exc)) from exc
    state = TerminalState(f"activated:{tid}", tid, mid, tmk, key_mode=key_mode, host=address,
                          merchant_name=merchant_name or merchant_name_of(mid))  # fmt: skip
    state.device()  # validates the key material
    path = ctx.state_path or state_path_for(tid)
    state.save(path)
    if ctx.state_path is None:
        remember_current(tid)
    click.echo(f"activated {tid}: TMK received (kcv {bytes(resp[62][16:19]).hex().upper()}),"
               f" state in {path}; now sign on")  # fmt: skip
