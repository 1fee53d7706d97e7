"""Every query of the store, written once for both backends.

Each function takes a :class:`~host.store.db.Db` first. Write functions never begin or commit:
the caller (the writer thread, or the synchronous store) runs them inside a transaction and a
savepoint, so a function that raises leaves no partial change behind. Expected conflicts
(duplicates, a second reversal) are detected with ``ON CONFLICT DO NOTHING`` and reported as
exceptions from Python, so they never abort the surrounding group transaction.
"""

from __future__ import annotations

from typing import Any

from codec import txntypes
from codec.txntypes import sql_list
from host.store.db import Db
from host.store.errors import (
    AlreadyExists,
    AlreadyReversed,
    DuplicateTransaction,
    NotFound,
    OriginalConflict,
)
from host.store.records import (
    CARD_GROUPS,
    KEY_MODES,
    ROLES,
    TXN_STATUSES,
    Batch,
    BatchTotals,
    BatchUploadRecord,
    BusinessDay,
    GroupTotals,
    Merchant,
    NewTransaction,
    Operator,
    Reversal,
    SafItem,
    Terminal,
    Transaction,
    to_json,
)

# ---------------------------------------------------------------------------------------------
# Estate: merchants, terminals, operators


def add_merchant(db: Db, mid: str, name: str, mcc: str) -> Merchant:
    row = db.query_one(
        "INSERT INTO merchants (mid, name, mcc, status, created_at)"
        " VALUES (:mid, :name, :mcc, 'active', :now)"
        " ON CONFLICT (mid) DO NOTHING RETURNING *",
        {"mid": mid, "name": name, "mcc": mcc, "now": db.now()},
    )
    if row is None:
        raise AlreadyExists(f"merchant {mid} exists")
    return Merchant(**row)


def get_merchant(db: Db, mid: str) -> Merchant:
    row = db.query_one("SELECT * FROM merchants WHERE mid = :mid", {"mid": mid})
    if row is None:
        raise NotFound(f"merchant {mid} not found")
    return Merchant(**row)


def list_merchants(db: Db, status: str | None = None) -> list[Merchant]:
    where, params = _where(status=status)
    rows = db.query(f"SELECT * FROM merchants{where} ORDER BY mid", params)  # noqa: S608
    return [Merchant(**r) for r in rows]


def set_merchant_status(db: Db, mid: str, status: str) -> None:
    _check(status, ("active", "disabled"), "merchant status")
    params = {"s": status, "mid": mid}
    if not db.execute("UPDATE merchants SET status = :s WHERE mid = :mid", params):
        raise NotFound(f"merchant {mid} not found")


def add_terminal(
    db: Db,
    tid: str,
    mid: str,
    key_mode: str,
    *,
    serial: str | None = None,
    current_batch: str = "000001",
) -> Terminal:
    _check(key_mode, KEY_MODES, "key mode")
    get_merchant(db, mid)  # NotFound with a clear message rather than a foreign-key error
    row = db.query_one(
        "INSERT INTO terminals (tid, mid, key_mode, serial, current_batch, created_at)"
        " VALUES (:tid, :mid, :key_mode, :serial, :batch, :now)"
        " ON CONFLICT (tid) DO NOTHING RETURNING *",
        {
            "tid": tid,
            "mid": mid,
            "key_mode": key_mode,
            "serial": serial,
            "batch": current_batch,
            "now": db.now(),
        },
    )
    if row is None:
        raise AlreadyExists(f"terminal {tid} exists")
    return Terminal(**row)


def get_terminal(db: Db, tid: str) -> Terminal:
    row = db.query_one("SELECT * FROM terminals WHERE tid = :tid", {"tid": tid})
    if row is None:
        raise NotFound(f"terminal {tid} not found")
    return Terminal(**row)


def list_terminals(db: Db, mid: str | None = None, status: str | None = None) -> list[Terminal]:
    where, params = _where(mid=mid, status=status)
    rows = db.query(f"SELECT * FROM terminals{where} ORDER BY tid", params)  # noqa: S608
    return [Terminal(**r) for r in rows]


def set_terminal_status(db: Db, tid: str, status: str) -> None:
    _check(status, ("active", "disabled"), "terminal status")
    _update_terminal(db, tid, "status = :status", {"status": status})


def set_terminal_profile(db: Db, tid: str, *, balance_entries: int | None) -> None:
    """What this terminal's fields can hold; None puts a value back to the host's default."""
    if balance_entries not in (None, 1, 2):
        raise ValueError("balance_entries must be 1 or 2")
    _update_terminal(db, tid, "balance_entries = :n", {"n": balance_entries})


