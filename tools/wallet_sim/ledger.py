"""wallet-sim's state: users and balances, one-time payment codes, trades, refunds and the
notifications still to deliver, in one SQLite file (exactly-once effects: every change of a
trade and its balance is one transaction).

The rules are the wallets' (docs/qr.md): a trade is keyed on the acquirer's order number
(``out_trade_no``) and a refund on ``out_request_no``, so a request sent again gets the first
answer and moves no money twice; a cancel that arrives before its payment leaves a closed trade
behind, so the late payment is refused; a payment code is used once and lives ``code_ttl``
seconds; a payment above the user's password threshold waits ("user paying") until the user
confirms or ``user_paying_timeout`` passes.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from codec import wallet as w

CODE_PREFIX = "28"  # a wallet-like prefix (Alipay's codes start 25-30); 18 digits in all
CODE_LENGTH = 18
QR_BASE = "https://qr.wallet-sim.test/o/"

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, balance INTEGER NOT NULL,
    password_threshold INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, user_id TEXT NOT NULL, issued_at REAL NOT NULL,
    expires_at REAL NOT NULL, used_at REAL, voided INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS trades (
    out_trade_no TEXT PRIMARY KEY, trade_no TEXT NOT NULL UNIQUE, app_id TEXT NOT NULL,
    kind TEXT NOT NULL, user_id TEXT, amount INTEGER NOT NULL, refunded INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, code_masked TEXT, code_hash TEXT, qr_token TEXT UNIQUE,
    store_id TEXT, terminal_id TEXT, subject TEXT, notify_url TEXT,
    created_at REAL NOT NULL, paid_at REAL, closed_at REAL, expires_at REAL
);
CREATE TABLE IF NOT EXISTS refunds (
    out_request_no TEXT PRIMARY KEY, out_trade_no TEXT NOT NULL, amount INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, notify_id TEXT NOT NULL UNIQUE,
    out_trade_no TEXT NOT NULL, url TEXT NOT NULL, due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
"""


@attrs.frozen
class User:
    id: str
    name: str
    balance: int
    password_threshold: int


def load_users(path: Path) -> list[User]:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    users = []
    for row in data.get("user", []):
        users.append(User(str(row["id"]), str(row.get("name", row["id"])), int(row["balance"]),
                          int(row.get("password_threshold", 0))))  # fmt: skip
    return users


def _hash(code: str) -> str:
    import hashlib

    return hashlib.sha256(code.encode()).hexdigest()


