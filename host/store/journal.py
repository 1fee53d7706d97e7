"""The transaction journal: pending rows, outcomes, lookups of originals, batch totals; and the
batches, batch upload records and the business day.

See ``host.store.ops`` for how these functions are written and called.
"""

from __future__ import annotations

from typing import Any

from host.store import webhooks
from host.store.db import Db
from host.store.errors import (
    DuplicateTransaction,
    NotFound,
    OriginalConflict,
)
from host.store.estate import set_current_batch
from host.store.records import (
    CARD_GROUPS,
    TXN_STATUSES,
    Batch,
    BatchTotals,
    BatchUploadRecord,
    BusinessDay,
    GroupTotals,
    NewTransaction,
    Transaction,
    to_json,
)
from host.store.sql import MONEY_SUMS, check_choice, where_clause

# ---------------------------------------------------------------------------------------------
# The journal

_TXN_INSERT_COLUMNS = (
    "tid, mid, batch, stan, business_date, txn_type, mti, processing_code, condition_code,"
    " amount, currency, pan_masked, pan_fingerprint, card_group, rrn, original_id, issuer_link,"
    " issuer_stan, requested_at, extra, master_tid, channel"
)
_TXN_INSERT = (
    f"INSERT INTO transactions ({_TXN_INSERT_COLUMNS}, status) VALUES ("  # noqa: S608
    + ", ".join(f":{c.strip()}" for c in _TXN_INSERT_COLUMNS.split(","))
    + ", 'pending') ON CONFLICT (tid, batch, stan, business_date) DO NOTHING RETURNING id"
)
# The same with the id given: the SQLite journal's writer hands out ids itself when it makes
# a request durable in its log before the row reaches the table (host/store/log_writer.py).
_TXN_INSERT_WITH_ID = _TXN_INSERT.replace(" (tid,", " (id, tid,", 1).replace(
    "VALUES (", "VALUES (:id, ", 1
)


def insert_pending(db: Db, txn: NewTransaction, *, txn_id: int | None = None) -> int:
    """Journal a request as ``pending`` and return its id; raises ``DuplicateTransaction``
    when (tid, batch, stan, business_date) is journalled already. ``txn_id``: the id to use
    (the journal's writer allocates ids in log mode), else the database's next one."""
    params = {
        "tid": txn.tid,
        "mid": txn.mid,
        "batch": txn.batch,
        "stan": txn.stan,
        "business_date": txn.business_date,
        "txn_type": txn.txn_type,
        "mti": txn.mti,
        "processing_code": txn.processing_code,
        "condition_code": txn.condition_code,
        "amount": txn.amount,
        "currency": txn.currency,
        "pan_masked": txn.pan_masked,
        "pan_fingerprint": txn.pan_fingerprint,
        "card_group": txn.card_group,
        "rrn": txn.rrn,
        "original_id": txn.original_id,
        "issuer_link": txn.issuer_link,
        "issuer_stan": txn.issuer_stan,
        "requested_at": db.now() if txn.requested_at is None else txn.requested_at,
        "extra": to_json(txn.extra),
        "master_tid": txn.master_tid,
        "channel": txn.channel,
    }
    if txn_id is None:
        row = db.query_one(_TXN_INSERT, params)
    else:
        row = db.query_one(_TXN_INSERT_WITH_ID, {**params, "id": txn_id})
    if row is None:
        existing = find_transaction(db, txn.tid, txn.batch, txn.stan, txn.business_date)
        raise DuplicateTransaction(
            txn.tid, txn.batch, txn.stan, txn.business_date, existing.id if existing else -1
        )
    return row["id"]


