"""Who may come in: devices' transport keys and one-time activation codes, and the back-office
API tokens.

See ``host.store.ops`` for how these functions are written and called.
"""

from __future__ import annotations

from typing import Any

from host.store.db import Db
from host.store.errors import (
    AlreadyExists,
    NotFound,
)
from host.store.estate import NO_PENDING_KEYS, get_merchant, get_terminal, update_terminal
from host.store.sql import where_clause

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
    assignments = (
        "tmk_token = :tmk, serial = :serial, signed_on = 0, pik_token = NULL,"
        f" mak_token = NULL, tdk_token = NULL, {NO_PENDING_KEYS}"
    )
    update_terminal(db, tid, assignments, {"tmk": tmk_token, "serial": serial})
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

    where, params = where_clause(mid=mid)
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