class Ledger:
    def __init__(self, path: Path | str, *, timezone: str = "Asia/Shanghai"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.tz = ZoneInfo(timezone)

    def close(self) -> None:
        self.db.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _tx(self):
        return _Tx(self.db)

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def is_empty(self) -> bool:
        return self._one("SELECT COUNT(*) AS n FROM users")["n"] == 0

    def reset(self, users: list[User]) -> None:
        with self._tx():
            for table in ("users", "codes", "trades", "refunds", "notifications"):
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608 (our table names)
            for u in users:
                self.db.execute("INSERT INTO users VALUES (?, ?, ?, ?)",
                                (u.id, u.name, u.balance, u.password_threshold))  # fmt: skip

    def user(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE id = ?", user_id)
        return None if row is None else User(**dict(row))

    def users(self) -> list[User]:
        return [User(**dict(r)) for r in self.db.execute("SELECT * FROM users ORDER BY id")]

    def trade(self, out_trade_no: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM trades WHERE out_trade_no = ?", out_trade_no)
        return None if row is None else dict(row)

    # -- payment codes ------------------------------------------------------------------------
    def issue_code(self, user_id: str, now: float, ttl: float) -> str:
        """A fresh one-time code; the user's earlier unused codes stop working (the wallet
        shows one code at a time and rotates it)."""
        if self.user(user_id) is None:
            raise KeyError(user_id)
        code = CODE_PREFIX + "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH - 2))
        with self._tx():
            self.db.execute("UPDATE codes SET voided = 1 WHERE user_id = ? AND used_at IS NULL",
                            (user_id,))  # fmt: skip
            self.db.execute("INSERT INTO codes (code, user_id, issued_at, expires_at)"
                            " VALUES (?, ?, ?, ?)", (code, user_id, now, now + ttl))  # fmt: skip
        return code

    def issue_codes(self, user_id: str, now: float, ttl: float, count: int) -> list[str]:
        """``count`` codes valid together (a test facility for load generators: a real wallet
        shows one at a time); earlier codes stay valid."""
        if self.user(user_id) is None:
            raise KeyError(user_id)
        codes = []
        with self._tx():
            for _ in range(count):
                code = CODE_PREFIX + "".join(
                    secrets.choice("0123456789") for _ in range(CODE_LENGTH - 2)
                )
                self.db.execute("INSERT OR IGNORE INTO codes (code, user_id, issued_at,"
                                " expires_at) VALUES (?, ?, ?, ?)",
                                (code, user_id, now, now + ttl))  # fmt: skip
                codes.append(code)
        return codes

    # -- the gateway's methods: each returns (code, response fields) ----------------------------
    def pay(self, app_id: str, biz: dict[str, Any], now: float, notify_url: str | None):
        out_trade_no, amount = str(biz["out_trade_no"]), w.fen(biz["total_amount"])
        code = str(biz.get("auth_code", ""))
        with self._tx():
            existing = self.trade(out_trade_no)
            if existing is not None and existing["kind"] == "cancelled":
                return w.BUSINESS_FAILED, _fail(w.TRADE_HAS_CLOSE, "cancelled before it came")
            if existing is not None:
                same = (
                    existing["kind"] == "pay"
                    and existing["amount"] == amount
                    and (existing["code_hash"] in (None, _hash(code)))
                )
                if not same:
                    return w.BUSINESS_FAILED, _fail(w.CONTEXT_INCONSISTENT, "order number reused")
                return self._pay_state(existing)
            row = self._one("SELECT * FROM codes WHERE code = ?", code)
            reason = None
            if row is None or row["voided"]:
                reason = (w.CODE_INVALID, "unknown or replaced payment code")
            elif row["used_at"] is not None:
                reason = (w.CODE_USED, "payment code already used")
            elif row["expires_at"] < now:
                reason = (w.CODE_EXPIRED, "payment code expired")
            if reason is not None:
                return w.BUSINESS_FAILED, _fail(*reason)
            self.db.execute("UPDATE codes SET used_at = ? WHERE code = ?", (now, code))
            user = self.user(row["user_id"])
            assert user is not None
            trade = self._insert_trade(app_id, "pay", out_trade_no, amount, biz, now, notify_url,
                                       user_id=user.id, code=code)  # fmt: skip
            if amount > user.balance:
                self._close(out_trade_no, now)
                return w.BUSINESS_FAILED, _fail(w.BALANCE_NOT_ENOUGH, "balance not enough")
            if amount > user.password_threshold:
                return w.IN_PROCESS, {**_trade_fields(trade), "msg": "user paying"}
            self._debit(out_trade_no, user.id, amount, now, notify=False)
            return w.SUCCESS, _trade_fields(self.trade(out_trade_no))

    def _pay_state(self, trade: dict[str, Any]):
        if trade["status"] == w.WAIT_BUYER_PAY:
            return w.IN_PROCESS, {**_trade_fields(trade), "msg": "user paying"}
        if trade["status"] in w.PAID:
            return w.SUCCESS, _trade_fields(trade)
        return w.BUSINESS_FAILED, _fail(w.TRADE_HAS_CLOSE, "trade closed")

    def precreate(self, app_id: str, biz: dict[str, Any], now: float, notify_url: str | None,
                  default_validity: float):  # fmt: skip
        out_trade_no, amount = str(biz["out_trade_no"]), w.fen(biz["total_amount"])
        validity = _validity(biz.get("timeout_express"), default_validity)
        with self._tx():
            existing = self.trade(out_trade_no)
            if existing is not None and existing["kind"] == "cancelled":
                return w.BUSINESS_FAILED, _fail(w.TRADE_HAS_CLOSE, "cancelled before it came")
            if existing is not None:
                if existing["kind"] != "order" or existing["amount"] != amount:
                    return w.BUSINESS_FAILED, _fail(w.CONTEXT_INCONSISTENT, "order number reused")
                if existing["status"] == w.TRADE_CLOSED and existing["paid_at"] is None:
                    return w.BUSINESS_FAILED, _fail(w.TRADE_HAS_CLOSE, "trade closed")
                return w.SUCCESS, {"out_trade_no": out_trade_no,
                                   "qr_code": QR_BASE + existing["qr_token"]}  # fmt: skip
            if amount <= 0:
                return w.BUSINESS_FAILED, _fail("ACQ.TOTAL_FEE_EXCEED", "amount must be > 0")
            trade = self._insert_trade(
                app_id,
                "order",
                out_trade_no,
                amount,
                biz,
                now,
                notify_url,
                qr_token=secrets.token_hex(12),
                expires_at=now + validity,
            )
            return w.SUCCESS, {"out_trade_no": out_trade_no, "qr_code": QR_BASE + trade["qr_token"]}

    def query(self, biz: dict[str, Any]):
        trade = self.trade(str(biz.get("out_trade_no", "")))
        if trade is None:
            return w.BUSINESS_FAILED, _fail(w.TRADE_NOT_EXIST, "no such trade")
        return w.SUCCESS, _trade_fields(trade)

    def cancel(self, app_id: str, biz: dict[str, Any], now: float):
        """Undo whatever happened: close an unpaid trade, refund a paid one in full. Of an
        unknown order number, a closed trade is left behind (the payment may still be on its
        way: it will be refused)."""
        out_trade_no = str(biz["out_trade_no"])
        with self._tx():
            trade = self.trade(out_trade_no)
            if trade is None:
                self._insert_trade(app_id, "cancelled", out_trade_no, 0, biz, now, None,
                                   status=w.TRADE_CLOSED)  # fmt: skip
                return w.SUCCESS, {"out_trade_no": out_trade_no, "action": "close"}
            if trade["status"] == w.WAIT_BUYER_PAY:
                self._close(out_trade_no, now)
                return w.SUCCESS, {"out_trade_no": out_trade_no, "action": "close"}
            if trade["status"] in w.PAID:
                left = trade["amount"] - trade["refunded"]
                self._refund(trade, f"cancel-{out_trade_no}", left, now)
                return w.SUCCESS, {"out_trade_no": out_trade_no, "action": "refund"}
            action = "refund" if trade["paid_at"] is not None else "close"
            return w.SUCCESS, {"out_trade_no": out_trade_no, "action": action}

    def close_trade(self, biz: dict[str, Any], now: float):
        out_trade_no = str(biz["out_trade_no"])
        with self._tx():
            trade = self.trade(out_trade_no)
            if trade is None:
                return w.BUSINESS_FAILED, _fail(w.TRADE_NOT_EXIST, "no such trade")
            if trade["status"] in w.PAID:
                return w.BUSINESS_FAILED, _fail(w.TRADE_STATUS_ERROR, "trade is paid: refund it")
            self._close(out_trade_no, now)
            return w.SUCCESS, {"out_trade_no": out_trade_no}

    def refund(self, biz: dict[str, Any], now: float):
        out_trade_no, request_no = str(biz["out_trade_no"]), str(biz["out_request_no"])
        amount = w.fen(biz["refund_amount"], "refund_amount")
        with self._tx():
            done = self._one("SELECT * FROM refunds WHERE out_request_no = ?", request_no)
            if done is not None:
                if done["out_trade_no"] != out_trade_no or done["amount"] != amount:
                    return w.BUSINESS_FAILED, _fail(w.CONTEXT_INCONSISTENT, "request number reused")
                trade = self.trade(out_trade_no)
                return w.SUCCESS, _refund_fields(trade, request_no, amount)
            trade = self.trade(out_trade_no)
            if trade is None:
                return w.BUSINESS_FAILED, _fail(w.TRADE_NOT_EXIST, "no such trade")
            if trade["paid_at"] is None:
                return w.BUSINESS_FAILED, _fail(w.TRADE_STATUS_ERROR, "trade was never paid")
            if amount <= 0 or trade["refunded"] + amount > trade["amount"]:
                return w.BUSINESS_FAILED, _fail(w.REFUND_EXCEEDED, "more than is left to refund")
            self._refund(trade, request_no, amount, now)
            return w.SUCCESS, _refund_fields(self.trade(out_trade_no), request_no, amount)

    # -- the user's side ------------------------------------------------------------------------
    def confirm(self, now: float, *, user_id: str | None = None,
                out_trade_no: str | None = None) -> dict[str, Any] | None:  # fmt: skip
        """The user types the password: the oldest trade waiting for it is paid (or closed when
        the balance is short). None when nothing waits."""
        with self._tx():
            if out_trade_no:
                trade = self.trade(out_trade_no)
            else:
                row = self._one("SELECT * FROM trades WHERE user_id = ? AND kind = 'pay' AND"
                                " status = ? ORDER BY created_at LIMIT 1", user_id,
                                w.WAIT_BUYER_PAY)  # fmt: skip
                trade = None if row is None else dict(row)
            if trade is None or trade["status"] != w.WAIT_BUYER_PAY or trade["kind"] != "pay":
                return None
            user = self.user(trade["user_id"])
            assert user is not None
            if trade["amount"] > user.balance:
                self._close(trade["out_trade_no"], now)
            else:
                self._debit(trade["out_trade_no"], user.id, trade["amount"], now, notify=True)
            return self.trade(trade["out_trade_no"])

    def pay_order(self, token: str, user_id: str, now: float) -> tuple[str, dict[str, Any] | None]:
        """The user scans a merchant's QR and pays it: ("paid" | "closed" | "no such order" |
        "no such user" | "balance not enough" | "already paid", trade)."""
        token = token.rsplit("/", 1)[-1]
        with self._tx():
            row = self._one("SELECT * FROM trades WHERE qr_token = ?", token)
            if row is None:
                return "no such order", None
            trade = dict(row)
            user = self.user(user_id)
            if user is None:
                return "no such user", trade
            if trade["status"] in w.PAID:
                return "already paid", trade
            if trade["status"] != w.WAIT_BUYER_PAY or (trade["expires_at"] or 0) < now:
                if trade["status"] == w.WAIT_BUYER_PAY:
                    self._close(trade["out_trade_no"], now)
                return "closed", self.trade(trade["out_trade_no"])
            if trade["amount"] > user.balance:
                return "balance not enough", trade
            self.db.execute("UPDATE trades SET user_id = ? WHERE out_trade_no = ?",
                            (user.id, trade["out_trade_no"]))  # fmt: skip
            self._debit(trade["out_trade_no"], user.id, trade["amount"], now, notify=True)
            return "paid", self.trade(trade["out_trade_no"])

    def expire(self, now: float, user_paying_timeout: float) -> int:
        """Close orders past their validity and payments left waiting for a password."""
        with self._tx():
            n = self.db.execute(
                "UPDATE trades SET status = ?, closed_at = ? WHERE status = ? AND"
                " ((kind = 'order' AND expires_at < ?) OR (kind = 'pay' AND created_at < ?))",
                (w.TRADE_CLOSED, now, w.WAIT_BUYER_PAY, now, now - user_paying_timeout),
            ).rowcount
        return n

    # -- notifications --------------------------------------------------------------------------
    def due_notifications(self, now: float) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM notifications WHERE status = 'pending' AND"
                               " due_at <= ? ORDER BY due_at LIMIT 50", (now,))  # fmt: skip
        return [dict(r) for r in rows]

    def notification_done(self, nid: int, status: str, error: str | None = None) -> None:
        self.db.execute("UPDATE notifications SET status = ?, attempts = attempts + 1,"
                        " last_error = ? WHERE id = ?", (status, error, nid))  # fmt: skip

    def notification_retry(self, nid: int, due_at: float, error: str) -> None:
        self.db.execute("UPDATE notifications SET attempts = attempts + 1, due_at = ?,"
                        " last_error = ? WHERE id = ?", (due_at, error, nid))  # fmt: skip

    def notifications(self, out_trade_no: str | None = None) -> list[dict[str, Any]]:
        if out_trade_no:
            rows = self.db.execute("SELECT * FROM notifications WHERE out_trade_no = ?"
                                   " ORDER BY id", (out_trade_no,))  # fmt: skip
        else:
            rows = self.db.execute("SELECT * FROM notifications ORDER BY id")
        return [dict(r) for r in rows]

    # -- the daily bill -----------------------------------------------------------------------
    def bill_rows(self, day: str) -> list[dict[str, Any]]:
        """Payments and refunds of the wallet's calendar ``day`` (YYYYMMDD, the wallet's time
        zone), oldest first: what the platform's daily bill lists."""
        start = dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=self.tz).timestamp()
        end = start + 86400
        rows = []
        for t in self.db.execute("SELECT * FROM trades WHERE paid_at >= ? AND paid_at < ?"
                                 " ORDER BY paid_at", (start, end)):  # fmt: skip
            rows.append({"at": t["paid_at"], "type": "pay", "trade_no": t["trade_no"],
                         "out_trade_no": t["out_trade_no"], "out_request_no": "",
                         "store_id": t["store_id"] or "", "terminal_id": t["terminal_id"] or "",
                         "amount": t["amount"]})  # fmt: skip
        for r in self.db.execute(
            "SELECT r.*, t.trade_no, t.store_id, t.terminal_id FROM refunds r JOIN trades t"
            " USING (out_trade_no) WHERE r.created_at >= ? AND r.created_at < ?"
            " ORDER BY r.created_at", (start, end),
        ):  # fmt: skip
            rows.append({"at": r["created_at"], "type": "refund", "trade_no": r["trade_no"],
                         "out_trade_no": r["out_trade_no"], "out_request_no": r["out_request_no"],
                         "store_id": r["store_id"] or "", "terminal_id": r["terminal_id"] or "",
                         "amount": r["amount"]})  # fmt: skip
        rows.sort(key=lambda r: r["at"])
        return rows

    def local_day(self, at: float) -> str:
        return dt.datetime.fromtimestamp(at, self.tz).strftime("%Y%m%d")

    # -- internals --------------------------------------------------------------------------------
    def _insert_trade(self, app_id, kind, out_trade_no, amount, biz, now, notify_url, *,
                      user_id=None, code=None, qr_token=None, expires_at=None,
                      status=w.WAIT_BUYER_PAY) -> dict[str, Any]:  # fmt: skip
        trade_no = dt.datetime.fromtimestamp(now, self.tz).strftime("%Y%m%d") + "".join(
            secrets.choice("0123456789") for _ in range(20)
        )
        self.db.execute(
            "INSERT INTO trades (out_trade_no, trade_no, app_id, kind, user_id, amount, status,"
            " code_masked, code_hash, qr_token, store_id, terminal_id, subject, notify_url,"
            " created_at, expires_at, closed_at) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (out_trade_no, trade_no, app_id, kind, user_id, amount, status,
             w.mask_code(code) if code else None, _hash(code) if code else None, qr_token,
             str(biz.get("store_id", "")) or None, str(biz.get("terminal_id", "")) or None,
             str(biz.get("subject", ""))[:128] or None, notify_url, now, expires_at,
             now if status == w.TRADE_CLOSED else None),
        )  # fmt: skip
        trade = self.trade(out_trade_no)
        assert trade is not None
        return trade

    def _close(self, out_trade_no: str, now: float) -> None:
        self.db.execute("UPDATE trades SET status = ?, closed_at = ? WHERE out_trade_no = ?",
                        (w.TRADE_CLOSED, now, out_trade_no))  # fmt: skip

    def _debit(self, out_trade_no: str, user_id: str, amount: int, now: float, *,
               notify: bool) -> None:  # fmt: skip
        self.db.execute("UPDATE users SET balance = balance - ? WHERE id = ?", (amount, user_id))
        self.db.execute("UPDATE trades SET status = ?, paid_at = ? WHERE out_trade_no = ?",
                        (w.TRADE_SUCCESS, now, out_trade_no))  # fmt: skip
        trade = self.trade(out_trade_no)
        if trade is not None and trade["notify_url"] and notify:
            self.db.execute("INSERT INTO notifications (notify_id, out_trade_no, url, due_at)"
                            " VALUES (?, ?, ?, ?)", (secrets.token_hex(16), out_trade_no,
                                                     trade["notify_url"], now))  # fmt: skip

    def _refund(self, trade: dict[str, Any], request_no: str, amount: int, now: float) -> None:
        if amount > 0:
            self.db.execute("INSERT INTO refunds VALUES (?, ?, ?, ?)",
                            (request_no, trade["out_trade_no"], amount, now))  # fmt: skip
            self.db.execute("UPDATE users SET balance = balance + ? WHERE id = ?",
                            (amount, trade["user_id"]))  # fmt: skip
        refunded = trade["refunded"] + amount
        status = w.TRADE_CLOSED if refunded >= trade["amount"] else trade["status"]
        self.db.execute("UPDATE trades SET refunded = ?, status = ? WHERE out_trade_no = ?",
                        (refunded, status, trade["out_trade_no"]))  # fmt: skip


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.depth = 0

    def __enter__(self):
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.depth = 1
        return self

    def __exit__(self, exc_type, *rest):
        if self.depth:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _fail(sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}