def insert_pending_child(
    db: Db,
    txn: NewTransaction,
    *,
    sibling_types: tuple[str, ...],
    statuses: tuple[str, ...] = ("pending", "approved", "timeout"),
    max_amount: int | None = None,
    txn_id: int | None = None,
) -> int:
    """``insert_pending`` for a row that refers to ``txn.original_id`` (void, refund,
    completion...), checked against its siblings in the same transaction: with ``max_amount``
    None, any sibling of ``sibling_types`` in ``statuses`` refuses it (a second void or
    completion); otherwise the siblings' amounts plus this one may not exceed ``max_amount``
    (partial refunds). Raises ``OriginalConflict`` and journals nothing when refused."""
    if txn.original_id is None:
        raise ValueError("insert_pending_child needs txn.original_id")
    if db.backend == "postgresql":  # serialize siblings of one original across host processes
        db.query_one(
            "SELECT id FROM transactions WHERE id = :id FOR UPDATE", {"id": txn.original_id}
        )
    params: dict[str, Any] = {"oid": txn.original_id}
    types = _in_list("t", sibling_types, params)
    states = _in_list("s", statuses, params)
    row = db.query_one(
        "SELECT COUNT(*) AS n, COALESCE(SUM(amount), 0) AS total FROM transactions"  # noqa: S608
        f" WHERE original_id = :oid AND txn_type IN ({types}) AND status IN ({states})",
        params,
    )
    count, total = (int(row["n"]), int(row["total"])) if row else (0, 0)
    if max_amount is None and count:
        raise OriginalConflict(txn.original_id, f"{count} {'/'.join(sibling_types)} already")
    if max_amount is not None and total + txn.amount > max_amount:
        raise OriginalConflict(txn.original_id, f"{total} + {txn.amount} exceeds {max_amount}")
    return insert_pending(db, txn, txn_id=txn_id)


def _in_list(prefix: str, values: tuple[str, ...], params: dict[str, Any]) -> str:
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f":{prefix}{i}")
    return ", ".join(names)


def record_outcome(
    db: Db,
    txn_id: int,
    *,
    status: str,
    response_code: str | None = None,
    auth_code: str | None = None,
    rrn: str | None = None,
    issuer_link: str | None = None,
    issuer_stan: str | None = None,
    settlement_date: str | None = None,
    responded_at: int | None = None,
    latency_ms: int | None = None,
    extra: dict[str, Any] | None = None,
    original_status: str | None = None,
    notify: bool = True,
) -> None:
    """Record the issuer's answer (or a timeout/error). Fields given as None keep their value;
    ``latency_ms`` defaults to responded_at - requested_at. ``original_status`` also sets the
    status of the row this one refers to, in the same transaction (e.g. ``'voided'`` when a
    void is approved). The merchant's webhook event for the outcome is queued in the same
    transaction too (``notify=False``: the caller queues the event that follows instead, as
    an unknown outcome does with its reversal)."""
    check_choice(status, TXN_STATUSES, "status")
    responded_at = db.now() if responded_at is None else responded_at
    row = db.query_one(
        "UPDATE transactions SET status = :status,"
        " response_code = COALESCE(:response_code, response_code),"
        " auth_code = COALESCE(:auth_code, auth_code),"
        " rrn = COALESCE(:rrn, rrn),"
        " issuer_link = COALESCE(:issuer_link, issuer_link),"
        " issuer_stan = COALESCE(:issuer_stan, issuer_stan),"
        " settlement_date = COALESCE(:settlement_date, settlement_date),"
        " extra = COALESCE(:extra, extra),"
        " responded_at = :responded_at,"
        " latency_ms = COALESCE(:latency_ms, :responded_at - requested_at)"
        " WHERE id = :id RETURNING mid, txn_type, original_id",
        {
            "id": txn_id,
            "status": status,
            "response_code": response_code,
            "auth_code": auth_code,
            "rrn": rrn,
            "issuer_link": issuer_link,
            "issuer_stan": issuer_stan,
            "settlement_date": settlement_date,
            "extra": to_json(extra),
            "responded_at": responded_at,
            "latency_ms": latency_ms,
        },
    )
    if row is None:
        raise NotFound(f"transaction {txn_id} not found")
    if original_status is not None:
        check_choice(original_status, TXN_STATUSES, "original status")
        if row["original_id"] is None:
            raise NotFound(f"transaction {txn_id} has no original not found")
        set_status(db, row["original_id"], original_status)
    if notify:
        webhooks.emit_outcome(db, txn_id, row["mid"], row["txn_type"], status)


def set_status(db: Db, txn_id: int, status: str) -> None:
    check_choice(status, TXN_STATUSES, "status")
    params = {"s": status, "id": txn_id}
    if not db.execute("UPDATE transactions SET status = :s WHERE id = :id", params):
        raise NotFound(f"transaction {txn_id} not found")


def get_transaction(db: Db, txn_id: int) -> Transaction:
    row = db.query_one("SELECT * FROM transactions WHERE id = :id", {"id": txn_id})
    if row is None:
        raise NotFound(f"transaction {txn_id} not found")
    return Transaction(**row)


