"""Flow steps of QR wallet payments (docs/qr.md), and the order watch and notification
handling that end merchant-presented orders.

* ``qr_pay`` (60.1 = 36): the scanned payment code in 48 goes to the wallet (``trade.pay``).
  "User paying" (the customer must type a password) is polled with ``trade.query`` until
  ``qr.pay_deadline``; still unsettled then, the sale is cancelled at the wallet through
  store-and-forward and the terminal hears 98. Nothing is ever paid twice: every call is
  idempotent on the order number, and the cancel closes an unpaid trade or refunds a paid one.
* ``qr_order`` (60.1 = 37): ``trade.precreate`` makes an order; the 0210 carries its QR in 63.
  The row stays ``pending`` until the wallet's notification, the terminal's query (60.1 = 38)
  or the validity watch settles it.
* Voids and refunds of QR sales run the usual rows and end in ``trade.refund``, idempotent on
  the void's or refund's own order number; an unknown answer is carried forward (a refund
  cannot be undone), never reversed.

Response codes: 00, 09 not paid yet, 12 order closed, 14/54 payment code invalid or used /
expired, 15 QR not configured, 25 no such order, 51 balance, 91 wallet unreachable, 98 outcome
unknown (cancelled at the wallet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import trio

from codec import responses as codes
from codec import txntypes
from codec import wallet as w
from host.clock import journal_date, parse_date
from host.config import QrSettings
from host.flow.engine import Decline, Exchange, Step
from host.flow.steps import card_pan, outcome_unknown
from host.issuer.link import LinkDown, OutcomeUnknown
from host.issuer.wallet_link import WalletLink
from host.issuer.wallet_orders import close_order, complete_order

if TYPE_CHECKING:
    from host.app import Host
    from host.store.records import Transaction

log = structlog.get_logger("poshost.qr")

QR_SALES = txntypes.QR_SALES
AWAITING = txntypes.AWAITING_PAYER


def _qr(host: Host) -> QrSettings:
    return host.settings.qr


def _subject(ex: Exchange) -> str:
    return ex.merchant.name[:64]


def _ms(host: Host) -> int:
    return int(host.now().timestamp() * 1000)


def _wallet(host: Host, name: str | None) -> WalletLink:
    """The wallet link ``name`` (a QR step's link is one: the configuration says so)."""
    link = host.links.get(name) if name else None
    if not isinstance(link, WalletLink):
        raise Decline(codes.NO_SUCH_ISSUER, f"{name!r} is not a configured wallet link")
    return link


def _original(ex: Exchange) -> Transaction:
    """The row the find step before this one set (every row that runs a QR undo finds it)."""
    if ex.original.row is None:
        raise RuntimeError("no original found before a step that needs it")
    return ex.original.row


def _journalled(ex: Exchange) -> tuple[int, str]:
    """The journal row and RRN of this request (a wallet step runs after journal_request)."""
    if ex.journal.id is None or ex.rrn is None:
        raise RuntimeError("a wallet call needs the journalled request")
    return ex.journal.id, ex.rrn


def _order(ex: Exchange) -> str:
    """This exchange's order number at the wallet: its business date and journal row."""
    journal_id, _ = _journalled(ex)
    if ex.business_date is None:
        raise RuntimeError("an order number needs the journalled request")
    return w.order_number(journal_date(ex.business_date), journal_id)


def by_channel(card: tuple[Step, ...], qr: tuple[Step, ...]) -> Step:
    """One step that runs ``qr`` for a QR original (``ex.channel``), else ``card``: a void
    or refund row serves both, as the registry says."""

    async def channel_steps(host: Host, ex: Exchange) -> None:
        for step in qr if ex.channel == "qr" else card:
            await step(host, ex)

    return channel_steps


# -- who pays, through which wallet ------------------------------------------------------------


async def read_payment_code(host: Host, ex: Exchange) -> None:
    """48 holds the code the terminal scanned off the customer's phone. It stands in for the
    card from here on: the journal and the logs keep its 6+4 mask, never the code."""
    code = str(ex.request.get(48, "") or "")
    if not w.valid_payment_code(code):
        raise Decline(codes.INVALID_CARD, "48 is not a payment code (16-24 digits)")
    ex.card.pan = code
    ex.channel = "qr"
    ex.card.group = "domestic"


async def select_wallet(host: Host, ex: Exchange) -> None:
    name = _qr(host).link
    if not name or name not in host.links:
        raise Decline(codes.NO_SUCH_ISSUER, "QR payments are not configured (qr.link)")
    ex.link = name
    ex.channel = "qr"
    ex.card.group = "domestic"
    ex.response_fields[63] = _qr(host).organisation


async def wallet_of_original(host: Host, ex: Exchange) -> None:
    """A void or refund of a QR sale goes to the wallet that took the sale."""
    link = _original(ex).issuer_link
    if not link or link not in host.links:
        raise Decline(codes.NO_SUCH_ISSUER, f"the sale's wallet link {link!r} is not configured")
    ex.link = link
    ex.card.group = "domestic"
    ex.response_fields[63] = _qr(host).organisation


def _paid(ex: Exchange, reply: w.WalletReply, order: str) -> None:
    trade_no = str(reply.get("trade_no", ""))
    ex.code = codes.APPROVED
    ex.auth_code = trade_no[-6:] or None
    ex.journal.outcome_extra = {"f7": ex.issuer.transmission, "channel": "qr",
                                "out_trade_no": order, "trade_no": trade_no}  # fmt: skip


async def _ask(link: WalletLink, call: w.WalletCall) -> w.WalletReply | None:
    """A call that is simply asked again when it fails (a query while polling, an idempotent
    refund): None when the link is down or no answer came."""
    try:
        return await link.request(call)
    except (LinkDown, OutcomeUnknown):
        return None


# -- customer-presented code --------------------------------------------------------------------


async def wallet_pay(host: Host, ex: Exchange) -> None:
    """``trade.pay``, then ``trade.query`` every ``qr.poll_interval`` while the outcome is open,
    until ``qr.pay_deadline``. 91 only when the pay request certainly never left."""
    link = _wallet(host, ex.link)
    proto = link.protocol
    order = _order(ex)
    qr = _qr(host)
    deadline = trio.current_time() + qr.pay_deadline
    poll = qr.poll_interval
    call = proto.pay(order, int(ex.request[4]), card_pan(host, ex), subject=_subject(ex),
                     store_id=ex.terminal.mid, terminal_id=ex.terminal.tid)  # fmt: skip
    try:
        try:
            reply: w.WalletReply | None = await link.request(call)
        except LinkDown as exc:
            ex.journal.failure = "error"
            raise Decline(codes.ISSUER_DOWN, f"wallet link {ex.link} down") from exc
        except OutcomeUnknown:
            reply = None
        while True:
            settled = proto.settled(reply) if reply is not None else None
            if reply is not None and settled == "paid":
                return _paid(ex, reply, order)
            if reply is not None and settled == "declined":
                raise Decline(proto.decline_code(reply), f"wallet: {reply.sub_code or reply.code}")
            if trio.current_time() + poll > deadline:
                break
            await trio.sleep(poll)
            reply = await _ask(link, proto.query(order))
    except Decline:
        raise
    except BaseException as exc:  # cancelled (host stopping) or a bug: the payment may be made
        with trio.CancelScope(shield=True):
            await outcome_unknown(host, ex, f"98 {type(exc).__name__} while paying by QR")
        raise
    await outcome_unknown(host, ex, "98 QR payment not settled by the deadline")
    raise Decline(codes.OUTCOME_UNKNOWN, "QR payment not settled in time: cancelled at the wallet")


# -- merchant-presented order -------------------------------------------------------------------


async def wallet_order(host: Host, ex: Exchange) -> None:
    """``trade.precreate``: the order's QR goes back in 63; the row stays pending."""
    link = _wallet(host, ex.link)
    proto = link.protocol
    order = _order(ex)
    validity = _qr(host).order_validity
    call = proto.precreate(order, int(ex.request[4]), validity, subject=_subject(ex),
                           store_id=ex.terminal.mid, terminal_id=ex.terminal.tid)  # fmt: skip
    try:
        reply = await link.request(call)
    except LinkDown as exc:
        ex.journal.failure = "error"
        raise Decline(codes.ISSUER_DOWN, f"wallet link {ex.link} down") from exc
    except OutcomeUnknown as exc:
        await outcome_unknown(host, ex, f"98 {type(exc).__name__}")
        raise Decline(
            codes.OUTCOME_UNKNOWN, "no answer to the order: closed at the wallet"
        ) from exc
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            await outcome_unknown(host, ex, f"98 {type(exc).__name__} while ordering")
        raise
    if not reply.ok:
        raise Decline(proto.decline_code(reply), f"wallet: {reply.sub_code or reply.code}")
    qr_code = str(reply.get("qr_code", ""))
    organisation = _qr(host).organisation
    if not qr_code or len(organisation + qr_code) > 163 or not qr_code.isprintable():
        await outcome_unknown(host, ex, "98 the wallet's QR does not fit field 63")
        raise Decline(codes.OUTCOME_UNKNOWN, "unusable QR content: closed at the wallet")
    extra = {"f7": ex.issuer.transmission, "channel": "qr", "out_trade_no": order,
             "expires_at": _ms(host) + validity * 1000, "qr_code": qr_code}  # fmt: skip
    journal_id, rrn = _journalled(ex)
    await host.store.qr_open(journal_id, rrn=rrn, extra=extra)
    ex.journal.outcome_recorded = True  # stays pending: the customer pays next
    ex.code = codes.APPROVED
    ex.response_fields[63] = organisation + qr_code


# -- the terminal's query ----------------------------------------------------------------------


async def find_order(host: Host, ex: Exchange) -> None:
    rrn = str(ex.request.get(37, "") or "").strip()
    if not rrn:
        raise Decline(codes.ORIGINAL_NOT_FOUND, "no order RRN in 37")
    rows = [r for r in await host.store.find_by_rrn(rrn)
            if r.mid == ex.terminal.mid and r.txn_type in QR_SALES]  # fmt: skip
    if not rows:
        raise Decline(codes.ORIGINAL_NOT_FOUND, "no QR sale of this merchant with that RRN")
    ex.original.row = rows[-1]


async def query_order(host: Host, ex: Exchange) -> None:
    """00 when paid; 09 while the customer has not paid; 12 when closed. A pending order is
    asked at the wallet, so a lost notification costs nothing."""
    row = _original(ex)
    ex.rrn, ex.business_date = row.rrn, parse_date(row.business_date)
    ex.response_fields[4] = f"{row.amount:012d}"
    ex.response_fields[63] = _qr(host).organisation
    if row.status == "approved":
        ex.auth_code = row.auth_code
        ex.code = codes.APPROVED
        return
    if row.status != "pending":
        raise Decline(codes.INVALID_TRANSACTION, f"order is {row.status}")
    if row.txn_type not in AWAITING or not (row.extra or {}).get("out_trade_no"):
        raise Decline(codes.REQUEST_IN_PROGRESS, "sale still in progress")
    link = _wallet(host, row.issuer_link)
    try:
        reply = await link.request(link.protocol.query(str((row.extra or {})["out_trade_no"])))
    except LinkDown as exc:
        raise Decline(codes.ISSUER_DOWN, "wallet unreachable") from exc
    except OutcomeUnknown as exc:
        raise Decline(codes.REQUEST_IN_PROGRESS, "wallet did not answer") from exc
    settled = link.protocol.settled(reply)
    if settled == "paid" and await complete_order(host, row, reply):
        ex.auth_code = str(reply.get("trade_no", ""))[-6:] or None
        ex.code = codes.APPROVED
        return
    if settled == "paid":  # settled meanwhile by a notification, or an amount mismatch
        fresh = await host.store.get_transaction(row.id)
        if fresh.status == "approved":
            ex.auth_code, ex.code = fresh.auth_code, codes.APPROVED
            return
    if settled == "declined":
        await close_order(host, row, "the wallet closed the order", codes.INVALID_TRANSACTION)
        raise Decline(codes.INVALID_TRANSACTION, "order closed at the wallet")
    raise Decline(codes.REQUEST_IN_PROGRESS, "not paid yet")


# -- voids and refunds of QR sales --------------------------------------------------------------


async def wallet_refund(host: Host, ex: Exchange) -> None:
    """``trade.refund`` of the request's amount, on the void's or refund's own order number (so
    a resend refunds nothing twice). Retried while the answer is unknown until
    ``qr.pay_deadline``; still unknown then, carried forward by store-and-forward and 98."""
    link = _wallet(host, ex.link)
    proto = link.protocol
    original = _original(ex)
    call = proto.refund(w.order_number(original.business_date, original.id), _order(ex),
                        int(ex.request[4]))  # fmt: skip
    qr = _qr(host)
    deadline = trio.current_time() + qr.pay_deadline
    poll = qr.poll_interval
    try:
        while True:
            reply = await _ask(link, call)  # down or unanswered: asked again until the deadline
            if reply is not None and proto.acknowledges(reply):
                if reply.ok:
                    ex.code = codes.APPROVED
                    ex.auth_code = str(reply.get("trade_no", ""))[-6:] or None
                    return
                raise Decline(proto.decline_code(reply), f"wallet: {reply.sub_code}")
            if trio.current_time() + poll > deadline:
                break
            await trio.sleep(poll)
    except Decline:
        raise
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            await _forward(host, ex, call, f"{type(exc).__name__} while refunding")
        raise
    await _forward(host, ex, call, "refund not answered by the deadline")
    raise Decline(codes.OUTCOME_UNKNOWN, "refund outcome unknown: it is being completed")


async def _forward(host: Host, ex: Exchange, call: w.WalletCall, reason: str) -> None:
    link = _wallet(host, ex.link)
    journal_id, rrn = _journalled(ex)
    day = journal_date(ex.business_date) if ex.business_date is not None else None
    await host.store.qr_forward(journal_id, reason, link=link.name,
                                payload=link.protocol.encode(call), rrn=rrn,
                                settlement_date=day)  # fmt: skip
    ex.journal.outcome_recorded = True
    ex.code = codes.OUTCOME_UNKNOWN
    host.saf_wakeup()
    log.warning("qr_refund_forwarded", tid=ex.terminal.tid, txn=ex.journal.id, reason=reason)
