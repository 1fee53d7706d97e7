"""Reversals and store-and-forward: a reversal is recorded in the same transaction that marks
its original, and waits in the SAF queue until the issuer acknowledges it.

See ``host.store.ops`` for how these functions are written and called.
"""

from __future__ import annotations

from typing import Any

from codec import txntypes
from host.store import webhooks
from host.store.db import Db
from host.store.errors import (
    AlreadyReversed,
    NotFound,
)
from host.store.journal import get_transaction, record_outcome, set_status
from host.store.records import (
    Reversal,
    SafItem,
)

# ---------------------------------------------------------------------------------------------
# Reversals and store-and-forward

# Types whose approval marks their original 'voided' (and whose reversal restores it).
UNDO_TYPES = txntypes.UNDOING


def record_reversal(
    db: Db,
    original_id: int,
    reason: str,
    *,
    link: str | None = None,
    payload: bytes | None = None,
    next_attempt_at: int | None = None,
) -> Reversal:
    """Reverse ``original_id`` exactly once: insert the reversal row, mark the original
    ``reversed`` and, when ``payload`` is given, queue it for store-and-forward to ``link`` —
    all in one transaction. Raises ``AlreadyReversed`` on a second attempt. Reversing a
    void, pre-authorization cancel or completion void puts its 'voided' original back to
    'approved'."""
    reversed_row = get_transaction(db, original_id)
    now = db.now()
    row = db.query_one(
        "INSERT INTO reversals (original_id, reason, created_at) VALUES (:oid, :reason, :now)"
        " ON CONFLICT (original_id) DO NOTHING RETURNING *",
        {"oid": original_id, "reason": reason, "now": now},
    )
    if row is None:
        existing = get_reversal(db, original_id)
        raise AlreadyReversed(original_id, existing.id if existing else -1)
    set_status(db, original_id, "reversed")
    if reversed_row.txn_type in UNDO_TYPES and reversed_row.original_id is not None:
        # A reversed void/cancel/completion void puts what it undid back to approved.
        db.execute(
            "UPDATE transactions SET status = 'approved' WHERE id = :id AND status = 'voided'",
            {"id": reversed_row.original_id},
        )
    webhooks.emit_reversal(db, original_id, reversed_row.mid, reversed_row.txn_type)
    saf_id = None
    if payload is not None:
        if link is None:
            raise ValueError("a SAF payload needs the issuer link to send it on")
        saf_id = saf_enqueue(
            db, original_id, link, payload, kind="reversal", next_attempt_at=next_attempt_at
        )
    return Reversal(**row, saf_id=saf_id)


def record_unknown_outcome(
    db: Db,
    txn_id: int,
    reason: str,
    *,
    link: str,
    payload: bytes,
    rrn: str | None = None,
    settlement_date: str | None = None,
) -> Reversal | None:
    """The issuer's answer never came: record the outcome as ``timeout``/98 and queue the
    reversal in ONE transaction, so no crash can leave an unknown outcome without its reversal.
    A row already reversed (the terminal's own 0400 won the race) is left as it is (None)."""
    if get_reversal(db, txn_id) is not None:
        return None
    record_outcome(
        db, txn_id, status="timeout", response_code="98", rrn=rrn,
        settlement_date=settlement_date, notify=False,  # the reversal's event says it all
    )  # fmt: skip
    return record_reversal(db, txn_id, reason, link=link, payload=payload)


def get_reversal(db: Db, original_id: int) -> Reversal | None:
    row = db.query_one("SELECT * FROM reversals WHERE original_id = :oid", {"oid": original_id})
    return None if row is None else Reversal(**row)


def saf_enqueue(
    db: Db,
    transaction_id: int | None,
    link: str,
    payload: bytes,
    *,
    kind: str = "reversal",
    next_attempt_at: int | None = None,
) -> int:
    row = db.query_one(
        "INSERT INTO saf_queue (transaction_id, link, kind, payload, attempts, next_attempt_at,"
        " status, created_at) VALUES (:tid, :link, :kind, :payload, 0, :next, 'pending', :now)"
        " RETURNING id",
        {
            "tid": transaction_id,
            "link": link,
            "kind": kind,
            "payload": bytes(payload),
            "next": db.now() if next_attempt_at is None else next_attempt_at,
            "now": db.now(),
        },
    )
    assert row is not None
    return row["id"]


def saf_due(
    db: Db, now: int | None = None, limit: int = 100, link: str | None = None
) -> list[SafItem]:
    """Pending items whose next attempt is due at ``now`` (default: the clock), oldest first."""
    params: dict[str, Any] = {"now": db.now() if now is None else now, "limit": int(limit)}
    link_clause = ""
    if link is not None:
        link_clause = " AND link = :link"
        params["link"] = link
    rows = db.query(
        "SELECT * FROM saf_queue WHERE status = 'pending' AND next_attempt_at <= :now"  # noqa: S608
        f"{link_clause} ORDER BY next_attempt_at, id LIMIT :limit",
        params,
    )
    return [SafItem(**r) for r in rows]


def saf_get(db: Db, saf_id: int) -> SafItem:
    row = db.query_one("SELECT * FROM saf_queue WHERE id = :id", {"id": saf_id})
    if row is None:
        raise NotFound(f"SAF item {saf_id} not found")
    return SafItem(**row)


def saf_mark_attempt(db: Db, saf_id: int, next_attempt_at: int, error: str | None = None) -> None:
    """Count a failed send; try again at ``next_attempt_at``."""
    changed = db.execute(
        "UPDATE saf_queue SET attempts = attempts + 1, next_attempt_at = :next,"
        " last_error = :error WHERE id = :id AND status = 'pending'",
        {"id": saf_id, "next": next_attempt_at, "error": error},
    )
    if not changed:
        raise NotFound(f"pending SAF item {saf_id} not found")


def saf_ack(db: Db, saf_id: int) -> None:
    changed = db.execute(
        "UPDATE saf_queue SET status = 'acked', attempts = attempts + 1, acked_at = :now"
        " WHERE id = :id AND status = 'pending'",
        {"id": saf_id, "now": db.now()},
    )
    if not changed:
        raise NotFound(f"pending SAF item {saf_id} not found")


def saf_fail(db: Db, saf_id: int, error: str) -> None:
    """Give up on an item (it stays in the table, status ``failed``, for operations)."""
    changed = db.execute(
        "UPDATE saf_queue SET status = 'failed', last_error = :error"
        " WHERE id = :id AND status = 'pending'",
        {"id": saf_id, "error": error},
    )
    if not changed:
        raise NotFound(f"pending SAF item {saf_id} not found")