def _trade_fields(trade: dict[str, Any] | None) -> dict[str, Any]:
    assert trade is not None
    out = {
        "out_trade_no": trade["out_trade_no"],
        "trade_no": trade["trade_no"],
        "trade_status": trade["status"],
        "total_amount": w.yuan(trade["amount"]),
    }
    if trade["user_id"]:
        out["buyer_user_id"] = trade["user_id"]
    if trade["paid_at"]:
        out["gmt_payment"] = _stamp(trade["paid_at"])
    if trade["refunded"]:
        out["refund_amount"] = w.yuan(trade["refunded"])
    return out


def _refund_fields(trade, request_no: str, amount: int) -> dict[str, Any]:
    return {"out_trade_no": trade["out_trade_no"], "trade_no": trade["trade_no"],
            "out_request_no": request_no, "refund_fee": w.yuan(amount),
            "refund_total": w.yuan(trade["refunded"])}  # fmt: skip


def _stamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")


def _validity(text: Any, default: float) -> float:
    """``timeout_express``: "90s" (ours), "15m", "2h", "1d" as the wallets write it."""
    if not text:
        return default
    s = str(text)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if s[-1:] in units and s[:-1].isdigit() and int(s[:-1]) > 0:
        return float(int(s[:-1]) * units[s[-1]])
    return default