def set_terminal_keys(
    db: Db, tid: str, *, tmk_token: str | None = None, bdk_token: str | None = None
) -> None:
    """Store the terminal's master key token and/or DUKPT base key token (opaque text)."""
    sets = []
    if tmk_token is not None:
        sets.append("tmk_token = :tmk")
    if bdk_token is not None:
        sets.append("bdk_token = :bdk")
    if not sets:
        raise ValueError("give tmk_token and/or bdk_token")
    _update_terminal(db, tid, ", ".join(sets), {"tmk": tmk_token, "bdk": bdk_token})


_NO_PENDING = (
    "pending_pik_token = NULL, pending_mak_token = NULL, pending_tdk_token = NULL,"
    " pending_operator = NULL, pending_at = NULL"
)
_PROMOTE = (
    "UPDATE terminals SET pik_token = pending_pik_token, mak_token = pending_mak_token,"
    " tdk_token = pending_tdk_token, operator = pending_operator, signed_on = 1,"
    " signed_on_at = :now, pending_pik_token = NULL, pending_mak_token = NULL,"
    " pending_tdk_token = NULL, pending_operator = NULL, pending_at = NULL"
    " WHERE tid = :tid AND pending_mak_token = :mak"
)
_DROP_PENDING = (
    "UPDATE terminals SET pending_pik_token = NULL, pending_mak_token = NULL,"
    " pending_tdk_token = NULL, pending_operator = NULL, pending_at = NULL"
    " WHERE tid = :tid AND pending_mak_token = :mak"
)


def sign_on(
    db: Db,
    tid: str,
    *,
    pik_token: str,
    mak_token: str,
    tdk_token: str | None = None,
    operator: str | None = None,
    now: int | None = None,
) -> str:
    """Store a sign-on's working-key tokens. A terminal that has working keys keeps them: the
    new ones wait as *pending* until a request MACed under the new MAK proves that the
    terminal, not a stranger who read its TID off a receipt, holds them (``promote_keys``).
    A terminal without keys gets them in force at once: there is nothing to protect.

    ``now`` (epoch ms, the host's clock) dates the pending keys. Returns ``"current"``,
    ``"pending"``, or ``"replaced"`` (pending, and an earlier pending set was dropped)."""
    params = {
        "pik": pik_token,
        "mak": mak_token,
        "tdk": tdk_token,
        "operator": operator,
        "at": db.now() if now is None else now,
        "tid": tid,
    }
    before = db.query_one("SELECT pending_mak_token FROM terminals WHERE tid = :tid", params)
    if before is None:
        raise NotFound(f"terminal {tid} not found")
    pending = db.execute(
        "UPDATE terminals SET pending_pik_token = :pik, pending_mak_token = :mak,"
        " pending_tdk_token = :tdk, pending_operator = :operator, pending_at = :at"
        " WHERE tid = :tid AND signed_on = 1 AND mak_token IS NOT NULL",
        params,
    )
    if pending:
        return "replaced" if before["pending_mak_token"] else "pending"
    _update_terminal(
        db,
        tid,
        "pik_token = :pik, mak_token = :mak, tdk_token = :tdk, signed_on = 1,"
        f" operator = :operator, signed_on_at = :now, {_NO_PENDING}",
        {**params, "now": db.now()},
    )
    return "current"


def promote_keys(db: Db, tid: str, mak_token: str) -> bool:
    """The terminal proved the pending keys whose MAK is ``mak_token``: they replace the
    current ones. True also when a concurrent request promoted them first; False when they
    are neither pending nor current any more (replaced by a later sign-on, or signed off)."""
    if db.execute(_PROMOTE, {"tid": tid, "mak": mak_token, "now": db.now()}):
        return True
    row = db.query_one("SELECT mak_token FROM terminals WHERE tid = :tid", {"tid": tid})
    return row is not None and row["mak_token"] == mak_token


def drop_pending_keys(db: Db, tid: str, mak_token: str) -> bool:
    """Forget pending keys (expired unproven); only the set named by its MAK, so a sign-on
    that came in meanwhile keeps its own."""
    return bool(db.execute(_DROP_PENDING, {"tid": tid, "mak": mak_token}))


def sign_off(db: Db, tid: str) -> None:
    """Forget the session: working keys (current and pending) cleared, signed_on false."""
    _update_terminal(
        db,
        tid,
        "pik_token = NULL, mak_token = NULL, tdk_token = NULL, signed_on = 0, operator = NULL,"
        f" {_NO_PENDING}",
        {},
    )


