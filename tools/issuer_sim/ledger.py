"""SQLite state: cards, holds and the authorization ledger, with exactly-once effects.

Every request that can change state is one row in ``auths`` with a UNIQUE ``dedupe_key``
(message class | terminal | STAN | field 7 | RRN). Inside one ``BEGIN IMMEDIATE`` transaction
the ledger looks the key up, and either answers a repeat (the stored answer; 94 when the same
key comes with another card or amount) or decides, applies the effect and stores the answer.
A reversal undoes its original's stored effect and marks it reversed, in the same transaction,
so a repeated reversal, a second reversal of the same original, or a reversal for an unknown
original has no further effect. A partial reversal (field 95) gives back the difference and
leaves the original's row saying the amount that remains.

The class is synchronous; the server calls it inline on the event loop, one call at a time.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

from tools.issuer_sim import decide as d
from tools.issuer_sim.cards import Card

SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    pan TEXT PRIMARY KEY,
    expiry TEXT NOT NULL,
    status TEXT NOT NULL,
    pvki INTEGER NOT NULL,
    pvv TEXT NOT NULL,
    pin_tries INTEGER NOT NULL DEFAULT 0,
    max_pin_tries INTEGER NOT NULL,
    currency TEXT NOT NULL,
    balance INTEGER NOT NULL,
    daily_limit INTEGER NOT NULL,
    spent_today INTEGER NOT NULL DEFAULT 0,
    spent_date TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    pan TEXT NOT NULL,
    auth_id INTEGER NOT NULL UNIQUE,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auths (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    mti TEXT NOT NULL,
    proc TEXT NOT NULL,
    tid TEXT NOT NULL,
    rrn TEXT NOT NULL,
    stan TEXT NOT NULL,
    f7 TEXT NOT NULL,
    pan TEXT NOT NULL,
    amount INTEGER NOT NULL,
    code TEXT NOT NULL,
    auth_code TEXT NOT NULL DEFAULT '',
    balances TEXT,
    effect TEXT NOT NULL DEFAULT '{}',
    original_id INTEGER,
    undone_by INTEGER,
    reversed_by INTEGER,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auths_tid_rrn ON auths (tid, rrn);
CREATE INDEX IF NOT EXISTS auths_tid_stan ON auths (tid, stan, f7);
CREATE INDEX IF NOT EXISTS holds_pan ON holds (pan, status);
"""


@attrs.frozen
class Outcome:
    code: str
    auth_code: str = ""
    balances: str | None = None
    duplicate: bool = False
    auth_id: int | None = None


@attrs.frozen
class Txn:
    """A ledger row, for inspection (tests, ``cards list``)."""

    id: int
    kind: str
    mti: str
    tid: str
    rrn: str
    stan: str
    pan: str
    amount: int
    code: str
    auth_code: str
    reversed: bool
    undone: bool


PinCheck = Callable[[d.CardState], bool]


