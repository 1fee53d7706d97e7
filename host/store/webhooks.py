"""Merchant webhooks in the journal: each merchant's endpoint, the durable outbox of events and
the delivery log (docs/webhooks.md).

The rule that makes events safe: :func:`emit_outcome` and :func:`emit_reversal` are called by
the journal writes that give a row its final state (``ops.record_outcome``,
``ops.record_reversal``), inside the same database transaction. The event row and the outcome
commit together or not at all, so a crash can neither lose an event nor make a second one;
a new channel (QR) that records its outcomes through those writes gets events for free.

Which rows: the journalled types that move or hold money (the registry's ``settles``,
``undoes``, ``completes`` or ``card_debit``); a balance inquiry is no business of the
merchant's back office. Each event's body is fixed when it is written, so every delivery and
every re-send of one event id carries the same bytes.

Like every function of ``host.store.ops``: takes a Db first, never begins or commits.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import attrs

from codec import txntypes
from host.store.db import Db
from host.store.errors import NotFound

# Types whose final outcome becomes an event (registry facts, never a list of names).
NOTIFIED = frozenset(
    txntypes.names(
        lambda t: t.journal and bool(t.settles or t.undoes or t.completes or t.card_debit)
    )
)
_CREDITS = frozenset(txntypes.CREDITS)
_UNDOING = frozenset(txntypes.UNDOING)

KINDS = (
    "transaction.approved",
    "transaction.declined",
    "transaction.voided",
    "transaction.refunded",
    "transaction.reversed",
)
EVENT_STATUSES = ("pending", "delivered", "failed")
# What a merchant's event says about the journal row (no fingerprint, no issuer details).
PAYLOAD_FIELDS = (
    "id", "tid", "mid", "batch", "stan", "business_date", "txn_type", "channel", "amount",
    "currency", "pan_masked", "card_group", "rrn", "auth_code", "response_code", "status",
    "original_id", "requested_at", "responded_at",
)  # fmt: skip


@attrs.frozen(kw_only=True)
class MerchantWebhook:
    """A merchant's endpoint. The secret stays sealed (keys/webhook.py) and out of ``repr``."""

    mid: str
    url: str
    sealed_secret: str = attrs.field(repr=False)
    secret_check: str
    created_at: int
    updated_at: int


@attrs.frozen(kw_only=True)
class WebhookEvent:
    id: int
    event_id: str
    mid: str
    transaction_id: int | None
    kind: str
    payload: str  # the JSON body, byte for byte what is POSTed
    status: str
    attempts: int
    next_attempt_at: int
    last_error: str | None
    created_at: int
    retry_since: int  # retries stop a configured time after this (creation, or a re-send)
    delivered_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, filter=lambda a, _v: a.name != "payload")


@attrs.frozen(kw_only=True)
class WebhookDelivery:
    """One attempt: the HTTP status (None when no answer came), how long it took."""

    id: int
    event_id: str
    mid: str
    attempt: int
    url: str
    status_code: int | None
    latency_ms: int
    error: str | None
    at: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def outcome_kind(txn_type: str, status: str) -> str | None:
    """The event an outcome makes: an approved refund is ``refunded``, an approved void (or
    cancel) ``voided``, any other approval ``approved``; declined, failed (96) or unknown (98,
    for a type that cannot be reversed) rows are ``declined``."""
    if status == "approved":
        if txn_type in _CREDITS:
            return "transaction.refunded"
        if txn_type in _UNDOING:
            return "transaction.voided"
        return "transaction.approved"
    if status in ("declined", "error", "timeout"):
        return "transaction.declined"
    return None