def set_current_batch(db: Db, tid: str, batch: str) -> None:
    _update_terminal(db, tid, "current_batch = :batch", {"batch": batch})


def _update_terminal(db: Db, tid: str, assignments: str, params: dict[str, Any]) -> None:
    sql = f"UPDATE terminals SET {assignments} WHERE tid = :tid"  # noqa: S608 (fixed fragments)
    if not db.execute(sql, {**params, "tid": tid}):
        raise NotFound(f"terminal {tid} not found")


def add_operator(db: Db, tid: str, operator_no: str, password_hash: str, role: str) -> Operator:
    _check(role, ROLES, "role")
    get_terminal(db, tid)
    row = db.query_one(
        "INSERT INTO operators (tid, operator_no, password_hash, role, status, created_at)"
        " VALUES (:tid, :no, :hash, :role, 'active', :now)"
        " ON CONFLICT (tid, operator_no) DO NOTHING RETURNING *",
        {"tid": tid, "no": operator_no, "hash": password_hash, "role": role, "now": db.now()},
    )
    if row is None:
        raise AlreadyExists(f"operator {operator_no} of terminal {tid} exists")
    return Operator(**row)


def get_operator(db: Db, tid: str, operator_no: str) -> Operator:
    row = db.query_one(
        "SELECT * FROM operators WHERE tid = :tid AND operator_no = :no",
        {"tid": tid, "no": operator_no},
    )
    if row is None:
        raise NotFound(f"operator {operator_no} of terminal {tid} not found")
    return Operator(**row)


def list_operators(db: Db, tid: str | None = None) -> list[Operator]:
    where, params = _where(tid=tid)
    rows = db.query(f"SELECT * FROM operators{where} ORDER BY tid, operator_no", params)  # noqa: S608
    return [Operator(**r) for r in rows]


def set_operator_status(db: Db, tid: str, operator_no: str, status: str) -> None:
    _check(status, ("active", "disabled"), "operator status")
    changed = db.execute(
        "UPDATE operators SET status = :s WHERE tid = :tid AND operator_no = :no",
        {"s": status, "tid": tid, "no": operator_no},
    )
    if not changed:
        raise NotFound(f"operator {operator_no} of terminal {tid} not found")


# ---------------------------------------------------------------------------------------------
# The journal

_TXN_INSERT_COLUMNS = (
    "tid, mid, batch, stan, business_date, txn_type, mti, processing_code, condition_code,"
    " amount, currency, pan_masked, pan_fingerprint, card_group, rrn, original_id, issuer_link,"
    " issuer_stan, requested_at, extra"
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
) -> None:
    """Record the issuer's answer (or a timeout/error). Fields given as None keep their value;
    ``latency_ms`` defaults to responded_at - requested_at. ``original_status`` also sets the
    status of the row this one refers to, in the same transaction (e.g. ``'voided'`` when a
    void is approved)."""
    _check(status, TXN_STATUSES, "status")
    responded_at = db.now() if responded_at is None else responded_at
    changed = db.execute(
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
        " WHERE id = :id",
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
    if not changed:
        raise NotFound(f"transaction {txn_id} not found")
    if original_status is not None:
        _check(original_status, TXN_STATUSES, "original status")
        row = db.query_one("SELECT original_id FROM transactions WHERE id = :id", {"id": txn_id})
        if row is None or row["original_id"] is None:
            raise NotFound(f"transaction {txn_id} has no original not found")
        set_status(db, row["original_id"], original_status)


def set_status(db: Db, txn_id: int, status: str) -> None:
    _check(status, TXN_STATUSES, "status")
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
    where, params = _where(rrn=rrn, business_date=business_date, tid=tid)
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
    limit: int = 100,
    offset: int = 0,
) -> list[Transaction]:
    """Filtered journal rows, newest first. ``pan_fingerprint`` finds one card's rows (see
    :func:`host.store.records.pan_fingerprint`)."""
    where, params = _where(
        tid=tid,
        mid=mid,
        business_date=business_date,
        status=status,
        rrn=rrn,
        txn_type=txn_type,
        batch=batch,
        pan_fingerprint=pan_fingerprint,
    )
    params.update(limit=int(limit), offset=int(offset))
    rows = db.query(
        f"SELECT * FROM transactions{where} ORDER BY id DESC LIMIT :limit OFFSET :offset",  # noqa: S608
        params,
    )
    return [Transaction(**r) for r in rows]