class Ledger:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._today_second: int | None = None
        self._today_value = ("", "")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # ---- cards ---------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return self._db.execute("SELECT COUNT(*) FROM cards").fetchone()[0] == 0

    def reset(self, cards: Iterable[Card]) -> None:
        """Forget all state and load the cards afresh."""
        with self._txn():
            self._db.execute("DELETE FROM auths")
            self._db.execute("DELETE FROM holds")
            self._db.execute("DELETE FROM cards")
            for card in cards:
                self._insert_card(card)

    def add_card(self, card: Card) -> None:
        with self._txn():
            self._insert_card(card)

    def _insert_card(self, c: Card) -> None:
        self._db.execute(
            "INSERT INTO cards (pan, expiry, status, pvki, pvv, pin_tries, max_pin_tries,"
            " currency, balance, daily_limit, label) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                c.pan,
                c.expiry,
                c.status,
                c.pvki,
                c.pvv,
                c.pin_tries,
                c.max_pin_tries,
                c.currency,
                c.balance,
                c.daily_limit,
                c.label,
            ),
        )

    def card(self, pan: str) -> d.CardState | None:
        row = self._db.execute("SELECT * FROM cards WHERE pan = ?", (pan,)).fetchone()
        return None if row is None else self._card_state(row)

    def cards(self) -> list[d.CardState]:
        rows = self._db.execute("SELECT * FROM cards ORDER BY pan").fetchall()
        return [self._card_state(r) for r in rows]

    def labels(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self._db.execute("SELECT pan, label FROM cards")}

    def balance(self, pan: str) -> int | None:
        card = self.card(pan)
        return None if card is None else card.balance

    def holds(self, pan: str, status: str | None = "open") -> list[d.Hold]:
        sql = "SELECT id, pan, amount, status FROM holds WHERE pan = ?"
        args: tuple = (pan,)
        if status is not None:
            sql += " AND status = ?"
            args = (pan, status)
        return [d.Hold(**dict(r)) for r in self._db.execute(sql + " ORDER BY id", args)]

    def transactions(self, pan: str | None = None) -> list[Txn]:
        sql = (
            "SELECT id, kind, mti, tid, rrn, stan, pan, amount, code, auth_code,"
            " reversed_by IS NOT NULL AS reversed, undone_by IS NOT NULL AS undone FROM auths"
        )
        args: tuple = ()
        if pan is not None:
            sql += " WHERE pan = ?"
            args = (pan,)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [
            Txn(**{**dict(r), "reversed": bool(r["reversed"]), "undone": bool(r["undone"])})
            for r in rows
        ]

    def _today(self) -> tuple[str, str]:
        """(YYYY-MM-DD, YYMM) of the clock's local date, formatted once per second (a request
        asks up to three times)."""
        second = int(self.clock())
        if second != self._today_second:
            t = time.localtime(second)
            self._today_value = time.strftime("%Y-%m-%d", t), time.strftime("%y%m", t)
            self._today_second = second
        return self._today_value

    def _card_state(self, row: sqlite3.Row) -> d.CardState:
        today, _ = self._today()
        held = self._db.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM holds WHERE pan = ? AND status = 'open'",
            (row["pan"],),
        ).fetchone()[0]
        return d.CardState(
            pan=row["pan"],
            expiry=row["expiry"],
            status=row["status"],
            pvki=row["pvki"],
            pvv=row["pvv"],
            pin_tries=row["pin_tries"],
            max_pin_tries=row["max_pin_tries"],
            currency=row["currency"],
            balance=row["balance"],
            daily_limit=row["daily_limit"],
            spent_today=row["spent_today"] if row["spent_date"] == today else 0,
            held=held,
        )

    # ---- authorization -------------------------------------------------------------------

    def process(
        self,
        req: d.AuthRequest,
        pin_check: PinCheck | None = None,
        completion_tolerance_pct: int = 15,
    ) -> Outcome:
        """Decide and apply one financial request exactly once (see the module docstring)."""
        with self._txn():
            prior = self._db.execute(
                "SELECT id, kind, pan, amount, proc, code, auth_code, balances, effect FROM auths"
                " WHERE dedupe_key = ?",
                (req.dedupe_key,),
            ).fetchone()
            if prior is not None:
                return self._repeat(req, prior)
            if req.kind == d.REVERSAL:
                return self._reverse(req)
            card = self.card(req.pan) if req.pan else None
            payee = self.card(req.payee) if req.payee else None
            pin_ok = None
            if req.has_pin and card is not None and pin_check is not None:
                pin_ok = pin_check(card)
            original = None
            expected = d.ORIGINAL_KIND.get(req.kind)
            if expected is not None:
                original = self._find_original(req, (expected,))
            _, yymm = self._today()
            decision = d.decide(
                req, card, pin_ok, original, yymm, completion_tolerance_pct, payee=payee
            )
            effect = decision.effect
            # a reversal that overtook its original: record the original, apply nothing
            early_reversal = self._reversal_waiting_for(req) if decision.code == "00" else None
            if early_reversal is not None:
                effect = d.NO_EFFECT
            auth_code = f"{secrets.randbelow(1_000_000):06d}" if decision.code == "00" else ""
            auth_id = self._insert_auth(
                req,
                decision.code,
                auth_code,
                decision.balances,
                effect,
                original.id if original else None,
            )
            if early_reversal is not None:
                self._db.execute(
                    "UPDATE auths SET reversed_by = ? WHERE id = ?", (early_reversal, auth_id)
                )
            if decision.pin_tries is not None and card is not None:
                self._db.execute(
                    "UPDATE cards SET pin_tries = ? WHERE pan = ?", (decision.pin_tries, card.pan)
                )
            self._apply(req.pan, effect, auth_id)
            return Outcome(decision.code, auth_code, decision.balances, False, auth_id)

    def _repeat(self, req: d.AuthRequest, prior: sqlite3.Row) -> Outcome:
        """A request whose key (class, 41, 11, 7, 37) is taken. The same request again gets
        the first answer and no second effect; a balance inquiry gets today's balance. A
        different request under the same key (another card, amount or processing code) is a
        duplicate transaction number: 94, nothing stored, nothing applied. A transfer is the
        same only to the same payee (the one its approval credited)."""
        same = req.kind == prior["kind"] and (
            req.kind == d.REVERSAL
            or (req.pan, req.amount, req.proc) == (prior["pan"], prior["amount"], prior["proc"])
        )
        if same and req.kind == d.TRANSFER:
            credited = d.Effect.from_json(json.loads(prior["effect"])).credit_pan
            same = credited in ("", req.payee)
        if not same:
            return Outcome("94", duplicate=True)
        balances = prior["balances"]
        if req.kind == d.BALANCE_INQUIRY and prior["code"] == "00":
            card = self.card(req.pan)
            if card is not None:
                balances = d.format_balances(card, req.account_type)
                self._db.execute(
                    "UPDATE auths SET balances = ? WHERE id = ?", (balances, prior["id"])
                )
        return Outcome(prior["code"], prior["auth_code"], balances, True, prior["id"])

    def _reverse(self, req: d.AuthRequest) -> Outcome:
        original = self._find_original(req, None)
        # 95 on a kind with no partial form (a void...): reversed in full, unless 95 is too big
        if (
            original is not None
            and not original.reversed
            and req.replacement is not None
            and (original.kind in d.PARTIAL_KINDS or req.replacement > original.amount)
        ):
            return self._reverse_partly(req, original, req.replacement)
        auth_id = self._insert_auth(
            req, "00", "", None, d.NO_EFFECT, original.id if original else None
        )
        if original is not None and not original.reversed:
            row = self._db.execute(
                "SELECT effect FROM auths WHERE id = ?", (original.id,)
            ).fetchone()
            effect = d.Effect.from_json(json.loads(row["effect"]))
            self._apply(original.pan, d.inverse(effect), auth_id)
            if effect.new_hold:
                self._db.execute(
                    "UPDATE holds SET status = 'released' WHERE auth_id = ? AND status = 'open'",
                    (original.id,),
                )
            if effect.undo is not None:
                self._db.execute("UPDATE auths SET undone_by = NULL WHERE id = ?", (effect.undo,))
            self._db.execute(
                "UPDATE auths SET reversed_by = ? WHERE id = ?", (auth_id, original.id)
            )
        return Outcome("00", "", None, False, auth_id)

    def _reverse_partly(self, req: d.AuthRequest, original: d.Original, amount: int) -> Outcome:
        """Field 95 says only ``amount`` of the original happened: give back the rest, and
        make the original's row say ``amount`` so a later void or full reversal undoes exactly
        what is left. More than the original is 13 with no effect."""
        if amount > original.amount:
            auth_id = self._insert_auth(req, "13", "", None, d.NO_EFFECT, original.id)
            return Outcome("13", auth_id=auth_id)
        row = self._db.execute("SELECT effect FROM auths WHERE id = ?", (original.id,)).fetchone()
        effect = d.Effect.from_json(json.loads(row["effect"]))
        split = d.partial_reversal(original.kind, effect, original.amount, amount)
        hold_open = original.hold is not None and original.hold.status == "open"
        if split is None or original.code != "00" or (original.kind == d.PREAUTH and not hold_open):
            now, remaining = d.NO_EFFECT, effect  # nothing partial to give back
        else:
            now, remaining = split
        auth_id = self._insert_auth(req, "00", "", None, now, original.id)
        if now != d.NO_EFFECT:
            self._apply(original.pan, now, auth_id)
            self._db.execute(
                "UPDATE auths SET amount = ?, effect = ? WHERE id = ?",
                (amount, json.dumps(remaining.to_json()), original.id),
            )
            if original.kind == d.PREAUTH:
                self._db.execute(
                    "UPDATE holds SET amount = ? WHERE auth_id = ? AND status = 'open'",
                    (amount, original.id),
                )
        return Outcome("00", auth_id=auth_id)

    def _reversal_waiting_for(self, req: d.AuthRequest) -> int | None:
        """A reversal recorded earlier for this very request (it arrived first)."""
        if not req.rrn:
            return None
        row = self._db.execute(
            "SELECT id FROM auths WHERE kind = ? AND tid = ? AND rrn = ? AND original_id IS NULL"
            " AND proc = ? ORDER BY id LIMIT 1",
            (d.REVERSAL, req.tid, req.rrn, req.proc),
        ).fetchone()
        return None if row is None else row["id"]

    def _find_original(
        self, req: d.AuthRequest, kinds: tuple[str, ...] | None
    ) -> d.Original | None:
        if kinds is None:  # a reversal: the original has its kind
            kinds = (req.original_kind,) if req.original_kind != d.UNSUPPORTED else None
        where = "kind != 'reversal'"
        args: list = []
        if kinds:
            where = f"kind IN ({','.join('?' * len(kinds))})"
            args = list(kinds)
        # field 90 (original STAN + 7) names one request; an RRN may have been reused
        row = None
        if req.orig_stan:
            row = self._db.execute(
                f"SELECT * FROM auths WHERE {where} AND tid = ? AND stan = ? AND f7 = ?"  # noqa: S608
                " ORDER BY id DESC LIMIT 1",
                [*args, req.tid, req.orig_stan, req.orig_f7],
            ).fetchone()
        if row is None and req.rrn:
            row = self._db.execute(
                f"SELECT * FROM auths WHERE {where} AND tid = ? AND rrn = ?"  # noqa: S608
                " ORDER BY id DESC LIMIT 1",
                [*args, req.tid, req.rrn],
            ).fetchone()
        if row is None:
            return None
        hold = None
        effect = d.Effect.from_json(json.loads(row["effect"]))
        hold_row = self._db.execute(
            "SELECT id, pan, amount, status FROM holds WHERE auth_id = ?", (row["id"],)
        ).fetchone()
        if hold_row is None and effect.hold_id is not None:
            hold_row = self._db.execute(
                "SELECT id, pan, amount, status FROM holds WHERE id = ?", (effect.hold_id,)
            ).fetchone()
        if hold_row is not None:
            hold = d.Hold(**dict(hold_row))
        return d.Original(
            id=row["id"],
            kind=row["kind"],
            pan=row["pan"],
            amount=row["amount"],
            code=row["code"],
            undone=row["undone_by"] is not None,
            reversed=row["reversed_by"] is not None,
            hold=hold,
        )

    def _insert_auth(self, req, code, auth_code, balances, effect, original_id) -> int:
        cur = self._db.execute(
            "INSERT INTO auths (dedupe_key, kind, mti, proc, tid, rrn, stan, f7, pan, amount,"
            " code, auth_code, balances, effect, original_id, created)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                req.dedupe_key,
                req.kind,
                req.mti,
                req.proc,
                req.tid,
                req.rrn,
                req.stan,
                req.f7,
                req.pan,
                req.amount,
                code,
                auth_code,
                balances,
                json.dumps(effect.to_json()),
                original_id,
                self.clock(),
            ),
        )
        return cur.lastrowid

    def _apply(self, pan: str, effect: d.Effect, auth_id: int) -> None:
        if effect == d.NO_EFFECT:
            return
        today, _ = self._today()
        if effect.balance or effect.spent:
            self._db.execute(
                "UPDATE cards SET balance = balance + ?,"
                " spent_today = MAX(0, CASE WHEN spent_date = ? THEN spent_today ELSE 0 END + ?),"
                " spent_date = ? WHERE pan = ?",
                (effect.balance, today, effect.spent, today, pan),
            )
        if effect.credit and effect.credit_pan:  # a transfer's payee
            self._db.execute(
                "UPDATE cards SET balance = balance + ? WHERE pan = ?",
                (effect.credit, effect.credit_pan),
            )
        if effect.new_hold:
            self._db.execute(
                "INSERT INTO holds (pan, auth_id, amount, status) VALUES (?, ?, ?, 'open')",
                (pan, auth_id, effect.new_hold),
            )
        if effect.hold_id is not None and effect.hold_from:
            self._db.execute(
                "UPDATE holds SET status = ? WHERE id = ? AND status = ?",
                (effect.hold_to, effect.hold_id, effect.hold_from),
            )
        if effect.undo is not None:
            self._db.execute("UPDATE auths SET undone_by = ? WHERE id = ?", (auth_id, effect.undo))

    # ---- plumbing -----------------------------------------------------------------------

    class _Txn:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type, exc, tb):
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            return False

    def _txn(self) -> Ledger._Txn:
        return Ledger._Txn(self._db)
