"""Journal writes of the QR wallet flows (docs/qr.md). Each changes a row only from the state
the flow saw, so a notification, the terminal's query, the validity watch and a reversal that
race for one order move it once: the first wins, the others find it settled. A write that gives
a row its final outcome queues the merchant's webhook event in the same transaction
(docs/webhooks.md), as ``record_outcome`` and ``record_reversal`` do."""

from __future__ import annotations

from typing import Any

from host.store import webhooks
from host.store.db import Db
from host.store.journal import get_transaction, set_status
from host.store.records import to_json
from host.store.reversals import record_reversal, saf_enqueue


def qr_open(db: Db, txn_id: int, *, rrn: str, extra: dict[str, Any]) -> bool:
    """The wallet made the order: the row keeps 'pending' (the customer pays next) and gets its
    RRN, by which the terminal's query names it, and the order's facts in ``extra``."""
    return bool(db.execute(
        "UPDATE transactions SET rrn = :rrn, extra = :extra WHERE id = :id AND status = 'pending'",
        {"id": txn_id, "rrn": rrn, "extra": to_json(extra)},
    ))  # fmt: skip


def qr_complete(db: Db, txn_id: int, *, auth_code: str | None, extra: dict[str, Any],
                settlement_date: str | None = None) -> bool:  # fmt: skip
    """An order the wallet says is paid: 'pending' -> 'approved' (once), with the merchant's
    webhook event in the same transaction (host/store/webhooks.py)."""
    now = db.now()
    changed = bool(db.execute(
        "UPDATE transactions SET status = 'approved', response_code = '00',"
        " auth_code = :auth, extra = :extra, responded_at = :now,"
        " settlement_date = COALESCE(:sdate, settlement_date, business_date),"
        " latency_ms = :now - requested_at WHERE id = :id AND status = 'pending'",
        {"id": txn_id, "auth": auth_code, "extra": to_json(extra), "now": now,
         "sdate": settlement_date},
    ))  # fmt: skip
    if changed:
        row = get_transaction(db, txn_id)
        webhooks.emit_outcome(db, txn_id, row.mid, row.txn_type, "approved")
    return changed


def qr_close(db: Db, txn_id: int, reason: str, *, link: str, payload: bytes,
             response_code: str) -> bool:  # fmt: skip
    """An order still pending that is given up (validity over, a closed trade): recorded with
    ``response_code`` and undone at the wallet through store-and-forward (cancel closes it, or
    refunds it if the customer paid at the last moment), in one transaction."""
    changed = db.execute(
        "UPDATE transactions SET status = 'timeout', response_code = :code, responded_at = :now"
        " WHERE id = :id AND status = 'pending'",
        {"id": txn_id, "code": response_code, "now": db.now()},
    )
    if not changed:
        return False
    record_reversal(db, txn_id, reason, link=link, payload=payload)
    return True


def qr_forward(db: Db, txn_id: int, reason: str, *, link: str, payload: bytes, rrn: str | None,
               settlement_date: str | None) -> int:  # fmt: skip
    """A refund (a QR void or refund) whose answer never came: it cannot be undone, so it is
    carried forward: the row says 'timeout'/98 and the same idempotent refund is queued until
    the wallet answers for good (``qr_forward_done``)."""
    db.execute(
        "UPDATE transactions SET status = 'timeout', response_code = '98', rrn = COALESCE(:rrn,"
        " rrn), settlement_date = COALESCE(:sdate, settlement_date), responded_at = :now"
        " WHERE id = :id",
        {"id": txn_id, "rrn": rrn, "sdate": settlement_date, "now": db.now()},
    )
    return saf_enqueue(db, txn_id, link, payload, kind="forward")


def qr_forward_done(db: Db, txn_id: int, *, approved: bool, response_code: str,
                    original_status: str | None) -> bool:  # fmt: skip
    """The wallet's final answer to a forwarded refund, recorded once; an approved void marks
    its sale ``original_status`` ('voided') in the same transaction."""
    status = "approved" if approved else "declined"
    changed = db.execute(
        "UPDATE transactions SET status = :status, response_code = :code WHERE id = :id"
        " AND status = 'timeout'",
        {"id": txn_id, "status": status, "code": response_code},
    )
    if changed and approved and original_status:
        row = get_transaction(db, txn_id)
        if row.original_id is not None:
            set_status(db, row.original_id, original_status)
    if changed:  # the refund's final outcome: its webhook event, in the same transaction
        row = get_transaction(db, txn_id)
        webhooks.emit_outcome(db, txn_id, row.mid, row.txn_type, status)
    return bool(changed)
