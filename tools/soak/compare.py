"""Journal versus issuer ledger: does every purchase stand the same on both sides?

Money is lost or doubled exactly when the host's journal and the issuer's ledger disagree on
which purchases stand. Both sides hold the terminal id and the retrieval reference number
(field 37, assigned by the host before the request leaves), so that pair is the key. A purchase
the journal holds as approved must be debited once at the issuer and not reversed there; a
debit the issuer holds (approved, not reversed) must be an approved purchase in the journal.
Everything else (declines, reversed pairs, requests that never reached the issuer) agrees.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import attrs

from codec.dump import mask_pan

Key = tuple[str, str]  # (terminal id, RRN)


@attrs.frozen
class JournalPurchase:
    """One purchase row of the host's journal, as far as the comparison needs it."""

    tid: str
    rrn: str
    stan: str
    status: str  # pending, approved, declined, timeout, reversed, voided, error
    amount: int
    pan_masked: str = ""

    @property
    def key(self) -> Key:
        return (self.tid, self.rrn)


@attrs.frozen
class IssuerPurchase:
    """One purchase row of the issuer simulator's ledger (``auths`` where kind = purchase)."""

    tid: str
    rrn: str
    stan: str
    code: str
    amount: int
    reversed: bool
    pan: str = attrs.field(default="", repr=False)  # clear at the issuer: only shown masked

    @property
    def key(self) -> Key:
        return (self.tid, self.rrn)

    @property
    def debited(self) -> bool:
        return self.code == "00" and not self.reversed


@attrs.frozen
class Mismatch:
    tid: str
    rrn: str
    stan: str
    pan_masked: str
    problem: str

    def line(self) -> str:
        key = f"tid={self.tid} rrn={self.rrn} stan={self.stan} pan={self.pan_masked}"
        return f"{key}: {self.problem}"


def compare(journal: Iterable[JournalPurchase], issuer: Iterable[IssuerPurchase]) -> list[Mismatch]:
    """Every purchase whose standing differs between journal and issuer, in key order."""
    by_journal: dict[Key, list[JournalPurchase]] = defaultdict(list)
    for row in journal:
        by_journal[row.key].append(row)
    by_issuer: dict[Key, list[IssuerPurchase]] = defaultdict(list)
    for row in issuer:
        by_issuer[row.key].append(row)
    found = []
    for key in sorted(set(by_journal) | set(by_issuer)):
        problem = _problem(by_journal.get(key, []), by_issuer.get(key, []))
        if problem:
            found.append(_mismatch(key, by_journal.get(key, []), by_issuer.get(key, []), problem))
    return found


def _problem(journal: list[JournalPurchase], issuer: list[IssuerPurchase]) -> str:
    approved = [r for r in journal if r.status == "approved"]
    debits = [r for r in issuer if r.debited]
    if len(approved) > 1:
        return f"journal holds {len(approved)} approved rows for one RRN"
    if len(debits) > 1:
        return f"issuer debited {len(debits)} times"
    if approved and not debits:
        reversed_ = any(r.code == "00" and r.reversed for r in issuer)
        return (
            "approved in the journal, reversed at the issuer"
            if reversed_
            else "approved in the journal, no debit at the issuer"
        )
    if debits and not approved:
        statuses = ",".join(sorted({r.status for r in journal})) or "no row"
        return f"debited at the issuer, journal: {statuses}"
    if approved and debits and approved[0].amount != debits[0].amount:
        return f"amount {approved[0].amount} in the journal, {debits[0].amount} at the issuer"
    return ""


def _mismatch(
    key: Key, journal: list[JournalPurchase], issuer: list[IssuerPurchase], problem: str
) -> Mismatch:
    stan = journal[0].stan if journal else issuer[0].stan
    pan = journal[0].pan_masked if journal and journal[0].pan_masked else ""
    if not pan and issuer:
        pan = mask_pan(issuer[0].pan)
    return Mismatch(key[0], key[1], stan, pan, problem)


# -- reading both sides ---------------------------------------------------------------------


def journal_purchases(journal_url: str) -> list[JournalPurchase]:
    """The purchase rows of the host's journal (any backend), through the store's own API."""
    from host.harness import SyncStore

    with SyncStore.open(journal_url) as store:
        rows = store.list_transactions(txn_type="purchase", limit=10_000_000)
    return [
        JournalPurchase(
            tid=r.tid,
            rrn=r.rrn or f"stan:{r.stan}",
            stan=r.stan,
            status=r.status,
            amount=r.amount,
            pan_masked=r.pan_masked or "",
        )
        for r in rows
    ]


def issuer_purchases(state_path: str | Path) -> list[IssuerPurchase]:
    """The purchase rows of the simulator's ledger, read-only (the simulator may be running)."""
    uri = f"file:{Path(state_path).resolve()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(
            "SELECT tid, rrn, stan, code, amount, reversed_by IS NOT NULL, pan FROM auths"
            " WHERE kind = 'purchase'"
        ).fetchall()
    return [
        IssuerPurchase(tid, rrn or f"stan:{stan}", stan, code, amount, bool(rev), pan)
        for tid, rrn, stan, code, amount, rev, pan in rows
    ]