def find_transaction(
    db: Db, tid: str, batch: str, stan: str, business_date: str
) -> Transaction | None:
    row = db.query_one(
        "SELECT * FROM transactions WHERE tid = :tid AND batch = :batch AND stan = :stan"
        " AND business_date = :date",
        {"tid": tid, "batch": batch, "stan": stan, "date": business_date},
    )
    return None if row is None else Transaction(**row)


def find_by_rrn(
    db: Db, rrn: str, business_date: str | None = None, tid: str | None = None
) -> list[Transaction]:
    """Rows with this RRN (optionally on one business date / terminal), oldest first."""
    where, params = where_clause(rrn=rrn, business_date=business_date, tid=tid)
    rows = db.query(f"SELECT * FROM transactions{where} ORDER BY id", params)  # noqa: S608
    return [Transaction(**r) for r in rows]


def find_in_batch(db: Db, tid: str, batch: str, stan: str) -> list[Transaction]:
    """Rows of a terminal batch with this STAN (any business date), newest first."""
    rows = db.query(
        "SELECT * FROM transactions WHERE tid = :tid AND batch = :batch AND stan = :stan"
        " ORDER BY id DESC",
        {"tid": tid, "batch": batch, "stan": stan},
    )
    return [Transaction(**r) for r in rows]


def find_by_auth_code(db: Db, tid: str, txn_type: str, auth_code: str) -> list[Transaction]:
    """A terminal's rows of one type with this authorization code, newest first."""
    rows = db.query(
        "SELECT * FROM transactions WHERE tid = :tid AND txn_type = :type AND auth_code = :code"
        " ORDER BY id DESC",
        {"tid": tid, "type": txn_type, "code": auth_code},
    )
    return [Transaction(**r) for r in rows]


def find_by_original(db: Db, original_id: int) -> list[Transaction]:
    """Rows that refer to ``original_id`` (its voids, refunds, completions), oldest first."""
    rows = db.query(
        "SELECT * FROM transactions WHERE original_id = :id ORDER BY id", {"id": original_id}
    )
    return [Transaction(**r) for r in rows]


def list_transactions(
    db: Db,
    *,
    tid: str | None = None,
    mid: str | None = None,
    business_date: str | None = None,
    status: str | None = None,
    rrn: str | None = None,
    txn_type: str | None = None,
    batch: str | None = None,
    pan_fingerprint: str | None = None,
    channel: str | None = None,
    rolls_up_to: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Transaction]:
    """Filtered journal rows, newest first. ``pan_fingerprint`` finds one card's rows (see
    :func:`host.store.records.pan_fingerprint`); ``rolls_up_to`` a master's rows and its
    secondaries' (docs/tills.md)."""
    where, params = where_clause(
        tid=tid,
        mid=mid,
        business_date=business_date,
        status=status,
        rrn=rrn,
        txn_type=txn_type,
        batch=batch,
        pan_fingerprint=pan_fingerprint,
        channel=channel,
    )
    if rolls_up_to is not None:
        where += " AND" if where else " WHERE"
        where += " (master_tid = :rolls_up_to OR (master_tid IS NULL AND tid = :rolls_up_to))"
        params["rolls_up_to"] = rolls_up_to
    params.update(limit=int(limit), offset=int(offset))
    rows = db.query(
        f"SELECT * FROM transactions{where} ORDER BY id DESC LIMIT :limit OFFSET :offset",  # noqa: S608
        params,
    )
    return [Transaction(**r) for r in rows]


_TOTALS_SQL = f"""
SELECT card_group,
{MONEY_SUMS}FROM transactions
WHERE tid = :tid AND batch = :batch AND status = 'approved'
GROUP BY card_group
"""


def batch_totals(db: Db, tid: str, batch: str) -> BatchTotals:
    """The host's settlement totals of a terminal batch, per card group: debits are the
    approved rows of the registry's debit types (purchase, completion, completion advice,
    transfer; a voided or reversed one is no longer 'approved'); credits are approved refunds."""
    groups = {g: GroupTotals() for g in CARD_GROUPS}
    for row in db.query(_TOTALS_SQL, {"tid": tid, "batch": batch}):
        group = row.pop("card_group")
        groups[group] = GroupTotals(**{k: int(v) for k, v in row.items()})
    return BatchTotals(**groups)


# ---------------------------------------------------------------------------------------------
# Batches, batch upload, business day


def open_batch(db: Db, tid: str, batch: str, business_date: str) -> Batch:
    """Open (tid, batch) if it is not there yet; returns the row either way."""
    db.execute(
        "INSERT INTO batches (tid, batch, status, opened_at, business_date)"
        " VALUES (:tid, :batch, 'open', :now, :date) ON CONFLICT (tid, batch) DO NOTHING",
        {"tid": tid, "batch": batch, "now": db.now(), "date": business_date},
    )
    return get_batch(db, tid, batch)


