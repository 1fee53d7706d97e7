"""What a POS does around each message: pending reversals first, a reversal flag set before a
reversible request leaves, the response checked (MAC, echoed fields), an automatic reversal
when the answer is late or its MAC is bad, the log updated, settlement from the log.

Every operation opens a connection, does its exchanges and closes it, like a dial-up or GPRS
terminal; the state file is saved after each step, so a crash never loses a pending reversal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from codec import subfields, txntypes
from codec import terminal as terminal_codec
from codec.dump import format_message, mask_pan
from codec.framing import parse_envelope
from codec.message import Message
from host.harness import format_amount, local_time, signed_amount, terminal_time
from tools.terminal.client import TerminalClient
from tools.terminal.device import TYPES, BadResponseMac, Device, HostUnreachable, TerminalError
from tools.terminal.state import LogEntry, StateError, TerminalState

REVERSIBLE = set(txntypes.REVERSIBLE)
QR = set(txntypes.QR)
DEBITS = txntypes.DEBITS
CREDITS = txntypes.CREDITS
# What a successful follow-up does to the entry it names.
FOLLOW_UP_STATUS = {
    "void": "voided",
    "completion_void": "voided",
    "preauth_cancel": "cancelled",
    "completion": "completed",
}

RESPONSE_TEXT = {
    "00": "APPROVED",
    "01": "REFER TO ISSUER",
    "03": "INVALID MERCHANT",
    "04": "PICK UP CARD",
    "05": "DO NOT HONOUR",
    "09": "NOT PAID YET",
    "12": "INVALID TRANSACTION",
    "13": "INVALID AMOUNT",
    "14": "INVALID CARD NUMBER",
    "15": "NO SUCH ISSUER",
    "22": "RELATED TRANSACTION ERROR",
    "25": "ORIGINAL NOT FOUND",
    "30": "FORMAT ERROR",
    "38": "PIN TRIES EXCEEDED",
    "40": "FUNCTION NOT SUPPORTED",
    "41": "LOST CARD",
    "43": "STOLEN CARD",
    "51": "INSUFFICIENT FUNDS",
    "54": "EXPIRED CARD",
    "55": "INCORRECT PIN",
    "57": "NOT PERMITTED",
    "58": "NOT PERMITTED",
    "61": "AMOUNT LIMIT EXCEEDED",
    "64": "ORIGINAL AMOUNT MISMATCH",
    "65": "FREQUENCY LIMIT EXCEEDED",
    "75": "PIN TRIES EXCEEDED",
    "77": "SIGN ON AGAIN",
    "90": "CUT-OVER IN PROGRESS",
    "91": "ISSUER INOPERATIVE",
    "94": "DUPLICATE TRANSACTION",
    "96": "SYSTEM MALFUNCTION",
    "97": "TERMINAL NOT REGISTERED",
    "98": "ISSUER TIMEOUT",
    "99": "PIN FORMAT ERROR",
    "A0": "MAC FAILED, SIGN ON AGAIN",
    "A7": "SECURITY FAILURE",
}


def response_text(code: str | None) -> str:
    return RESPONSE_TEXT.get(code or "", f"DECLINED ({code})")


@attrs.define
class Outcome:
    request: Message
    response: Message | None
    processing: int = 0
    reversal: Message | None = None  # the automatic reversal the terminal sent, if any
    reversal_response: Message | None = None
    error: str | None = None

    @property
    def code(self) -> str | None:
        return None if self.response is None else str(self.response.get(39, ""))


class Pos:
    """One terminal: its state file, its host address, and an optional trace printer."""

    def __init__(
        self,
        state: TerminalState,
        path: Path | None,
        *,
        timeout: float = 30.0,
        trace: Callable[[str], None] | None = None,
    ) -> None:
        self.state = state
        self.path = path
        self.timeout = timeout
        self.trace = trace
        self.device: Device = state.device()

    # -- plumbing --------------------------------------------------------------------------
    def save(self) -> None:
        self.state.absorb(self.device)
        if self.path is not None:
            self.state.save(self.path)

    def _address(self) -> tuple[str, int]:
        host, _, port = self.state.host.rpartition(":")
        return host or "127.0.0.1", int(port)

    async def _connect(self) -> TerminalClient:
        host, port = self._address()
        try:
            return await TerminalClient.connect(host, port, self.device, timeout=self.timeout)
        except (OSError, trio.TooSlowError) as exc:
            raise HostUnreachable(f"cannot reach the host at {self.state.host}: {exc}") from exc

    def _trace(self, title: str, msg: Message) -> None:
        if self.trace is not None:
            self.trace(f"--- {title}\n{format_message(msg)}")

    async def _exchange(
        self, client: TerminalClient, request: Message
    ) -> tuple[Message | None, int, bytes | None]:
        """Send; return (response or None when late/closed, processing nibble, raw payload)."""
        payload = self.device.encode(request)
        self._trace("request", terminal_codec.decode(payload))
        await client.send_raw(self.device.envelope(payload).to_frame())
        try:
            body = await client.receive_body()
        except trio.TooSlowError:
            return None, 0, None
        except (trio.BrokenResourceError, OSError):
            return None, 0, None
        if body is None:
            return None, 0, None
        env = parse_envelope(body)
        return terminal_codec.decode(env.payload), env.processing, env.payload

    async def exchange(self, request: Message) -> Outcome:
        """One message that needs no reversal (management, balance, refund, settlement)."""
        client = await self._connect()
        try:
            await self._flush_reversal(client)
            resp, processing, payload = await self._exchange(client, request)
            if resp is None:
                return Outcome(request, None, error="no response in time")
            self._trace("response", resp)
            checked = self.device.check_response(request, payload)
            return Outcome(request, checked, processing)
        finally:
            await client.aclose()
            self.save()

    async def sign_on(self, request: Message) -> tuple[Outcome, Outcome | None]:
        """Sign on first, then send what is pending. A pending reversal MACed under a MAK the
        host has since replaced (another tool re-keyed this TID) can never be answered with a
        MAC this terminal trusts; sent before the 0800 it would block the only way out."""
        client = await self._connect()
        try:
            resp, processing, payload = await self._exchange(client, request)
            if resp is None:
                return Outcome(request, None, error="no response in time"), None
            self._trace("response", resp)
            out = Outcome(request, self.device.check_response(request, payload), processing)
            if out.code != "00":
                return out, None
            self.device.accept_sign_on(out.response)
            self.save()
            try:
                return out, await self._flush_reversal(client)
            except TerminalError as exc:
                out.error = f"signed on, but the pending reversal is still pending: {exc}"
                return out, None
        finally:
            await client.aclose()
            self.save()

    # -- reversals -------------------------------------------------------------------------
    async def _flush_reversal(self, client: TerminalClient) -> Outcome | None:
        """Send the pending reversal (if any) before anything else, as terminals must."""
        pending = self.state.pending_reversal
        if not pending:
            return None
        original = terminal_codec.decode(bytes.fromhex(pending["request"]))
        reversal = self.device.reversal_of(original, pending.get("reason", "98"))
        resp, _, payload = await self._exchange(client, reversal)
        if resp is None:
            raise TerminalError("the pending reversal got no answer: try again later")
        self._trace("reversal response", resp)
        checked = self.device.check_response(reversal, payload)
        self.state.pending_reversal = None
        stan = str(original[11])
        for entry in self.state.log:
            if entry.stan == stan and entry.batch == self.device.batch:
                entry.status = "reversed"
        self.save()
        return Outcome(reversal, checked)

    async def transact(self, txn_type: str, request: Message, entry: LogEntry) -> Outcome:
        """A financial request. For a reversible type the reversal flag is set (and saved)
        before the request leaves; a late answer, a closed connection, a bad response MAC or
        wrong echoed fields leave it set and make the terminal reverse at once."""
        client = await self._connect()
        try:
            await self._flush_reversal(client)
            reversible = txn_type in REVERSIBLE
            payload = self.device.encode(request)
            # A payment code is used once and never kept: the stored request (which a reversal
            # is rebuilt from) goes without 48.
            kept = self.device.encode(request.without(48)) if txn_type in QR else payload
            entry.request = kept.hex().upper()
            self.state.log.append(entry)
            if reversible:
                self.state.pending_reversal = {"request": entry.request, "reason": "98"}
            self.save()
            resp, processing, raw = await self._exchange(client, request)
            reason = None
            error = None
            checked = None
            if resp is None:
                reason, error = "98", "no response in time"
            else:
                self._trace("response", resp)
                try:
                    checked = self.device.check_response(request, raw)
                except BadResponseMac as exc:
                    reason, error = "A0", str(exc)
                except TerminalError as exc:
                    reason, error = "06", str(exc)
            if reason is None and checked is not None:
                self.state.pending_reversal = None
                self._record(entry, checked)
                self.save()
                return Outcome(request, checked, processing)
            entry.status = "unknown"
            if not reversible:
                self.save()
                return Outcome(request, resp, processing, error=error)
            self.state.pending_reversal = {"request": entry.request, "reason": reason}
            self.save()
            out = Outcome(request, resp, processing, error=error)
            # The reversal goes out at once, on a fresh connection (the old one may be stuck).
            await client.aclose()
            client = await self._connect()
            try:
                rev = await self._flush_reversal(client)
            except (TerminalError, OSError) as exc:
                out.error = f"{error}; reversal still pending: {exc}"
                return out
            if rev is not None:
                out.reversal, out.reversal_response = rev.request, rev.response
            return out
        finally:
            await client.aclose()
            self.save()

    async def reverse_last(self, reason: str = "06") -> Outcome:
        """Reverse the last approved reversible transaction of this batch (operator's choice)."""
        for entry in reversed(self.state.log):
            if entry.type in REVERSIBLE and entry.status == "approved" and entry.request:
                break
        else:
            raise StateError("no approved reversible transaction in this batch")
        if self.state.pending_reversal:
            raise StateError("a reversal is already pending: any command sends it first")
        self.state.pending_reversal = {"request": entry.request, "reason": reason}
        self.save()
        client = await self._connect()
        try:
            out = await self._flush_reversal(client)
        finally:
            await client.aclose()
            self.save()
        assert out is not None
        if out.response is not None and out.response.get(39) == "00":
            self._undo_follow_up(entry)
        return out

    def _record(self, entry: LogEntry, resp: Message) -> None:
        code = str(resp.get(39, ""))
        entry.code = code
        entry.status = "approved" if code == "00" else "declined"
        if code == "00" and entry.type in txntypes.AWAITING_PAYER:
            entry.status = "ordered"  # paid only when a query says so
        entry.rrn = str(resp.get(37, "") or "")
        entry.auth_code = str(resp.get(38, "") or "")
        entry.date = str(resp.get(13, "") or "") or dt.datetime.now().strftime("%m%d")
        if code == "00" and entry.original_stan and entry.type in FOLLOW_UP_STATUS:
            for other in self.state.log:
                if other.stan == entry.original_stan and other.batch == entry.batch:
                    other.status = FOLLOW_UP_STATUS[entry.type]

    def _undo_follow_up(self, entry: LogEntry) -> None:
        """A reversed void/cancel/completion gives its original back its approved status."""
        if entry.original_stan and entry.type in FOLLOW_UP_STATUS:
            for other in self.state.log:
                if other.stan == entry.original_stan and other.batch == entry.batch:
                    other.status = "approved"

    # -- settlement ------------------------------------------------------------------------
    def totals(self) -> tuple[subfields.SettlementTotals, subfields.SettlementTotals]:
        """Totals of this batch from the terminal's own log, counted the way the host counts:
        debits are approved purchases, completions and completion advices (a voided or
        reversed one no longer counts); credits are approved refunds."""
        sums = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
        for e in self.state.log:
            if e.batch != self.device.batch or e.status not in ("approved", "completed"):
                continue
            if e.status == "completed" or e.type not in (*DEBITS, *CREDITS):
                continue
            # no PAN: a QR sale or its void/refund, which the host counts as domestic
            s = sums[self.state.is_domestic(e.pan) or not e.pan]
            if e.type in DEBITS:
                s[0] += e.amount
                s[1] += 1
            else:
                s[2] += e.amount
                s[3] += 1
        dom, foreign = sums[True], sums[False]
        return subfields.SettlementTotals(*dom, "0"), subfields.SettlementTotals(*foreign, "0")

    def upload_records(self) -> list[subfields.BatchRecord]:
        records = []
        for e in self.state.log:
            if e.batch != self.device.batch or e.status != "approved":
                continue
            if e.type not in (*DEBITS, *CREDITS) or not e.pan:
                continue  # QR rows have no PAN to upload: the wallet's bill checks them
            records.append(
                subfields.BatchRecord(
                    "00" if self.state.is_domestic(e.pan) else "01",
                    e.pan,
                    e.amount,
                    e.stan,
                    TYPES[e.type][3],
                )
            )
        return records

    async def settle(self) -> tuple[Outcome, list[Outcome]]:
        """0500 with the log's totals; when the host answers "not balanced" (2 in either
        result digit), upload the batch (0320 records, then 0320 end). Then close the batch:
        the log moves to history and the batch number advances."""
        domestic, foreign = self.totals()
        client = await self._connect()
        uploads: list[Outcome] = []
        try:
            await self._flush_reversal(client)
            req = self.device.settlement_request(domestic, foreign)
            resp, processing, raw = await self._exchange(client, req)
            if resp is None:
                return Outcome(req, None, error="no response in time"), uploads
            self._trace("response", resp)
            checked = self.device.check_response(req, raw)
            out = Outcome(req, checked, processing)
            if checked.get(39) != "00" or 48 not in checked:
                return out, uploads
            dom, forn = subfields.parse_field48_settlement(str(checked[48]))
            if "2" in (dom.result, forn.result):
                records = self.upload_records()
                for i in range(0, len(records), 7):
                    up = self.device.batch_upload_request(records[i : i + 7])
                    r, _, raw_up = await self._exchange(client, up)
                    uploads.append(Outcome(up, r and self.device.check_response(up, raw_up)))
                end = self.device.batch_upload_end(len(records))
                r, _, raw_end = await self._exchange(client, end)
                uploads.append(Outcome(end, r and self.device.check_response(end, raw_end)))
            self._close_batch(dom.result, forn.result, domestic, foreign)
            return out, uploads
        finally:
            await client.aclose()
            self.save()

    def _close_batch(self, dom_result, foreign_result, domestic, foreign) -> None:
        self.state.history.append(
            {
                "batch": self.device.batch,
                "result": dom_result + foreign_result,
                "debit_amount": domestic.debit_amount + foreign.debit_amount,
                "debit_count": domestic.debit_count + foreign.debit_count,
                "credit_amount": domestic.credit_amount + foreign.credit_amount,
                "credit_count": domestic.credit_count + foreign.credit_count,
                "transactions": len(self.state.log),
            }
        )
        self.state.log = [e for e in self.state.log if e.batch != self.device.batch]
        self.device.batch = f"{int(self.device.batch) % 999999 + 1:06d}"


# -- receipts ------------------------------------------------------------------------------

TITLES = {
    "purchase": "SALE",
    "balance_inquiry": "BALANCE INQUIRY",
    "void": "VOID",
    "refund": "REFUND",
    "preauth": "PRE-AUTHORIZATION",
    "preauth_cancel": "PRE-AUTH CANCEL",
    "completion": "PRE-AUTH COMPLETION",
    "completion_void": "COMPLETION VOID",
    "reversal": "REVERSAL",
    "completion_advice": "COMPLETION ADVICE",
    "transfer": "TRANSFER",
    "qr_pay": "QR SALE (CUSTOMER CODE)",
    "qr_order": "QR ORDER",
    "qr_query": "QR QUERY",
}


ENTRY_MODES = {
    "01": "MANUAL",
    "02": "SWIPE",
    "05": "CHIP",
    "03": "QR SCAN",
    "07": "CONTACTLESS",
    "90": "SWIPE",
    "95": "CHIP (FALLBACK)",
    "96": "CONTACTLESS",
    "98": "CONTACTLESS",
}
# Follow-ups print the trace number of the transaction they act on: that is what the merchant
# and the cardholder compare with the slip they already hold.
NAMES_ORIGINAL = txntypes.FOLLOW_UPS
WIDTH = 36


def entry_mode(request: Message) -> str:
    """Field 22 in words: how the card was read, and whether a PIN was entered."""
    code = str(request.get(22, "") or "")
    how = ENTRY_MODES.get(code[:2], code[:2] or "-")
    return how + (" + PIN" if code[2:3] == "1" and 52 in request else "")


def _original_trace(request: Message) -> str | None:
    raw = str(request.get(61, "") or "")
    if len(raw) < 12:
        return None
    try:
        return subfields.Field61.parse(raw).stan
    except ValueError:
        return None


def _payee_line(txn_type: str, request: Message) -> list[str]:
    """A transfer's slip names the card credited, masked like the card debited."""
    t = txntypes.TYPES.get(txn_type)
    payee = request.get(t.payee) if t is not None and t.payee is not None else None
    return [f"TO CARD      {mask_pan(str(payee))}"] if payee else []


def receipt(state: TerminalState, txn_type: str, out: Outcome, copy: str) -> str:
    """A slip as a merchant files it: who, which card and how it was read, which transaction
    (and which original a follow-up names), the amount signed the way the money moves, and
    either "PIN verified" or a signature line."""
    req, resp = out.request, out.response
    pan = str(req.get(2) or str(req.get(35, "")).split("=", 1)[0] or "")
    amount = int(str(req.get(4, "0")) or 0)
    code = out.code
    lines = [
        "=" * WIDTH,
        f"{state.merchant_name or 'MERCHANT ' + state.mid:^{WIDTH}}",
        f"{copy.upper() + ' COPY':^{WIDTH}}",
        "-" * WIDTH,
        f"MERCHANT NO  {state.mid}",
        f"TERMINAL NO  {state.tid}",
        f"CARD NO      {mask_pan(pan) if pan else '-'}"
        if txn_type not in QR
        else f"PAY CODE     {mask_pan(str(req.get(48))) if req.get(48) else '-'}",
        f"ENTRY MODE   {entry_mode(req)}",
        f"TRANS TYPE   {TITLES.get(txn_type, txn_type.upper())}",
        *_payee_line(txn_type, req),
        f"BATCH NO     {req.get(60, '')[2:8] if req.get(60) else state.batch}",
        f"TRACE NO     {req.get(11, '')}",
    ]
    original = _original_trace(req) if txn_type in NAMES_ORIGINAL else None
    if original and original != "000000":
        lines.append(f"ORIG TRACE   {original}")
    if resp is not None:
        lines += [
            f"AUTH NO      {resp.get(38, '') or '-'}",
            f"REF NO       {resp.get(37, '') or '-'}",
            f"DATE/TIME    {terminal_time(str(resp.get(13, '')), str(resp.get(12, '')))}",
        ]
        if 54 in resp:
            for bal in subfields.parse_field54(str(resp[54])):
                label = {"01": "LEDGER", "02": "AVAILABLE"}.get(bal.amount_type, "BALANCE")
                lines.append(f"{label:12} {format_amount(bal.amount, bal.currency)}")
    if amount:
        currency = str(req.get(49, "156") or "156")
        lines.append(f"AMOUNT       {format_amount(signed_amount(amount, txn_type), currency)}")
    result = response_text(code) if code else "NO RESPONSE"
    lines.append(f"RESULT       {code or '--'} {result}")
    if out.error:
        lines.append(f"TERMINAL     {out.error}")
    if out.reversal is not None:
        rc = out.reversal_response.get(39) if out.reversal_response is not None else "--"
        lines.append(f"REVERSED     reason {out.reversal.get(39)}, host answered {rc}")
    if code == "00" and txn_type != "balance_inquiry":
        if 52 in req:
            lines += ["", f"{'PIN VERIFIED':^{WIDTH}}"]
        elif copy == "merchant":
            lines += ["", "CARDHOLDER SIGNATURE", "", "_" * 32]
    lines.append("=" * WIDTH)
    return "\n".join(lines)


def batch_summary(entries: list[LogEntry]) -> dict[str, tuple[int, int]]:
    """{slip title: (count, signed amount)} of the approved transactions of a batch, by type,
    including voided ones (the void is listed under VOID with a negative amount), so the
    captured lines add up to what the host settles; pre-authorizations are listed but hold
    money rather than move it."""
    totals: dict[str, tuple[int, int]] = {}
    for e in entries:
        if e.status not in ("approved", "voided", "cancelled", "completed") or not e.amount:
            continue
        title = TITLES.get(e.type, e.type.upper())
        count, total = totals.get(title, (0, 0))
        totals[title] = (count + 1, total + signed_amount(e.amount, e.type))
    return totals


def settlement_slip(
    state: TerminalState, batch: str, entries: list[LogEntry], out: Outcome, result: str
) -> str:
    """The slip a terminal prints at end of day: totals per type, then the host's verdict."""
    lines = [
        "=" * WIDTH,
        f"{state.merchant_name or 'MERCHANT ' + state.mid:^{WIDTH}}",
        f"{'SETTLEMENT':^{WIDTH}}",
        "-" * WIDTH,
        f"MERCHANT NO  {state.mid}",
        f"TERMINAL NO  {state.tid}",
        f"BATCH NO     {batch}",
        f"DATE/TIME    {local_time(dt.datetime.now(dt.UTC))}",
        "-" * WIDTH,
        f"{'TYPE':<20}{'COUNT':>5}{'AMOUNT':>11}",
    ]
    summary = batch_summary(entries)
    for title, (count, total) in summary.items():
        lines.append(f"{title:<20}{count:>5} {format_amount(total)[:-4]:>10}")
    captured = [TITLES[t] for t in (*DEBITS, *CREDITS, *txntypes.UNDOING_SETTLED) if t in TITLES]
    net = sum(total for title, (_, total) in summary.items() if title in captured)
    count = sum(c for title, (c, _) in summary.items() if title in captured)
    lines += [
        "-" * WIDTH,
        f"{'NET (CAPTURED)':<20}{count:>5} {format_amount(net)[:-4]:>10}",
        f"{'':<20}{'CNY':>16}",
        f"RESULT       {out.code or '--'} {result}",
        "=" * WIDTH,
    ]
    return "\n".join(lines)
