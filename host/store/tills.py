"""Master and secondary terminals in the estate, and the journal's per-till totals.

A terminal may name a master: another terminal of the same merchant that is itself no one's
secondary. One level only, so a till group is a master and its secondaries, and a chain or a
cycle cannot be written: a secondary cannot be a master, a master cannot become a secondary, a
terminal cannot be its own master. Each change is checked and written in one transaction; on
PostgreSQL the rows involved are locked first (in TID order), so two changes made at once by
two processes cannot build a chain between them. (docs/tills.md)

"""

from __future__ import annotations

from typing import Any

from host.store.db import Db
from host.store.errors import NotFound, TillRefused
from host.store.merchant_records import TillTotals
from host.store.records import Terminal
from host.store.sql import MONEY_SUMS, SETTLED


def _terminal(db: Db, tid: str, *, lock: bool = False) -> Terminal:
    lock_clause = " FOR UPDATE" if lock and db.backend == "postgresql" else ""
    row = db.query_one(
        f"SELECT * FROM terminals WHERE tid = :tid{lock_clause}",  # noqa: S608 (fixed fragment)
        {"tid": tid},
    )
    if row is None:
        raise NotFound(f"terminal {tid} not found")
    return Terminal(**row)


def list_secondaries(db: Db, master_tid: str) -> list[Terminal]:
    """The terminals whose master is ``master_tid``, by TID."""
    rows = db.query("SELECT * FROM terminals WHERE master_tid = :m ORDER BY tid", {"m": master_tid})
    return [Terminal(**r) for r in rows]


def check_master(db: Db, tid: str, mid: str, master_tid: str) -> Terminal:
    """Refuse (``TillRefused``) making ``master_tid`` the master of ``tid`` (of merchant
    ``mid``); returns the master's row. Locks the master's row on PostgreSQL."""
    if master_tid == tid:
        raise TillRefused(f"terminal {tid} cannot be its own master")
    master = _terminal(db, master_tid, lock=True)
    if master.mid != mid:
        raise TillRefused(
            f"terminal {master_tid} belongs to merchant {master.mid}, not {mid}:"
            " a master must belong to the same merchant"
        )
    if master.master_tid is not None:
        raise TillRefused(
            f"terminal {master_tid} is a secondary of {master.master_tid}: a secondary cannot"
            " be a master (no chains)"
        )
    return master


def set_master(db: Db, tid: str, master_tid: str | None) -> Terminal:
    """Make ``tid`` a secondary of ``master_tid`` (None: no one's secondary any more); returns
    the terminal's new row. Rows journalled earlier keep the master they were written with."""
    if master_tid is not None and db.backend == "postgresql":
        for key in sorted({tid, master_tid}):  # one lock order for every writer
            db.query_one("SELECT tid FROM terminals WHERE tid = :t FOR UPDATE", {"t": key})
    terminal = _terminal(db, tid, lock=True)
    if master_tid is not None:
        check_master(db, tid, terminal.mid, master_tid)
        secondaries = [t.tid for t in list_secondaries(db, tid)]
        if secondaries:
            raise TillRefused(
                f"terminal {tid} is the master of {', '.join(secondaries)}: a master cannot"
                " become a secondary (no chains); move its secondaries first"
            )
    db.execute(
        "UPDATE terminals SET master_tid = :m WHERE tid = :tid", {"m": master_tid, "tid": tid}
    )
    return _terminal(db, tid)


_TILL_TOTALS_SQL = f"""
SELECT mid, tid, master_tid,
{MONEY_SUMS}FROM transactions
WHERE business_date = :d AND status = 'approved'
  AND txn_type IN {SETTLED}{{extra}}
GROUP BY mid, tid, master_tid
"""


def till_day_totals(db: Db, business_date: str, mid: str | None = None) -> list[TillTotals]:
    """Per terminal (and the master it was journalled with), the approved debits and credits
    of one business date: the same rows merchant settlement counts, so the lines of a
    merchant add up to its settlement record. Ordered by merchant, master, terminal."""
    params: dict[str, Any] = {"d": business_date}
    extra = ""
    if mid is not None:
        extra, params["mid"] = " AND mid = :mid", mid
    rows = [
        TillTotals(
            **{k: (v if k in ("mid", "tid", "master_tid") else int(v or 0)) for k, v in r.items()}
        )
        for r in db.query(_TILL_TOTALS_SQL.format(extra=extra), params)
    ]
    # sorted here, not in SQL: the backends order NULLs differently
    return sorted(rows, key=lambda t: (t.mid, t.rolls_up_to, t.master_tid is not None, t.tid))