def get_batch(db: Db, tid: str, batch: str) -> Batch:
    row = db.query_one(
        "SELECT * FROM batches WHERE tid = :tid AND batch = :batch", {"tid": tid, "batch": batch}
    )
    if row is None:
        raise NotFound(f"batch {batch} of terminal {tid} not found")
    return Batch(**row)


def list_batches(db: Db, tid: str | None = None, status: str | None = None) -> list[Batch]:
    where, params = where_clause(tid=tid, status=status)
    rows = db.query(f"SELECT * FROM batches{where} ORDER BY tid, batch", params)  # noqa: S608
    return [Batch(**r) for r in rows]


def close_batch(
    db: Db,
    tid: str,
    batch: str,
    *,
    status: str,
    host_totals: BatchTotals | dict[str, Any] | None = None,
    terminal_totals: BatchTotals | dict[str, Any] | None = None,
) -> None:
    """Settle a batch: status ``closed`` (balanced), ``unbalanced`` or ``flagged``."""
    check_choice(status, ("closed", "unbalanced", "flagged"), "batch close status")
    changed = db.execute(
        "UPDATE batches SET status = :status, closed_at = :now, host_totals = :host,"
        " terminal_totals = :terminal WHERE tid = :tid AND batch = :batch",
        {
            "tid": tid,
            "batch": batch,
            "status": status,
            "now": db.now(),
            "host": to_json(_totals_dict(host_totals)),
            "terminal": to_json(_totals_dict(terminal_totals)),
        },
    )
    if not changed:
        raise NotFound(f"batch {batch} of terminal {tid} not found")


def settle_batch(
    db: Db,
    tid: str,
    batch: str,
    *,
    next_batch: str,
    business_date: str,
    status: str,
    host_totals: BatchTotals | dict[str, Any] | None,
    terminal_totals: BatchTotals | dict[str, Any] | None,
) -> None:
    """Close ``batch`` with ``status`` and open ``next_batch`` as the terminal's current one,
    in one transaction (a crash leaves either the old batch open or the new one current)."""
    open_batch(db, tid, batch, business_date)
    close_batch(
        db, tid, batch, status=status, host_totals=host_totals, terminal_totals=terminal_totals
    )
    set_current_batch(db, tid, next_batch)
    open_batch(db, tid, next_batch, business_date)


def _totals_dict(totals: BatchTotals | dict[str, Any] | None) -> dict[str, Any] | None:
    return totals.to_dict() if isinstance(totals, BatchTotals) else totals


def add_batch_upload_record(
    db: Db, tid: str, batch: str, seq: int, record: dict[str, Any], agrees: bool
) -> None:
    db.execute(
        "INSERT INTO batch_upload_records (tid, batch, seq, record, agrees)"
        " VALUES (:tid, :batch, :seq, :record, :agrees)"
        " ON CONFLICT (tid, batch, seq) DO UPDATE SET record = :record, agrees = :agrees",
        {
            "tid": tid,
            "batch": batch,
            "seq": seq,
            "record": to_json(record),
            "agrees": int(agrees),
        },
    )


def list_batch_upload_records(db: Db, tid: str, batch: str) -> list[BatchUploadRecord]:
    rows = db.query(
        "SELECT * FROM batch_upload_records WHERE tid = :tid AND batch = :batch ORDER BY seq",
        {"tid": tid, "batch": batch},
    )
    return [BatchUploadRecord(**r) for r in rows]


def get_business_day(db: Db) -> BusinessDay | None:
    row = db.query_one(
        "SELECT business_date, settlement_date, cutover_at FROM business_day WHERE id = 1"
    )
    return None if row is None else BusinessDay(**row)


def set_business_day(
    db: Db, business_date: str, settlement_date: str, cutover_at: int | None = None
) -> BusinessDay:
    """Set the single business-day row (cutover)."""
    params = {"d": business_date, "s": settlement_date, "c": cutover_at}
    db.execute(
        "INSERT INTO business_day (id, business_date, settlement_date, cutover_at)"
        " VALUES (1, :d, :s, :c) ON CONFLICT (id) DO UPDATE SET business_date = :d,"
        " settlement_date = :s, cutover_at = :c",
        params,
    )
    return BusinessDay(business_date, settlement_date, cutover_at)