def _iso(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _insert_event(db: Db, row: dict[str, Any], kind: str) -> str:
    """The event for ``row`` (a journal row as the database holds it)."""
    now = db.now()
    event_id = "evt_" + secrets.token_hex(12)
    txn = {k: row.get(k) for k in PAYLOAD_FIELDS}
    if row.get("original_id") is not None:
        original = db.query_one(
            "SELECT rrn FROM transactions WHERE id = :id", {"id": row["original_id"]}
        )
        txn["original_rrn"] = original["rrn"] if original else None
    body = {
        "id": event_id,
        "type": kind,
        "created": _iso(now),
        "merchant": row["mid"],
        "data": {"transaction": txn},
    }
    db.execute(
        "INSERT INTO webhook_events (event_id, mid, transaction_id, kind, payload, status,"
        " attempts, next_attempt_at, created_at, retry_since) VALUES (:eid, :mid, :tid, :kind,"
        " :payload, 'pending', 0, :now, :now, :now)",
        {
            "eid": event_id,
            "mid": row["mid"],
            "tid": row["id"],
            "kind": kind,
            "payload": json.dumps(body, separators=(",", ":"), sort_keys=True),
            "now": now,
        },
    )
    return event_id


def _subscribed(db: Db, mid: str) -> bool:
    row = db.query_one("SELECT 1 AS x FROM merchant_webhooks WHERE mid = :mid", {"mid": mid})
    return row is not None


def emit_outcome(db: Db, txn_id: int, mid: str, txn_type: str, status: str) -> str | None:
    """After an outcome is written: queue its event when the merchant has a webhook. Returns the
    event id (None: no event). One indexed read when the merchant has none."""
    kind = outcome_kind(txn_type, status)
    if kind is None or txn_type not in NOTIFIED or not _subscribed(db, mid):
        return None
    row = db.query_one("SELECT * FROM transactions WHERE id = :id", {"id": txn_id})
    return None if row is None else _insert_event(db, row, kind)


def emit_reversal(db: Db, txn_id: int, mid: str, txn_type: str) -> str | None:
    """After a row is marked reversed (by the terminal's 0400, an unknown outcome or recovery):
    queue ``transaction.reversed`` when the merchant has a webhook."""
    if txn_type not in NOTIFIED or not _subscribed(db, mid):
        return None
    row = db.query_one("SELECT * FROM transactions WHERE id = :id", {"id": txn_id})
    return None if row is None else _insert_event(db, row, "transaction.reversed")


# -- the merchant's endpoint -------------------------------------------------------------------


def set_webhook(db: Db, mid: str, url: str, sealed_secret: str, secret_check: str) -> None:
    """Create or replace a merchant's endpoint and secret."""
    if db.query_one("SELECT mid FROM merchants WHERE mid = :mid", {"mid": mid}) is None:
        raise NotFound(f"merchant {mid} not found")
    params = {"mid": mid, "url": url, "s": sealed_secret, "c": secret_check, "now": db.now()}
    db.execute(
        "INSERT INTO merchant_webhooks (mid, url, sealed_secret, secret_check, created_at,"
        " updated_at) VALUES (:mid, :url, :s, :c, :now, :now) ON CONFLICT (mid) DO UPDATE SET"
        " url = :url, sealed_secret = :s, secret_check = :c, updated_at = :now",
        params,
    )


def get_webhook(db: Db, mid: str) -> MerchantWebhook | None:
    row = db.query_one("SELECT * FROM merchant_webhooks WHERE mid = :mid", {"mid": mid})
    return None if row is None else MerchantWebhook(**row)


def clear_webhook(db: Db, mid: str) -> None:
    """Remove the endpoint: no new events; pending ones fail at their next attempt (a re-send
    after a new `webhook set` delivers them)."""
    if not db.execute("DELETE FROM merchant_webhooks WHERE mid = :mid", {"mid": mid}):
        raise NotFound(f"merchant {mid} has no webhook")


# -- the outbox ----------------------------------------------------------------------------------


def webhook_events_due(db: Db) -> bool:
    """Whether any pending event is due: the worker's idle poll is this read, not a write."""
    row = db.query_one(
        "SELECT 1 AS x FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= :now"
        " LIMIT 1",
        {"now": db.now()},
    )
    return row is not None


def claim_webhook_events(db: Db, hold_ms: int, limit: int = 50) -> list[WebhookEvent]:
    """Take the due pending events for one delivery attempt each: their next attempt moves
    ``hold_ms`` ahead first, so another poll (or another host on the same journal) leaves them
    alone while this one is in flight, and an attempt cut short by a crash is simply retried
    then. Oldest first."""
    now = db.now()
    rows = db.query(
        "SELECT * FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= :now"
        " ORDER BY next_attempt_at, id LIMIT :limit",
        {"now": now, "limit": int(limit)},
    )
    claimed = []
    for row in rows:
        if db.execute(
            "UPDATE webhook_events SET next_attempt_at = :hold WHERE id = :id"
            " AND status = 'pending' AND next_attempt_at = :was",
            {"hold": now + hold_ms, "id": row["id"], "was": row["next_attempt_at"]},
        ):
            claimed.append(WebhookEvent(**row))
    return claimed


def record_webhook_attempt(
    db: Db,
    event_id: str,
    *,
    url: str,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    delivered: bool,
    retry_in_ms: int = 0,
    give_up_after_ms: int = 86_400_000,
) -> str:
    """Log one attempt and move the event on, in one transaction. Returns what became of it:
    'delivered'; 'pending' (next attempt ``retry_in_ms`` from now); or 'failed' when the next
    attempt would come ``give_up_after_ms`` or more after the event was made (or re-sent)."""
    event = get_webhook_event(db, event_id)
    attempt = event.attempts + 1
    now = db.now()
    db.execute(
        "INSERT INTO webhook_deliveries (event_id, mid, attempt, url, status_code, latency_ms,"
        " error, at) VALUES (:eid, :mid, :n, :url, :code, :ms, :error, :now)",
        {"eid": event_id, "mid": event.mid, "n": attempt, "url": url, "code": status_code,
         "ms": int(latency_ms), "error": error, "now": now},
    )  # fmt: skip
    if delivered:
        status = "delivered"
    elif now + retry_in_ms >= event.retry_since + give_up_after_ms:
        status = "failed"
    else:
        status = "pending"
    db.execute(
        "UPDATE webhook_events SET attempts = :n, status = :status, last_error = :error,"
        " next_attempt_at = :next, delivered_at = :delivered WHERE event_id = :eid",
        {"n": attempt, "status": status, "error": None if delivered else error,
         "next": now + retry_in_ms, "delivered": now if delivered else None, "eid": event_id},
    )  # fmt: skip
    return status


def resend_webhook_event(db: Db, event_id: str) -> WebhookEvent:
    """Deliver an event again, now: same event id, same body (the receiver dedupes on the id).
    A delivered or failed event goes back to pending, with a fresh day of retries."""
    now = db.now()
    if not db.execute(
        "UPDATE webhook_events SET status = 'pending', next_attempt_at = :now,"
        " retry_since = :now WHERE event_id = :eid",
        {"now": now, "eid": event_id},
    ):
        raise NotFound(f"webhook event {event_id} not found")
    return get_webhook_event(db, event_id)


def get_webhook_event(db: Db, event_id: str) -> WebhookEvent:
    row = db.query_one("SELECT * FROM webhook_events WHERE event_id = :eid", {"eid": event_id})
    if row is None:
        raise NotFound(f"webhook event {event_id} not found")
    return WebhookEvent(**row)


def list_webhook_events(
    db: Db,
    *,
    mid: str | None = None,
    transaction_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[WebhookEvent]:
    """Events, newest first."""
    clauses, params = [], {"limit": int(limit)}
    for name, value in (("mid", mid), ("transaction_id", transaction_id), ("status", status)):
        if value is not None:
            clauses.append(f"{name} = :{name}")
            params[name] = value
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = db.query(
        f"SELECT * FROM webhook_events{where} ORDER BY id DESC LIMIT :limit",  # noqa: S608
        params,
    )
    return [WebhookEvent(**r) for r in rows]


def count_webhook_events(db: Db, mid: str) -> dict[str, int]:
    """A merchant's events by state (pending, delivered, failed)."""
    rows = db.query(
        "SELECT status, COUNT(*) AS n FROM webhook_events WHERE mid = :mid GROUP BY status",
        {"mid": mid},
    )
    counts = dict.fromkeys(EVENT_STATUSES, 0)
    counts.update({r["status"]: int(r["n"]) for r in rows})
    return counts


def list_webhook_deliveries(
    db: Db, *, mid: str | None = None, event_id: str | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    """Delivery attempts, newest first."""
    clauses, params = [], {"limit": int(limit)}
    for name, value in (("mid", mid), ("event_id", event_id)):
        if value is not None:
            clauses.append(f"{name} = :{name}")
            params[name] = value
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = db.query(
        f"SELECT * FROM webhook_deliveries{where} ORDER BY id DESC LIMIT :limit",  # noqa: S608
        params,
    )
    return [WebhookDelivery(**r) for r in rows]
