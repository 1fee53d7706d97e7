"""What ends a QR order outside a terminal's flow (docs/qr.md): the platform's signed
notification, the validity watch, and the record of a refund store-and-forward carried forward.
Each moves a journal row only from the state it saw (host/store/qr.py), so they may race with
the terminal's query and with each other: the first wins, the others find it settled."""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
import trio

from codec import responses as codes
from codec import txntypes
from codec import wallet as w
from codec.errors import CodecError
from host.config import QrSettings
from host.issuer.link import LinkDown, OutcomeUnknown
from host.store.errors import AlreadyReversed, NotFound
from keys import rsa_sign

log = structlog.get_logger("poshost.qr")

AWAITING = txntypes.AWAITING_PAYER


def _qr(host: Any) -> QrSettings:
    return host.settings.qr


def _ms(host) -> int:
    return int(host.now().timestamp() * 1000)


async def _ask(link, call: w.WalletCall) -> w.WalletReply | None:
    """A call whose failure leaves the outcome open (a query): None then."""
    try:
        return await link.request(call)
    except (LinkDown, OutcomeUnknown):
        return None


async def complete_order(host, row, fields: Any) -> bool:
    """The wallet says ``row``'s order is paid (its answer or notification): approve it once.
    An amount that is not the order's is refused (logged), never approved."""
    try:
        amount = w.fen(fields.get("total_amount", ""))
    except CodecError:
        amount = -1
    if amount != row.amount:
        log.warning("qr_amount_mismatch", txn=row.id, journal=row.amount, wallet=amount)
        return False
    trade_no = str(fields.get("trade_no", ""))
    extra = {**(row.extra or {}), "trade_no": trade_no}
    changed = await host.store.qr_complete(row.id, auth_code=trade_no[-6:] or None, extra=extra)
    if changed:
        log.info("qr_order_paid", txn=row.id, tid=row.tid, rrn=row.rrn, amount=row.amount)
    return changed


async def close_order(host, row, reason: str, code: str) -> bool:
    """Give up a pending order: recorded, and cancelled at the wallet through store-and-forward
    (closes it; refunds it when the customer paid at the last moment)."""
    from host.issuer.protocol import protocol_for

    proto = protocol_for(host, row.issuer_link)
    payload = proto.encode(proto.reversal_for(host, row, row.rrn or ""))
    changed = await host.store.qr_close(row.id, reason, link=row.issuer_link, payload=payload,
                                        response_code=code)  # fmt: skip
    if changed:
        host.saf_wakeup()
        log.info("qr_order_closed", txn=row.id, tid=row.tid, reason=reason)
    return changed


async def forward_done(host, item, reply: w.WalletReply, protocol) -> None:
    """Store-and-forward got the wallet's final answer to a forwarded refund: record it."""
    if item.transaction_id is None:
        return
    row = await host.store.get_transaction(item.transaction_id)
    original_status = "voided" if row.txn_type in txntypes.UNDOING else None
    await host.store.qr_forward_done(
        row.id, approved=reply.ok,
        response_code=codes.APPROVED if reply.ok else protocol.decline_code(reply),
        original_status=original_status,
    )  # fmt: skip


# -- the order watch -------------------------------------------------------------------------


async def order_watch(host, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Every ``qr.watch_interval``: orders past their validity are asked at the wallet once and
    approved when paid, else closed (cancelled through store-and-forward)."""
    interval = _qr(host).watch_interval
    task_status.started()
    while True:
        await trio.sleep(interval)
        try:
            await expire_orders(host)
        except Exception:  # the watch must outlive a bad row or a store hiccup
            log.exception("qr_watch_failed")


async def expire_orders(host) -> int:
    now_ms = _ms(host)
    ended = 0
    for row in await host.store.list_transactions(status="pending", txn_type="qr_order",
                                                  limit=500):  # fmt: skip
        extra = row.extra or {}
        if not extra.get("out_trade_no") or int(extra.get("expires_at", 0)) > now_ms:
            continue
        link = host.links.get(row.issuer_link)
        reply = None
        if link is not None and link.is_up:
            reply = await _ask(link, link.protocol.query(extra["out_trade_no"]))
        if reply is not None and link.protocol.settled(reply) == "paid":
            ended += await complete_order(host, row, reply)
            continue
        ended += await close_order(host, row, "order validity over: closed at the wallet",
                                   codes.INVALID_TRANSACTION)  # fmt: skip
    return ended


# -- notifications -----------------------------------------------------------------------------

_WALLET_TZ = dt.timezone(dt.timedelta(hours=8))


async def on_notification(host, body: bytes, peer: str | None) -> tuple[int, bytes]:
    """A wallet's payment notification: (HTTP status, body). ``success`` tells the wallet to
    stop resending. Refused (400 ``fail``): not signed by the platform, not for our app, or
    older than ``qr.notify_max_age`` (a replay). Replays within the window change nothing: an
    order is approved only from pending, once."""
    try:
        data = w.parse_notification(body)
    except CodecError as exc:
        host.security.record("wallet_notify_refused", peer=peer, detail=str(exc))
        return 400, b"fail"
    links = [link for link in host.links.values()
             if getattr(link, "protocol", None) is not None
             and link.protocol.name == "wallet" and link.app_id == data["app_id"]]  # fmt: skip
    key = links[0].platform_key() if links else None
    if key is None or not rsa_sign.verify(key, w.notification_signed_part(data), data["sign"]):
        host.security.record("wallet_notify_refused", peer=peer, detail="bad signature or app")
        return 400, b"fail"
    link = links[0]
    try:
        sent = dt.datetime.strptime(data["notify_time"], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=_WALLET_TZ
        )
    except ValueError:
        return 400, b"fail"
    age = (host.now() - sent).total_seconds()
    if age > _qr(host).notify_max_age or age < -300:
        host.security.record("wallet_notify_refused", peer=peer, detail="stale notification")
        return 400, b"fail"
    try:
        date, journal_id = w.parse_order_number(data["out_trade_no"])
        row = await host.store.get_transaction(journal_id)
    except (CodecError, NotFound):
        log.info("qr_notify_unknown_order", order=data["out_trade_no"])
        return 200, w.NOTIFY_ACK
    if row.business_date != date or row.issuer_link != link.name:
        log.warning("qr_notify_not_ours", order=data["out_trade_no"], txn=row.id)
        return 200, w.NOTIFY_ACK
    if data["trade_status"] in w.PAID:
        if row.txn_type in AWAITING and row.status == "pending":
            await complete_order(host, row, data)
        elif row.status in ("declined", "error"):  # paid after we gave up: give it back
            await _undo_late_payment(host, row)
    log.info("qr_notified", txn=row.id, status=data["trade_status"], notify=data["notify_id"])
    return 200, w.NOTIFY_ACK


async def _undo_late_payment(host, row) -> None:
    proto = host.links[row.issuer_link].protocol
    payload = proto.encode(proto.reversal_for(host, row, row.rrn or ""))
    try:
        await host.store.record_reversal(
            row.id, "paid after the sale was declined", link=row.issuer_link, payload=payload
        )
    except AlreadyReversed:
        return
    host.saf_wakeup()
