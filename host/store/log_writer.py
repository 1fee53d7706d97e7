"""The SQLite journal's writer in log mode (``journal.durability = "log"``, the host's default
on SQLite): the two writes of every purchase are made durable by appending them to the write
log (``host/store/journal_log.py``), and reach the tables a moment later, in batches.

Per group of operations, in arrival order:

* ``insert_pending`` (a request without an original) and ``record_outcome`` (without an
  ``original_status``) are *logged*: the writer checks what the database would (the duplicate
  key, the status, that the row exists), hands out the id itself, appends the call to the log,
  and, after one ``fdatasync`` for the group, answers. The writer is the only one that journals
  transactions in this mode, so it knows every key it has acknowledged; keys it did not write
  itself are read from the table once per terminal batch and business date.
* Every other operation runs as before: a database transaction committed durably before its
  answer, after everything logged before it has been applied (so it sees it).

Logged calls are *applied* (the same ``host.store.ops`` functions, in order, each with the clock
value it was logged with) in one transaction per batch: every ``project_interval`` seconds
under load, at once when the writer is idle, before any other operation, and when a reader
asks (``project_now``: the host's reads of the journal send it first, so they see every write
that was acknowledged). Each batch records the last applied sequence number in
``journal_log`` in the same transaction, and commits durably; a restart applies the records
after it. The log starts again at its top once it is half full and everything in it has been
applied.

So the Store API keeps its meaning: an operation's rows are written by its ``ops`` function in
one transaction (with whatever else that function writes); what changes is when. A logged call
that still fails when applied (a bug: its checks ran when it was logged) is kept in
``<journal>-log.rejected`` and logged as an error; nothing acknowledged is dropped silently.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import outcome
import structlog

from host.store import ops
from host.store.db import Db, SqliteDb, Url, call, connect, epoch_ms
from host.store.errors import DuplicateTransaction, StoreError
from host.store.journal_log import KIND_OPS, LOG_NAME, JournalLog, log_path_for
from host.store.records import TXN_STATUSES, NewTransaction
from host.store.writer import Op, Writer

log = structlog.get_logger(__name__)

_TXN_FIELDS = tuple(a.name for a in attrs.fields(NewTransaction))
_REQUIRED = ("tid", "mid", "batch", "stan", "business_date", "txn_type", "mti", "currency")


def project_now(db: Db) -> None:
    """A barrier a reader sends through the writer: in log mode, everything acknowledged before
    it is in the tables when it returns; with durability = database there is nothing to do."""


@attrs.define(slots=True)
class _Logged:
    seq: int
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict[str, Any]
    now: int


class _CallFailed(Exception):
    """A logged call failed while being applied (the batch is run again with savepoints)."""


class _Clock:
    """The writer connection's clock: the time a logged call was made while it is applied
    (so a replay writes the same timestamps), the wall clock otherwise."""

    __slots__ = ("fixed",)

    def __init__(self) -> None:
        self.fixed: int | None = None

    def __call__(self) -> int:
        return epoch_ms() if self.fixed is None else self.fixed


_LOGGED_FNS = {fn.__name__: fn for fn in (ops.insert_pending, ops.record_outcome)}


def _jsonable(value: Any) -> bool:
    """Can the log hold it as it is (the database then gets the same JSON)?"""
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _encode_args(args: tuple) -> list:
    return [
        {"NewTransaction": [getattr(a, f) for f in _TXN_FIELDS]}
        if isinstance(a, NewTransaction)
        else a
        for a in args
    ]


def _decode_args(args: list) -> tuple:
    return tuple(
        NewTransaction(**dict(zip(_TXN_FIELDS, a["NewTransaction"], strict=True)))
        if isinstance(a, dict) and "NewTransaction" in a
        else a
        for a in args
    )


class LogWriter(Writer):
    """The group logic of log mode, driven by the writer process (``writer_process.serve``).
    Not thread-safe: one thread calls everything."""

    def __init__(
        self,
        url: str,
        *,
        batch_cap: int = 256,
        commit_delay: float = 0.0,
        project_interval: float = 0.05,
        project_batch: int = 2048,
        id_block: int = 1024,
        log_size: int = 16 << 20,
    ) -> None:
        parsed = Url.parse(url)
        if parsed.backend != "sqlite":
            raise StoreError("journal.durability = log is for SQLite journals")
        self._clock = _Clock()
        super().__init__(
            lambda: connect(parsed, self._clock, writer=True),
            batch_cap=batch_cap,
            commit_delay=commit_delay,
        )
        self.log_path = log_path_for(parsed.target)
        self.project_interval = project_interval
        self.project_batch = project_batch
        self.id_block = id_block
        self.log_size = log_size
        self.log_limit = log_size // 2  # wrap after a batch is applied past the middle
        self._log: JournalLog | None = None
        self._pending: list[_Logged] = []  # logged and durable, not yet in the tables
        self._unsynced: list[_Logged] = []  # logged in this group, not yet written
        self._pending_since = 0.0
        self._seq = 0
        # (tid, batch, business_date) -> {stan: id}: every key this writer has acknowledged,
        # and the table's keys of the terminal batches it has seen
        self._keys: dict[tuple[str, str, str], dict[str, int]] = {}
        self._next_id = 1
        self._block_end = 0  # ids up to this one are reserved for this writer
        self._first_id: int | None = None  # the first id this writer handed out
        self._sql_commits = 0

    # -- start and stop ------------------------------------------------------------------------

    def open_connection(self) -> Db:
        db = super().open_connection()
        if self._log is None:
            self._log = JournalLog.open(self.log_path, size=self.log_size)
            self._replay(db)
        return db

    def finish(self, db: Db) -> None:
        """Apply everything, empty the log (all of it is durable in the tables), release it."""
        try:
            self._project(db)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _replay(self, db: Db) -> None:
        """Apply the log's records that the tables do not have yet (after a crash)."""
        assert self._log is not None
        records = self._log.recover()
        applied = self._applied_seq(db)
        last = applied
        todo: list[_Logged] = []
        for kind, payload in records:
            if kind != KIND_OPS:
                continue
            for seq, name, args, kwargs, now in orjson.loads(payload):
                last = max(last, seq)
                if seq > applied:
                    todo.append(_Logged(seq, _LOGGED_FNS[name], _decode_args(args), kwargs, now))
        self._seq = last
        self._log.published(last)
        if todo:
            log.warning(
                "journal_log.applying_after_restart",
                ops=len(todo),
                first_seq=todo[0].seq,
                last_seq=todo[-1].seq,
            )
            self._pending = todo
            self._project(db)
        if not self._pending:
            self._log.wrap()

    @staticmethod
    def _applied_seq(db: Db) -> int:
        row = db.query_one(
            "SELECT applied_seq FROM journal_log WHERE log = :log", {"log": LOG_NAME}
        )
        return int(row["applied_seq"]) if row else 0

    # -- a group --------------------------------------------------------------------------------

    def run_group(self, db: Db, group: list[Op]) -> Db:
        results: list[tuple[Op, outcome.Outcome]] = []
        sql_run: list[Op] = []

        def run_sql() -> None:
            nonlocal db
            if sql_run:
                db = self._run_sql(db, list(sql_run), results)
                sql_run.clear()

        for op in group:
            if op.fn is project_now:
                run_sql()
                self._sync(db)
                self._project(db)
                if self._pending:  # the database refused the batch (busy): say so, never stale
                    busy = StoreError("journal busy: logged writes not yet in the tables")
                    results.append((op, outcome.Error(busy)))
                else:
                    results.append((op, outcome.Value(None)))
                continue
            if op.fn.__name__ in _LOGGED_FNS and op.fn is _LOGGED_FNS[op.fn.__name__]:
                run_sql()  # whatever came before it is applied first
                try:
                    logged = self._prepare(db, op)
                except Exception as exc:
                    results.append((op, outcome.Error(exc)))
                    continue
                if logged is not None:
                    self._unsynced.append(logged[0])
                    results.append((op, outcome.Value(logged[1])))
                    continue
            if self._unsynced or self._pending:
                self._sync(db)
                self._project(db)
            sql_run.append(op)
        run_sql()
        self._sync(db)
        self.stats.ops += len(group)
        self.stats.max_group = max(self.stats.max_group, len(group))
        self.stats.failed_ops += sum(isinstance(r, outcome.Error) for _op, r in results)
        self._complete(results)
        return db

    def _run_sql(self, db: Db, group: list[Op], results: list) -> Db:
        """Operations that are not logged: one durable transaction, as with durability =
        database (an insert gets its id from this writer's block)."""
        for op in group:
            insert = op.fn in (ops.insert_pending, ops.insert_pending_child)
            if insert and op.kwargs.get("txn_id") is None:
                op.kwargs = {**op.kwargs, "txn_id": self._allocate(db)}
        try:
            outcomes = self._transact_group(db, group)
        except Exception as exc:
            log.error("store.group_failed", ops=len(group), error=repr(exc))
            error = StoreError(f"journal write failed: {exc!r}")
            error.__cause__ = exc
            outcomes = [(op, outcome.Error(error)) for op in group]
            db = self._recover_connection(db)
        else:
            self.stats.commits += 1
            self._sql_commits += 1
        for op, result in outcomes:
            if isinstance(result, outcome.Value) and op.fn in (
                ops.insert_pending,
                ops.insert_pending_child,
            ):
                txn = op.args[0] if op.args else op.kwargs.get("txn")
                entry = self._keys.get((txn.tid, txn.batch, txn.business_date))
                if entry is not None:
                    entry[txn.stan] = result.value
        results.extend(outcomes)
        return db

    def _recover_connection(self, db: Db) -> Db:
        return Writer._recover(self, db)

    def _prepare(self, db: Db, op: Op) -> tuple[_Logged, Any] | None:
        """Check a call that can be logged and log it (not yet written); None when it must
        run in the database instead (an unusual shape; the database then gives its answer)."""
        fn = op.fn
        if fn is ops.insert_pending:
            if len(op.args) != 1 or any(v is not None for v in op.kwargs.values()):
                return None
            txn = op.args[0]
            if not isinstance(txn, NewTransaction) or txn.original_id is not None:
                return None
            if any(getattr(txn, f) is None for f in _REQUIRED) or not _jsonable(txn.extra):
                return None
            stans = self._stans(db, txn)
            existing = stans.get(txn.stan)
            if existing is not None:
                raise DuplicateTransaction(
                    txn.tid, txn.batch, txn.stan, txn.business_date, existing
                )
            txn_id = self._allocate(db)
            stans[txn.stan] = txn_id
            return self._log_call(fn, (txn,), {"txn_id": txn_id}), txn_id
        # record_outcome
        if len(op.args) != 1 or op.kwargs.get("original_status") is not None:
            return None
        txn_id = op.args[0]
        status = op.kwargs.get("status")
        if status not in TXN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(TXN_STATUSES)}; got {status!r}")
        if not isinstance(txn_id, int) or not self._known(db, txn_id) or not _jsonable(op.kwargs):
            return None
        return self._log_call(fn, (txn_id,), dict(op.kwargs)), None

    def _log_call(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> _Logged:
        self._seq += 1
        return _Logged(self._seq, fn, args, kwargs, epoch_ms())

    def _stans(self, db: Db, txn: NewTransaction) -> dict[str, int]:
        key = (txn.tid, txn.batch, txn.business_date)
        stans = self._keys.get(key)
        if stans is None:
            rows = db.query(
                "SELECT stan, id FROM transactions"
                " WHERE tid = :tid AND batch = :batch AND business_date = :d",
                {"tid": txn.tid, "batch": txn.batch, "d": txn.business_date},
            )
            stans = self._keys[key] = {r["stan"]: r["id"] for r in rows}
        return stans

    def _known(self, db: Db, txn_id: int) -> bool:
        if self._first_id is not None and self._first_id <= txn_id < self._next_id:
            return True
        return (
            db.query_one("SELECT 1 AS x FROM transactions WHERE id = :id", {"id": txn_id})
            is not None
        )

    def _allocate(self, db: Db) -> int:
        if self._next_id > self._block_end:
            self._reserve(db)
        txn_id = self._next_id
        self._next_id += 1
        if self._first_id is None:
            self._first_id = txn_id
        return txn_id

    def _reserve(self, db: Db) -> None:
        """The next ``id_block`` transaction ids, durably marked as used in SQLite's own
        AUTOINCREMENT counter, so no other insert can take them."""
        db.begin(immediate=True)
        try:
            seq = db.query_one("SELECT seq FROM sqlite_sequence WHERE name = 'transactions'")
            top = db.query_one("SELECT MAX(id) AS m FROM transactions")
            start = max(int(seq["seq"]) if seq else 0, int((top or {}).get("m") or 0)) + 1
            end = start + self.id_block - 1
            if seq is None:
                db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('transactions', :end)",
                    {"end": end},
                )
            else:
                db.execute(
                    "UPDATE sqlite_sequence SET seq = :end WHERE name = 'transactions'",
                    {"end": end},
                )
            db.commit()
        except BaseException:
            db.rollback()
            raise
        self._next_id, self._block_end = start, end

    def _sync(self, db: Db) -> None:
        """Write this group's logged calls and make them durable (then they may be answered)."""
        if not self._unsynced:
            return
        assert self._log is not None
        entries, self._unsynced = self._unsynced, []
        payload = orjson.dumps(
            [[e.seq, e.fn.__name__, _encode_args(e.args), e.kwargs, e.now] for e in entries]
        )
        if not self._log.fits(len(payload) + 64) and self._pending:
            self._project(db)
        if not self._log.fits(len(payload) + 64) and not self._pending:
            self._log.wrap()  # everything before is applied, durably: start again at the top
        try:
            self._log.append(payload, entries[0].seq, entries[-1].seq)
            self._log.sync()
        except OSError as exc:
            # After a failed fsync the file's state is unknown: stop (the host's writes fail
            # at once and a restart applies what the log holds), never answer as if durable.
            log.error("journal_log.sync_failed", path=str(self.log_path), error=repr(exc))
            raise
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.extend(entries)
        self.stats.commits += 1
        self.stats.logged += len(entries)

    # -- applying to the tables -----------------------------------------------------------------

    def projection_due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= self.project_batch
            or time.monotonic() - self._pending_since >= self.project_interval
        )

    def next_deadline(self) -> float | None:
        """Seconds until the pending calls are due to be applied (None: nothing pending)."""
        if not self._pending:
            return None
        return max(0.0, self._pending_since + self.project_interval - time.monotonic())

    def after_group(self, db: Db) -> None:
        if self.projection_due():
            self._project(db)
            self.checkpoint_if_due(db, idle=False)

    def on_idle(self, db: Db) -> None:
        self._project(db)
        self.checkpoint_if_due(db, idle=True)

    def on_due(self, db: Db) -> None:
        self._project(db)
        self.checkpoint_if_due(db, idle=False)

    def _project(self, db: Db) -> None:
        """Apply every pending call, in order, in one durable transaction. No savepoints on
        this path: inside one, SQLite copies every page it changes to a statement journal
        first (measured: 2.4x the writes). Only when a call fails is the batch run again with
        a savepoint around each call, so that one is undone alone."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        failed: list[tuple[_Logged, BaseException]] = []
        try:
            try:
                self._apply(db, batch, savepoints=False)
            except _CallFailed:
                db.rollback()
                failed = self._apply(db, batch, savepoints=True)
            db.execute(
                "INSERT INTO journal_log (log, applied_seq) VALUES (:log, :seq)"
                " ON CONFLICT (log) DO UPDATE SET applied_seq = excluded.applied_seq",
                {"log": LOG_NAME, "seq": batch[-1].seq},
            )
            db.commit()
        except Exception as exc:  # the database is busy or gone: the log holds them; later
            with contextlib.suppress(Exception):
                db.rollback()
            log.warning("journal_log.apply_postponed", ops=len(batch), error=repr(exc))
            self._pending = batch + self._pending
            return
        finally:
            self._clock.fixed = None
        self.stats.projections += 1
        if failed:
            self._reject(failed)
        if len(self._keys) > 50_000:
            self._keys.clear()  # nothing is pending: the table has every key again
        assert self._log is not None
        if self._log.position > self.log_limit:
            self._log.wrap()  # every record in it is applied, durably

    def _apply(
        self, db: Db, batch: list[_Logged], *, savepoints: bool
    ) -> list[tuple[_Logged, BaseException]]:
        """Begin a transaction and run the calls in it (no commit). Without savepoints a failing
        call raises ``_CallFailed``; with them it is undone alone and returned."""
        db.begin(immediate=True)
        failed = []
        for i, entry in enumerate(batch):
            self._clock.fixed = entry.now
            if not savepoints:
                try:
                    call(entry.fn, db, *entry.args, **entry.kwargs)
                except Exception as exc:
                    raise _CallFailed from exc
                continue
            db.execute(f"SAVEPOINT op{i}")
            try:
                call(entry.fn, db, *entry.args, **entry.kwargs)
            except Exception as exc:
                db.execute(f"ROLLBACK TO SAVEPOINT op{i}")
                failed.append((entry, exc))
            db.execute(f"RELEASE SAVEPOINT op{i}")
        return failed

    def _reject(self, failed: list[tuple[_Logged, BaseException]]) -> None:
        """Calls that were acknowledged but cannot be applied: kept, loudly."""
        path = f"{self.log_path}.rejected"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for entry, exc in failed:
                line = orjson.dumps(
                    {"seq": entry.seq, "op": entry.fn.__name__, "args": _encode_args(entry.args),
                     "kwargs": entry.kwargs, "now": entry.now, "error": repr(exc)},
                    default=str,
                )  # fmt: skip
                os.write(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.stats.failed_ops += len(failed)
        for entry, exc in failed:
            log.error("journal_log.rejected", seq=entry.seq, op=entry.fn.__name__,
                      error=repr(exc), kept_in=path)  # fmt: skip

    def checkpoint_if_due(self, db: Db, *, idle: bool) -> None:
        """Fold the WAL into the database after every 20 batches applied (about a second under
        load), or at an idle moment after any."""
        if not isinstance(db, SqliteDb):
            return
        done = self.stats.projections + self._sql_commits
        since = done - self._checkpointed_at
        if not (since >= 20 or (since >= 1 and idle)):
            return
        self._checkpointed_at = done
        try:
            db.checkpoint()
            self.stats.checkpoints += 1
        except Exception:
            log.exception("store.checkpoint_failed")