# Debits and credits as the registry says (approved ones only: voided/reversed rows are not
# 'approved'). The IN lists are the registry's own names, never input.
_DEBITS, _CREDITS = sql_list(txntypes.DEBITS), sql_list(txntypes.CREDITS)
_SETTLED, _CARD_DEBITS = sql_list(txntypes.SETTLED), sql_list(txntypes.CARD_DEBITS)
_TOTALS_SQL = f"""
SELECT card_group,
  SUM(CASE WHEN txn_type IN {_DEBITS} THEN amount ELSE 0 END) AS debit_amount,
  SUM(CASE WHEN txn_type IN {_DEBITS} THEN 1 ELSE 0 END) AS debit_count,
  SUM(CASE WHEN txn_type IN {_CREDITS} THEN amount ELSE 0 END) AS credit_amount,
  SUM(CASE WHEN txn_type IN {_CREDITS} THEN 1 ELSE 0 END) AS credit_count
FROM transactions
WHERE tid = :tid AND batch = :batch AND status = 'approved'
GROUP BY card_group
"""  # noqa: S608 (registry type names, never input)


def batch_totals(db: Db, tid: str, batch: str) -> BatchTotals:
    """The host's settlement totals of a terminal batch, per card group: debits are approved
    purchases, completions and completion advices (a voided or reversed one is no longer
    'approved'); credits are approved refunds."""
    groups = {g: GroupTotals() for g in CARD_GROUPS}
    for row in db.query(_TOTALS_SQL, {"tid": tid, "batch": batch}):
        group = row.pop("card_group")
        groups[group] = GroupTotals(**{k: int(v) for k, v in row.items()})
    return BatchTotals(**groups)


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
        db, txn_id, status="timeout", response_code="98", rrn=rrn, settlement_date=settlement_date
    )
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
    where, params = _where(tid=tid, status=status)
    rows = db.query(f"SELECT * FROM batches{where} ORDER BY tid, batch", params)  # noqa: S608
    return [Batch(**r) for r in rows]


def close_batch(
    db: Db,
    tid: str,
    batch: str,
    *,
    status: str,
    host_totals: BatchTotals | dict | None = None,
    terminal_totals: BatchTotals | dict | None = None,
) -> None:
    """Settle a batch: status ``closed`` (balanced), ``unbalanced`` or ``flagged``."""
    _check(status, ("closed", "unbalanced", "flagged"), "batch close status")
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
    host_totals: BatchTotals | dict | None,
    terminal_totals: BatchTotals | dict | None,
) -> None:
    """Close ``batch`` with ``status`` and open ``next_batch`` as the terminal's current one,
    in one transaction (a crash leaves either the old batch open or the new one current)."""
    open_batch(db, tid, batch, business_date)
    close_batch(
        db, tid, batch, status=status, host_totals=host_totals, terminal_totals=terminal_totals
    )
    set_current_batch(db, tid, next_batch)
    open_batch(db, tid, next_batch, business_date)


def _totals_dict(totals: BatchTotals | dict | None) -> dict | None:
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


# ---------------------------------------------------------------------------------------------


def _where(**filters: Any) -> tuple[str, dict[str, Any]]:
    """`` WHERE a = :a AND b = :b`` for the filters that are not None (column names are ours,
    never user input)."""
    params = {k: v for k, v in filters.items() if v is not None}
    if not params:
        return "", {}
    return " WHERE " + " AND ".join(f"{k} = :{k}" for k in params), params


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


# Small conveniences the estate CLI and the flows read better with.


def disable_merchant(db: Db, mid: str) -> None:
    set_merchant_status(db, mid, "disabled")


def enable_merchant(db: Db, mid: str) -> None:
    set_merchant_status(db, mid, "active")


def disable_terminal(db: Db, tid: str) -> None:
    set_terminal_status(db, tid, "disabled")


def enable_terminal(db: Db, tid: str) -> None:
    set_terminal_status(db, tid, "active")


def disable_operator(db: Db, tid: str, operator_no: str) -> None:
    set_operator_status(db, tid, operator_no, "disabled")


def enable_operator(db: Db, tid: str, operator_no: str) -> None:
    set_operator_status(db, tid, operator_no, "active")


# ---------------------------------------------------------------------------------------------
# Merchant operations: risk limits and events, merchant terms (host/merchant/risk.py and
# host/merchant/operators.py)


