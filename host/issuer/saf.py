"""Store-and-forward: reversals wait in the journal until the issuer acknowledges them.

A reversal is queued in the same database transaction that marks its original reversed, so a
crash can lose neither. The worker sends 0420 the first time and 0421 (repeat) after that,
backing off per item; any 0430 from the issuer acknowledges it (an issuer answers a reversal of
an unknown original with an acknowledgement too). The queue survives restarts because it is
only ever read from the journal.
"""

from __future__ import annotations

import structlog
import trio

from codec import txntypes
from codec.errors import CodecError
from host.clock import parse_date
from host.issuer.link import LinkDown, OutcomeUnknown
from host.issuer.protocol import protocol_for

log = structlog.get_logger("poshost.saf")

MAX_BACKOFF_MS = 5 * 60 * 1000


def backoff_ms(attempts: int, base_s: float) -> int:
    return int(min(MAX_BACKOFF_MS, base_s * 1000 * (2 ** min(attempts, 10))))


async def saf_worker(host, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    interval = host.settings.issuer.saf_interval
    task_status.started()
    while True:
        with trio.move_on_after(interval):
            await host.saf_event.wait()
        host.saf_event = trio.Event()
        await drain_once(host, interval)


async def drain_once(host, base_backoff: float) -> int:
    """Send every due item once; returns how many were acknowledged."""
    acked = 0
    for item in await host.store.saf_due(limit=200):
        link = host.links.get(item.link)
        now_ms = int(host.now().timestamp() * 1000)
        if link is None or not link.is_up:
            await host.store.saf_mark_attempt(
                item.id, now_ms + backoff_ms(item.attempts, base_backoff), "link down"
            )
            continue
        try:
            msg = link.protocol.decode(item.payload)
        except CodecError as exc:
            await host.store.saf_fail(item.id, f"undecodable payload: {exc}")
            continue
        if item.attempts:
            msg = link.protocol.repeat(msg)  # 0421
        try:
            resp = await link.request(msg)
        except (LinkDown, OutcomeUnknown) as exc:
            await host.store.saf_mark_attempt(
                item.id, now_ms + backoff_ms(item.attempts, base_backoff), type(exc).__name__
            )
            continue
        code = link.protocol.result_code(resp)
        if not link.protocol.acknowledges(resp):  # the wallet could not say yet: again later
            await host.store.saf_mark_attempt(
                item.id, now_ms + backoff_ms(item.attempts, base_backoff), f"answered {code}"
            )
            continue
        if item.kind == "forward":  # a QR refund carried forward: record its final answer first
            from host.issuer.wallet_orders import forward_done

            await forward_done(host, item, resp, link.protocol)
        await host.store.saf_ack(item.id)
        acked += 1
        log.info("saf_acked", saf_id=item.id, txn=item.transaction_id, code=code,
                 attempts=item.attempts + 1)  # fmt: skip
    return acked


async def recover_pending(host) -> int:
    """After a crash, a 'pending' row is a request that may have reached the issuer with no
    outcome recorded. Reversible ones are reversed (queued); the rest are marked errors.
    Nothing the issuer approved stays approved without the journal knowing."""
    recovered = 0
    seen: set[int] = set()
    while True:
        rows = await host.store.list_transactions(status="pending", limit=200 + len(seen))
        pending = [t for t in rows if t.id not in seen]
        if not pending:
            return recovered
        for txn in pending:
            seen.add(txn.id)
            if txn.txn_type in txntypes.AWAITING_PAYER and (txn.extra or {}).get("out_trade_no"):
                continue  # an open QR order: the customer may still pay; the order watch ends it
            protocol = protocol_for(host, txn.issuer_link)
            rrn = txn.rrn or host.rrn_for(txn.id, parse_date(txn.business_date))
            if txn.txn_type in txntypes.REVERSIBLE and txn.issuer_link and protocol.undoable(txn):
                payload = protocol.encode(protocol.reversal_for(host, txn, rrn))
                await host.store.record_reversal(
                    txn.id, "host restart with outcome unknown", link=txn.issuer_link,
                    payload=payload,
                )  # fmt: skip
            elif txn.issuer_link and protocol.name == "wallet" and txn.original_id is not None:
                await _forward_refund(host, txn, protocol, rrn)
            else:
                await host.store.record_outcome(txn.id, status="error", response_code="96")
            recovered += 1
            log.warning("recovered_pending", txn=txn.id, type=txn.txn_type, tid=txn.tid)


async def _forward_refund(host, txn, protocol, rrn: str) -> None:
    """A QR void or refund that may have reached the wallet: a refund cannot be undone, so the
    same idempotent refund is carried forward until the wallet answers for good."""
    from codec.wallet import order_number

    original = await host.store.get_transaction(txn.original_id)
    call = protocol.refund(order_number(original.business_date, original.id),
                           order_number(txn.business_date, txn.id), txn.amount)  # fmt: skip
    await host.store.qr_forward(txn.id, "host restart with outcome unknown", link=txn.issuer_link,
                                payload=protocol.encode(call), rrn=rrn,
                                settlement_date=txn.business_date)  # fmt: skip
