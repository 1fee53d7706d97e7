"""One thin connection adapter over sqlite3 and psycopg 3, so the SQL is written once.

SQL in this package uses named parameters in the ``:name`` form (sqlite3's own style). For
PostgreSQL, :func:`to_pyformat` rewrites them to psycopg's ``%(name)s`` form (and doubles any
literal ``%``). Everything else used here (``RETURNING``, ``ON CONFLICT``, ``SAVEPOINT``) is
spelled the same in both databases.

Transactions are explicit: connections run in autocommit mode and the callers issue
``BEGIN`` / ``COMMIT`` / ``SAVEPOINT`` themselves, identically for both backends.
"""

from __future__ import annotations

import abc
import functools
import os
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from host.store.errors import StoreError

Params = Mapping[str, Any]
Clock = Callable[[], int]

DEFAULT_URL = "sqlite:///var/poshost.sqlite"


def epoch_ms() -> int:
    """The default clock: UTC now as integer milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """Rewrite ``:name`` parameters to ``%(name)s`` and escape literal ``%`` (for psycopg)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


@attrs.frozen
class Url:
    """A parsed store URL: ``sqlite:///relative/path``, ``sqlite:////absolute/path``, or a
    PostgreSQL DSN ``postgresql://user@host:port/db[?options]`` passed to libpq unchanged."""

    backend: str  # "sqlite" | "postgresql"
    target: str  # a file path, or the DSN

    @classmethod
    def parse(cls, url: str) -> Url:
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            if not path or path == ":memory:":
                raise StoreError("sqlite URL needs a file path: sqlite:///path/to/file.sqlite")
            return cls("sqlite", path)
        if url.startswith(("postgresql://", "postgres://")):
            return cls("postgresql", url)
        raise StoreError(f"unsupported store URL {redact(url)!r}: use sqlite:/// or postgresql://")


def redact(url: str) -> str:
    """The URL without a password, for logs and error messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


class Db(abc.ABC):
    """A connection with the handful of operations the store needs. Not thread-safe: one
    thread uses it at a time (the writer thread, or a reader borrowed from the pool)."""

    backend: str
    clock: Clock

    @abc.abstractmethod
    def execute(self, sql: str, params: Params | None = None) -> int:
        """Run a statement; returns the number of rows changed."""

    @abc.abstractmethod
    def query(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Rows as dicts."""

    def query_one(self, sql: str, params: Params | None = None) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def script(self, sql: str) -> None:
        """Run several ';'-separated DDL statements (migrations) without parameters."""
        for statement in sql.split(";"):
            if statement.strip():
                self.execute(statement)

    def now(self) -> int:
        return self.clock()

    @abc.abstractmethod
    def begin(self, immediate: bool = False) -> None:
        """Start a transaction (``immediate``: take the write lock now)."""

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""


def _create_owner_only(path: Path) -> None:
    """The journal holds masked PANs, fingerprints and key tokens: a new journal and the folder
    made for it are the owner's alone (0600/0700). SQLite gives its -wal and -shm files the
    mode of the database file, so they follow."""
    if path.exists() or str(path) == ":memory:":
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return
    os.close(fd)


class SqliteDb(Db):
    backend = "sqlite"

    def __init__(self, path: str, clock: Clock, *, writer: bool):
        _create_owner_only(Path(path))
        # isolation_level=None: autocommit; transactions are begun and ended explicitly.
        # timeout: wait up to 30 s for another process (a CLI tool) holding the write lock.
        self.conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self.conn.row_factory = _dict_row
        self.clock = clock
        self.conn.execute("PRAGMA foreign_keys = ON")
        if writer:
            _enable_wal(self.conn, deadline=time.monotonic() + 30.0)
            # FULL: a commit is fsynced before it returns, so an acknowledged write survives a
            # power cut. The writer checkpoints itself, after waking its waiters.
            self.conn.execute("PRAGMA synchronous = FULL")

    def execute(self, sql: str, params: Params | None = None) -> int:
        return self.conn.execute(sql, params or {}).rowcount

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        return self.conn.execute(sql, params or {}).fetchall()

    def begin(self, immediate: bool = False) -> None:
        # IMMEDIATE takes the write lock up front, so a write transaction never fails half-way
        # with SQLITE_BUSY when another process (a CLI tool) writes at the same time.
        self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def disable_autocheckpoint(self) -> None:
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")

    def close(self) -> None:
        self.conn.close()


def _enable_wal(conn: sqlite3.Connection, deadline: float) -> None:
    """Switch a database to WAL. SQLite answers this pragma with "database is locked" at once,
    without its busy timeout, while another connection is creating or migrating a fresh file
    (several hosts or CLI tools opening one new journal together), so retry until the
    deadline."""
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _dict_row(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


class PostgresDb(Db):
    backend = "postgresql"

    def __init__(self, dsn: str, clock: Clock):
        import psycopg  # imported here: only PostgreSQL users need it
        from psycopg.rows import dict_row

        try:
            self.conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to {redact(dsn)}: {exc}") from exc
        self.clock = clock

    def execute(self, sql: str, params: Params | None = None) -> int:
        cur = self.conn.execute(to_pyformat(sql), params or {})
        return cur.rowcount

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        return self.conn.execute(to_pyformat(sql), params or {}).fetchall()

    def script(self, sql: str) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                self.conn.execute(statement)  # DDL has no parameters: no translation

    def begin(self, immediate: bool = False) -> None:
        self.execute("BEGIN")

    @property
    def broken(self) -> bool:
        return self.conn.closed or self.conn.broken

    def close(self) -> None:
        self.conn.close()


def connect(url: str | Url, clock: Clock = epoch_ms, *, writer: bool = False) -> Db:
    parsed = url if isinstance(url, Url) else Url.parse(url)
    if parsed.backend == "sqlite":
        return SqliteDb(parsed.target, clock, writer=writer)
    return PostgresDb(parsed.target, clock)


def _database_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


DATABASE_ERRORS = _database_errors()


def call(fn: Callable[..., Any], db: Db, *args: Any, **kwargs: Any) -> Any:
    """Run one store operation; a driver exception (constraint, lost connection...) comes out
    as a ``StoreError`` whose ``__cause__`` is the driver's exception."""
    try:
        return fn(db, *args, **kwargs)
    except DATABASE_ERRORS as exc:
        raise StoreError(f"{type(exc).__name__}: {exc}") from exc
