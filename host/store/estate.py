"""The estate: merchants, terminals (their keys, session and current batch) and operators.

See ``host.store.ops`` for how these functions are written and called.
"""

from __future__ import annotations

from typing import Any

from host.store import tills
from host.store.db import Db
from host.store.errors import (
    AlreadyExists,
    NotFound,
)
from host.store.records import (
    KEY_MODES,
    ROLES,
    Merchant,
    Operator,
    Terminal,
)
from host.store.sql import check_choice, where_clause

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
    where, params = where_clause(status=status)
    rows = db.query(f"SELECT * FROM merchants{where} ORDER BY mid", params)  # noqa: S608
    return [Merchant(**r) for r in rows]


def set_merchant_status(db: Db, mid: str, status: str) -> None:
    check_choice(status, ("active", "disabled"), "merchant status")
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
    master_tid: str | None = None,
) -> Terminal:
    """``master_tid``: the new terminal is a secondary of that one (docs/tills.md)."""
    check_choice(key_mode, KEY_MODES, "key mode")
    get_merchant(db, mid)  # NotFound with a clear message rather than a foreign-key error
    if master_tid is not None:
        tills.check_master(db, tid, mid, master_tid)
    row = db.query_one(
        "INSERT INTO terminals (tid, mid, key_mode, serial, current_batch, master_tid,"
        " created_at) VALUES (:tid, :mid, :key_mode, :serial, :batch, :master, :now)"
        " ON CONFLICT (tid) DO NOTHING RETURNING *",
        {
            "tid": tid,
            "mid": mid,
            "key_mode": key_mode,
            "serial": serial,
            "batch": current_batch,
            "master": master_tid,
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
    where, params = where_clause(mid=mid, status=status)
    rows = db.query(f"SELECT * FROM terminals{where} ORDER BY tid", params)  # noqa: S608
    return [Terminal(**r) for r in rows]


def set_terminal_status(db: Db, tid: str, status: str) -> None:
    check_choice(status, ("active", "disabled"), "terminal status")
    update_terminal(db, tid, "status = :status", {"status": status})


def set_terminal_profile(db: Db, tid: str, *, balance_entries: int | None) -> None:
    """What this terminal's fields can hold; None puts a value back to the host's default."""
    if balance_entries not in (None, 1, 2):
        raise ValueError("balance_entries must be 1 or 2")
    update_terminal(db, tid, "balance_entries = :n", {"n": balance_entries})


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
    update_terminal(db, tid, ", ".join(sets), {"tmk": tmk_token, "bdk": bdk_token})


NO_PENDING_KEYS = (
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
    update_terminal(
        db,
        tid,
        "pik_token = :pik, mak_token = :mak, tdk_token = :tdk, signed_on = 1,"
        f" operator = :operator, signed_on_at = :now, {NO_PENDING_KEYS}",
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
    update_terminal(
        db,
        tid,
        "pik_token = NULL, mak_token = NULL, tdk_token = NULL, signed_on = 0, operator = NULL,"
        f" {NO_PENDING_KEYS}",
        {},
    )


def set_current_batch(db: Db, tid: str, batch: str) -> None:
    update_terminal(db, tid, "current_batch = :batch", {"batch": batch})


def update_terminal(db: Db, tid: str, assignments: str, params: dict[str, Any]) -> None:
    sql = f"UPDATE terminals SET {assignments} WHERE tid = :tid"  # noqa: S608 (fixed fragments)
    if not db.execute(sql, {**params, "tid": tid}):
        raise NotFound(f"terminal {tid} not found")


def add_operator(db: Db, tid: str, operator_no: str, password_hash: str, role: str) -> Operator:
    check_choice(role, ROLES, "role")
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
    where, params = where_clause(tid=tid)
    rows = db.query(f"SELECT * FROM operators{where} ORDER BY tid, operator_no", params)  # noqa: S608
    return [Operator(**r) for r in rows]


def set_operator_status(db: Db, tid: str, operator_no: str, status: str) -> None:
    check_choice(status, ("active", "disabled"), "operator status")
    changed = db.execute(
        "UPDATE operators SET status = :s WHERE tid = :tid AND operator_no = :no",
        {"s": status, "tid": tid, "no": operator_no},
    )
    if not changed:
        raise NotFound(f"operator {operator_no} of terminal {tid} not found")


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