def set_risk_limits(db: Db, scope: str, key: str, values: dict[str, int | None]) -> None:
    """Create or update the override row (scope, key); a value None clears that field (it is
    inherited again), a field not named keeps its value."""
    from host.store.merchant_records import LIMIT_FIELDS

    _check(scope, ("mcc", "merchant"), "limit scope")
    unknown = set(values) - set(LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    db.execute(
        "INSERT INTO risk_limits (scope, key, updated_at) VALUES (:scope, :key, :now)"
        " ON CONFLICT (scope, key) DO NOTHING",
        {"scope": scope, "key": key, "now": db.now()},
    )
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer")
        db.execute(
            f"UPDATE risk_limits SET {name} = :v, updated_at = :now"  # noqa: S608 (checked name)
            " WHERE scope = :scope AND key = :key",
            {"v": value, "now": db.now(), "scope": scope, "key": key},
        )


def delete_risk_limits(db: Db, scope: str, key: str) -> None:
    if not db.execute(
        "DELETE FROM risk_limits WHERE scope = :scope AND key = :key", {"scope": scope, "key": key}
    ):
        raise NotFound(f"no {scope} limits for {key}")


def get_risk_limit_rows(db: Db, mid: str, mcc: str) -> list[Any]:
    """The MCC row and the merchant row that apply to ``mid`` (either may be missing)."""
    from host.store.merchant_records import RiskLimitRow

    rows = db.query(
        "SELECT * FROM risk_limits WHERE (scope = 'mcc' AND key = :mcc)"
        " OR (scope = 'merchant' AND key = :mid)",
        {"mcc": mcc, "mid": mid},
    )
    return [RiskLimitRow(**r) for r in rows]


def list_risk_limits(db: Db) -> list[Any]:
    from host.store.merchant_records import RiskLimitRow

    rows = db.query("SELECT * FROM risk_limits ORDER BY scope, key")
    return [RiskLimitRow(**r) for r in rows]


def merchant_risk_totals(db: Db, mid: str, business_date: str, month_start: str) -> dict[str, int]:
    """One aggregate over the merchant's approved rows this month: sales of the day, sales of
    the month, refunds of the month (debits: purchase, completion, completion advice)."""
    row = db.query_one(
        "SELECT"  # noqa: S608 (registry type names, never input)
        " COALESCE(SUM(CASE WHEN business_date = :d AND txn_type IN"
        f"   {_DEBITS} THEN amount ELSE 0 END), 0) AS day,"
        f" COALESCE(SUM(CASE WHEN txn_type IN {_DEBITS}"
        "   THEN amount ELSE 0 END), 0) AS month,"
        f" COALESCE(SUM(CASE WHEN txn_type IN {_CREDITS} THEN amount ELSE 0 END), 0) AS refunds"
        " FROM transactions WHERE mid = :mid AND status = 'approved'"
        " AND business_date >= :m AND business_date <= :d",
        {"mid": mid, "d": business_date, "m": month_start},
    )
    return {k: int(row[k]) for k in ("day", "month", "refunds")} if row else {}


def recent_card_debits(db: Db, since_ms: int) -> list[tuple[str, int, int]]:
    """(pan_fingerprint, requested_at, amount) of approved or pending debits since ``since_ms``:
    the seed of the in-memory per-card velocity windows."""
    rows = db.query(
        "SELECT pan_fingerprint, requested_at, amount FROM transactions"  # noqa: S608 (registry type names, never input)
        " WHERE requested_at >= :since AND pan_fingerprint IS NOT NULL"
        " AND status IN ('approved', 'pending')"
        f" AND txn_type IN {_CARD_DEBITS}",
        {"since": since_ms},
    )
    return [(r["pan_fingerprint"], int(r["requested_at"]), int(r["amount"])) for r in rows]


def add_risk_event(
    db: Db,
    *,
    mid: str,
    tid: str,
    business_date: str,
    txn_type: str,
    amount: int,
    rule: str,
    response_code: str,
    detail: str,
    pan_masked: str | None = None,
) -> int:
    row = db.query_one(
        "INSERT INTO risk_events (mid, tid, business_date, txn_type, amount, rule,"
        " response_code, detail, pan_masked, created_at) VALUES (:mid, :tid, :d, :type,"
        " :amount, :rule, :code, :detail, :pan, :now) RETURNING id",
        {
            "mid": mid,
            "tid": tid,
            "d": business_date,
            "type": txn_type,
            "amount": amount,
            "rule": rule,
            "code": response_code,
            "detail": detail,
            "pan": pan_masked,
            "now": db.now(),
        },
    )
    assert row is not None
    return row["id"]


def list_risk_events(
    db: Db,
    *,
    mid: str | None = None,
    business_date: str | None = None,
    tid: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Any]:
    from host.store.merchant_records import RiskEvent

    where, params = _where(mid=mid, business_date=business_date, tid=tid)
    params.update(limit=int(limit), offset=int(offset))
    rows = db.query(
        f"SELECT * FROM risk_events{where} ORDER BY id DESC LIMIT :limit OFFSET :offset",  # noqa: S608
        params,
    )
    return [RiskEvent(**r) for r in rows]


def add_security_events(db: Db, events: list[dict[str, Any]]) -> None:
    """Several counted events in one statement each (the monitor flushes them together)."""
    for e in events:
        db.execute(
            "INSERT INTO security_events (kind, peer, tid, detail, count, first_at, last_at)"
            " VALUES (:kind, :peer, :tid, :detail, :count, :first_at, :last_at)",
            {
                "kind": e["kind"],
                "peer": e.get("peer"),
                "tid": e.get("tid"),
                "detail": e.get("detail", ""),
                "count": int(e.get("count", 1)),
                "first_at": int(e["first_at"]),
                "last_at": int(e["last_at"]),
            },
        )


def list_security_events(
    db: Db,
    *,
    kind: str | None = None,
    tid: str | None = None,
    peer: str | None = None,
    limit: int = 100,
) -> list[Any]:
    from host.store.merchant_records import SecurityEvent

    where, params = _where(kind=kind, tid=tid, peer=peer)
    params.update(limit=int(limit))
    rows = db.query(
        f"SELECT * FROM security_events{where} ORDER BY id DESC LIMIT :limit",  # noqa: S608
        params,
    )
    return [SecurityEvent(**r) for r in rows]


def set_merchant_terms(db: Db, mid: str, values: dict[str, Any]) -> None:
    """Create or update a merchant's terms; None clears a field back to the default."""
    from host.store.merchant_records import TERMS_FIELDS

    unknown = set(values) - set(TERMS_FIELDS)
    if unknown:
        raise ValueError(f"unknown term(s): {', '.join(sorted(unknown))}")
    get_merchant(db, mid)
    db.execute(
        "INSERT INTO merchant_terms (mid, updated_at) VALUES (:mid, :now)"
        " ON CONFLICT (mid) DO NOTHING",
        {"mid": mid, "now": db.now()},
    )
    for name, value in values.items():
        if name == "require_operator" and value is not None:
            value = int(bool(value))
        db.execute(
            f"UPDATE merchant_terms SET {name} = :v, updated_at = :now WHERE mid = :mid",  # noqa: S608
            {"v": value, "now": db.now(), "mid": mid},
        )


def get_merchant_terms(db: Db, mid: str) -> Any:
    """The merchant's terms (all None when none were set)."""
    from host.store.merchant_records import MerchantTerms

    row = db.query_one("SELECT * FROM merchant_terms WHERE mid = :mid", {"mid": mid})
    return MerchantTerms(mid=mid) if row is None else MerchantTerms(**row)


# ---------------------------------------------------------------------------------------------
# Merchant settlement (host/merchant/settlement.py) and reconciliation (host/merchant/recon.py)

_DAY_TOTALS_SQL = f"""
SELECT mid,
  SUM(CASE WHEN txn_type IN {_DEBITS} THEN 1 ELSE 0 END) AS debit_count,
  SUM(CASE WHEN txn_type IN {_DEBITS} THEN amount ELSE 0 END) AS debit_amount,
  SUM(CASE WHEN txn_type IN {_CREDITS} THEN 1 ELSE 0 END) AS credit_count,
  SUM(CASE WHEN txn_type IN {_CREDITS} THEN amount ELSE 0 END) AS credit_amount
FROM transactions
WHERE business_date = :d AND status = 'approved'
  AND txn_type IN {_SETTLED}{{extra}}
GROUP BY mid
"""  # noqa: S608 (registry type names, never input)


def merchant_day_totals(db: Db, business_date: str, mid: str | None = None) -> dict[str, Any]:
    """mid -> DayTotals of the approved debits (purchase, completion, completion advice) and
    credits (refund) of one business date: what merchant settlement pays, from the journal."""
    from host.store.merchant_records import DayTotals

    params: dict[str, Any] = {"d": business_date}
    extra = ""
    if mid is not None:
        extra, params["mid"] = " AND mid = :mid", mid
    rows = db.query(_DAY_TOTALS_SQL.format(extra=extra), params)
    return {r["mid"]: DayTotals(**{k: int(r[k] or 0) for k in r if k != "mid"}) for r in rows}


def settlement_candidates(db: Db, business_date: str) -> list[str]:
    """Merchants to settle for a date: those with counted transactions that day, and those
    whose latest earlier record carried a balance over. Sorted (the run's fixed order)."""
    mids = set(merchant_day_totals(db, business_date))
    rows = db.query(
        "SELECT s.mid, s.carried_out FROM merchant_settlements s WHERE s.business_date ="
        " (SELECT MAX(p.business_date) FROM merchant_settlements p WHERE p.mid = s.mid"
        "  AND p.business_date < :d)",
        {"d": business_date},
    )
    mids.update(r["mid"] for r in rows if int(r["carried_out"]) != 0)
    return sorted(mids)


def get_merchant_settlement(db: Db, mid: str, business_date: str) -> Any:
    from host.store.merchant_records import MerchantSettlement

    row = db.query_one(
        "SELECT * FROM merchant_settlements WHERE mid = :mid AND business_date = :d",
        {"mid": mid, "d": business_date},
    )
    return None if row is None else MerchantSettlement(**row)


def list_merchant_settlements(
    db: Db, *, mid: str | None = None, business_date: str | None = None, limit: int = 1000
) -> list[Any]:
    from host.store.merchant_records import MerchantSettlement

    where, params = _where(mid=mid, business_date=business_date)
    params["limit"] = int(limit)
    rows = db.query(
        f"SELECT * FROM merchant_settlements{where}"  # noqa: S608
        " ORDER BY business_date DESC, mid LIMIT :limit",
        params,
    )
    return [MerchantSettlement(**r) for r in rows]


def settle_merchant(
    db: Db,
    mid: str,
    business_date: str,
    *,
    cycle: str,
    fee_rate: str,
    min_payout: int,
    payout_date: str,
) -> Any:
    """Create the merchant's settlement record for ``business_date`` from the journal, in one
    transaction, exactly once: when the record exists already it is returned unchanged (a
    re-run, or another process that got there first)."""
    from host.store.merchant_records import DayTotals, fee_for

    existing = get_merchant_settlement(db, mid, business_date)
    if existing is not None:
        return existing
    _check(cycle, ("T1", "D0"), "cycle")
    totals = merchant_day_totals(db, business_date, mid).get(mid, DayTotals())
    previous = db.query_one(
        "SELECT carried_out FROM merchant_settlements WHERE mid = :mid"
        " AND business_date < :d ORDER BY business_date DESC LIMIT 1",
        {"mid": mid, "d": business_date},
    )
    carried_in = int(previous["carried_out"]) if previous else 0
    gross = totals.gross
    fee = fee_for(gross, fee_rate)
    net = gross - fee
    balance = net + carried_in
    payout = balance if balance >= min_payout and balance > 0 else 0
    params = {
        "mid": mid,
        "d": business_date,
        "cycle": cycle,
        "payout_date": payout_date,
        "dc": totals.debit_count,
        "da": totals.debit_amount,
        "cc": totals.credit_count,
        "ca": totals.credit_amount,
        "gross": gross,
        "rate": fee_rate,
        "fee": fee,
        "net": net,
        "cin": carried_in,
        "payout": payout,
        "cout": balance - payout,
        "status": "paid" if payout else "carried",
        "now": db.now(),
    }
    db.execute(
        "INSERT INTO merchant_settlements (mid, business_date, cycle, payout_date, debit_count,"
        " debit_amount, credit_count, credit_amount, gross, fee_rate, fee, net, carried_in,"
        " payout, carried_out, status, created_at) VALUES (:mid, :d, :cycle, :payout_date,"
        " :dc, :da, :cc, :ca, :gross, :rate, :fee, :net, :cin, :payout, :cout, :status, :now)"
        " ON CONFLICT (mid, business_date) DO NOTHING",
        params,
    )
    return get_merchant_settlement(db, mid, business_date)


def counted_transactions(db: Db, mid: str, business_date: str) -> list[Transaction]:
    """The journal rows a merchant's settlement counts for a date (approved debits and
    credits), in journal order: the transaction detail file."""
    rows = db.query(
        "SELECT * FROM transactions WHERE mid = :mid AND business_date = :d"  # noqa: S608 (registry type names, never input)
        " AND status = 'approved'"
        f" AND txn_type IN {_SETTLED}"
        " ORDER BY id",
        {"mid": mid, "d": business_date},
    )
    return [Transaction(**r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Activation (host/merchant/activation.py): devices' transport keys, one-time activation codes


def enroll_device(db: Db, serial: str, transport_token: str, *, replace: bool = False) -> None:
    """Record a device's transport key token (by TUSN)."""
    conflict = "DO UPDATE SET transport_token = :token" if replace else "DO NOTHING"
    sql = (
        "INSERT INTO devices (serial, transport_token, created_at)"  # noqa: S608 (fixed fragments)
        " VALUES (:serial, :token, :now) ON CONFLICT (serial) " + conflict
    )
    changed = db.execute(sql, {"serial": serial, "token": transport_token, "now": db.now()})
    if not changed:
        raise AlreadyExists(f"device {serial} is enrolled already")


def get_device(db: Db, serial: str) -> Any:
    from host.store.merchant_records import Device

    row = db.query_one("SELECT * FROM devices WHERE serial = :s", {"s": serial})
    return None if row is None else Device(**row)


def add_activation_code(
    db: Db, tid: str, code_hash: str, *, expires_at: int, max_tries: int, serial: str | None
) -> int:
    """A new code for ``tid``; codes issued before it and not used are void from now on (only
    the latest code of a terminal is ever checked)."""
    get_terminal(db, tid)
    row = db.query_one(
        "INSERT INTO activation_codes (tid, code_hash, serial, expires_at, tries, max_tries,"
        " created_at) VALUES (:tid, :hash, :serial, :exp, 0, :max, :now) RETURNING id",
        {"tid": tid, "hash": code_hash, "serial": serial, "exp": expires_at, "max": max_tries,
         "now": db.now()},
    )  # fmt: skip
    assert row is not None
    return row["id"]


def latest_activation_code(db: Db, tid: str) -> Any:
    from host.store.merchant_records import ActivationCode

    row = db.query_one(
        "SELECT * FROM activation_codes WHERE tid = :tid ORDER BY id DESC LIMIT 1", {"tid": tid}
    )
    return None if row is None else ActivationCode(**row)


def count_activation_try(db: Db, code_id: int) -> int:
    """One more failed try; returns the count."""
    db.execute("UPDATE activation_codes SET tries = tries + 1 WHERE id = :id", {"id": code_id})
    row = db.query_one("SELECT tries FROM activation_codes WHERE id = :id", {"id": code_id})
    return int(row["tries"]) if row else 0


def activate_terminal(
    db: Db, code_id: int, tid: str, *, tmk_token: str, serial: str, now: int
) -> bool:
    """Use the code (still unused, not locked, not expired at ``now``) and store the new TMK and
    the serial, in one transaction. False (and nothing changed) when the code was used, locked
    or expired in the meantime."""
    changed = db.execute(
        "UPDATE activation_codes SET used_at = :now WHERE id = :id AND used_at IS NULL"
        " AND tries < max_tries AND expires_at > :now",
        {"id": code_id, "now": now},
    )
    if not changed:
        return False
    _update_terminal(
        db, tid, "tmk_token = :tmk, serial = :serial, signed_on = 0, pik_token = NULL,"
        f" mak_token = NULL, tdk_token = NULL, {_NO_PENDING}", {"tmk": tmk_token, "serial": serial},
    )  # fmt: skip
    return True


# ---------------------------------------------------------------------------------------------
# Back-office API tokens (host/backoffice)


def add_api_token(
    db: Db, mid: str, token_hash: str, label: str | None = None, expires_at: int | None = None
) -> int:
    get_merchant(db, mid)
    row = db.query_one(
        "INSERT INTO api_tokens (mid, token_hash, label, created_at, expires_at)"
        " VALUES (:mid, :hash, :label, :now, :exp) RETURNING id",
        {"mid": mid, "hash": token_hash, "label": label, "now": db.now(), "exp": expires_at},
    )
    assert row is not None
    return row["id"]


def get_api_token(db: Db, token_id: int) -> Any:
    from host.store.merchant_records import ApiToken

    row = db.query_one("SELECT * FROM api_tokens WHERE id = :id", {"id": token_id})
    return None if row is None else ApiToken(**row)


def list_api_tokens(db: Db, mid: str | None = None) -> list[Any]:
    from host.store.merchant_records import ApiToken

    where, params = _where(mid=mid)
    rows = db.query(f"SELECT * FROM api_tokens{where} ORDER BY id", params)  # noqa: S608
    return [ApiToken(**r) for r in rows]


def rehash_api_token(db: Db, token_id: int, old_hash: str, new_hash: str) -> bool:
    """Replace a legacy (scrypt) hash with a digest, unless the row changed meanwhile."""
    return bool(
        db.execute(
            "UPDATE api_tokens SET token_hash = :new WHERE id = :id AND token_hash = :old",
            {"id": token_id, "old": old_hash, "new": new_hash},
        )
    )


def revoke_api_token(db: Db, token_id: int) -> None:
    if not db.execute(
        "UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL",
        {"id": token_id, "now": db.now()},
    ):
        raise NotFound(f"active API token {token_id} not found")
