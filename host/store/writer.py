"""The one journal writer of a process, with group commit: a thread (this module), or the same
group logic driven by a child process (``host.store.writer_process``, the host's default).

Callers put operations on a queue. The thread takes the first one, drains whatever else is
queued (up to ``batch_cap``), runs them all in ONE database transaction, commits once (one
fsync for the whole group) and only then completes each operation. While one group commits,
the next one queues up: the busier the host, the bigger the groups.

Under load, a short commit delay makes the groups bigger still: when several operations were
already waiting (requests are arriving concurrently), the thread waits up to ``commit_delay``
seconds for more before it commits, like PostgreSQL's ``commit_delay`` with
``commit_siblings``. An fsync costs ~130 us of wall time and ~40-100 us of kernel CPU on the
benchmark machine, so fewer of them is CPU saved; a lightly loaded host, whose writes arrive
one at a time, never waits.

An operation that fails fails only its own caller: the group is then rolled back and run again
with a savepoint around each operation, so the failed one is undone alone and the rest commit.
(Savepoints only on that slow path: on PostgreSQL each one costs a round trip.) Operations are
therefore plain functions of the database: running one twice in a rolled-back transaction
must be harmless, which holds for everything in ``host.store.ops``. For the same reason a
group that deadlocks with another process's transaction (several hosts sharing one PostgreSQL
journal) is rolled back and run again, up to ``max_attempts`` times.

Completion is handed back to each caller's thread or event loop by a callback
(``notify(results)``), called from this thread after the commit; for Trio callers the store
passes a callback that re-enters the event loop with ``TrioToken.run_sync_soon``.
"""

from __future__ import annotations

import contextlib
import ctypes
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import outcome
import structlog

from host.store.db import Db, SqliteDb, call
from host.store.errors import StoreClosed, StoreError

log = structlog.get_logger(__name__)

Notify = Callable[[list[tuple["Op", outcome.Outcome]]], None]


@attrs.define(eq=False)
class Op:
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict[str, Any]
    notify: Notify  # called (from the writer thread) with [(op, outcome), ...] after commit
    waiter: Any = None  # whatever the submitter needs to find its caller again


@attrs.define
class WriterStats:
    ops: int = 0  # operations completed (successfully or not)
    failed_ops: int = 0  # operations that failed (each rolled back alone, in its savepoint)
    retried_groups: int = 0  # groups run a second time, with savepoints, after a failure
    transient_retries: int = 0  # groups rolled back and re-run after a deadlock
    commits: int = 0  # transactions committed
    max_group: int = 0  # largest number of operations in one commit
    checkpoints: int = 0  # SQLite WAL checkpoints run by this thread
    logged: int = 0  # log mode: operations made durable in the write log
    projections: int = 0  # log mode: batches of logged operations applied to the tables


_STOP = object()


def _name_os_thread(name: str) -> None:
    """Name the thread for the OS too (top -H, /proc/<pid>/task/*/comm, the benchmark's CPU
    split); Python 3.11 names it only for itself. Linux only; elsewhere nothing happens."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # 15 = PR_SET_NAME


# SQLSTATEs after which running the transaction again can succeed: deadlock detected,
# serialization failure.
_TRANSIENT_SQLSTATES = {"40P01", "40001"}


def _back_off(attempt: int) -> None:
    """Before running a deadlocked group again: a random pause that grows with the attempt,
    so two hosts that deadlocked together do not retry in step and deadlock again."""
    time.sleep(random.uniform(0.5, 1.5) * 0.002 * attempt)


def _errors(results: list[tuple[Op, outcome.Outcome]]) -> list[BaseException]:
    return [r.error for _op, r in results if isinstance(r, outcome.Error)]


def _transient(results: list[tuple[Op, outcome.Outcome]]) -> bool:
    return any(
        getattr(exc.__cause__, "sqlstate", None) in _TRANSIENT_SQLSTATES for exc in _errors(results)
    )


class Writer:
    def __init__(
        self,
        connect: Callable[[], Db],
        *,
        batch_cap: int = 256,
        checkpoint_every: int = 100,
        max_attempts: int = 8,
        commit_delay: float = 0.0,
    ):
        self._connect = connect
        self.batch_cap = batch_cap
        self.checkpoint_every = checkpoint_every
        self.max_attempts = max_attempts
        self.commit_delay = commit_delay
        self.stats = WriterStats()
        self._checkpointed_at = 0  # stats.commits at the last checkpoint
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)

    def start(self) -> None:
        """Start the thread and wait until its connection is open (raises if it cannot)."""
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def submit(self, op: Op) -> None:
        if self._closed:
            raise StoreClosed("store is closed")
        self._queue.put(op)

    def close(self) -> None:
        """Finish every operation submitted so far, then stop the thread (blocking)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        _name_os_thread("store-writer")
        try:
            db = self.open_connection()
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        stopping = False
        while not stopping:
            group = [self._queue.get()]
            if group[0] is _STOP:
                break
            while len(group) < self.batch_cap:
                try:
                    op = self._queue.get_nowait()
                except queue.Empty:
                    break
                if op is _STOP:
                    stopping = True
                    break
                group.append(op)
            if not stopping and self.commit_delay and len(group) > 1:
                stopping = self._gather(group)
            db = self.run_group(db, group)
            self.checkpoint_if_due(db, idle=self._queue.empty())
        db.close()

    def open_connection(self) -> Db:
        db = self._connect()
        if isinstance(db, SqliteDb):
            # No automatic checkpoint inside a commit that callers wait for: the writer
            # checkpoints itself between groups, after waking the previous group's callers.
            # (A separate checkpoint thread measured no better on this machine: the fsyncs
            # contend at the disk anyway.)
            db.disable_autocheckpoint()
        return db

    def _gather(self, group: list[Op]) -> bool:
        """Sleep commit_delay, then add what arrived to the group; True when asked to stop.
        (A sleep, not a blocking get per arrival: nobody waits on the queue meanwhile, so the
        event loop's puts wake no thread and this one does not take the GIL for each.)"""
        time.sleep(self.commit_delay)
        while len(group) < self.batch_cap:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op is _STOP:
                return True
            group.append(op)
        return False

    # -- what the writer process calls between groups (log mode overrides them) ----------------

    def after_group(self, db: Db) -> None:
        self.checkpoint_if_due(db, idle=False)

    def on_idle(self, db: Db) -> None:
        self.checkpoint_if_due(db, idle=True)

    def on_due(self, db: Db) -> None:
        """``next_deadline()`` has come, with no new input."""

    def next_deadline(self) -> float | None:
        """Seconds until the writer has something to do without new input (None: nothing)."""
        return None

    def finish(self, db: Db) -> None:
        """The input has ended: leave nothing half done (the connection is closed after)."""

    def checkpoint_if_due(self, db: Db, *, idle: bool) -> None:
        """After a group: fold the SQLite WAL back into the database every N commits, or at an
        idle moment once a little has been written (PASSIVE: never waits for readers)."""
        if not isinstance(db, SqliteDb):
            return
        since = self.stats.commits - self._checkpointed_at
        if not (since >= self.checkpoint_every or (since >= 10 and idle)):
            return
        self._checkpointed_at = self.stats.commits
        try:
            db.checkpoint()
            self.stats.checkpoints += 1
        except Exception:
            log.exception("store.checkpoint_failed")

    def run_group(self, db: Db, group: list[Op]) -> Db:
        """Run, commit and complete one group; returns the connection to use next (a new one
        after a lost connection)."""
        try:
            results = self._transact_group(db, group)
        except Exception as exc:
            # The transaction itself failed (connection lost, disk full...): nothing in this
            # group is durable, so every operation fails.
            log.error("store.group_failed", ops=len(group), error=repr(exc))
            error = StoreError(f"journal write failed: {exc!r}")
            error.__cause__ = exc
            results = [(op, outcome.Error(error)) for op in group]
            db = self._recover(db)
        else:
            self.stats.commits += 1
            self.stats.max_group = max(self.stats.max_group, len(group))
            self.stats.failed_ops += sum(isinstance(r, outcome.Error) for _op, r in results)
        self.stats.ops += len(group)
        self._complete(results)
        return db

    def _transact_group(self, db: Db, group: list[Op]) -> list[tuple[Op, outcome.Outcome]]:
        """Run and commit the group; returns each operation's outcome."""
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            # Fast path: the whole group in one transaction, no savepoints (each savepoint is a
            # round trip to PostgreSQL).
            results = self._attempt(db, group, savepoints=False)
            if not _errors(results):
                db.commit()
                return results
            db.rollback()
            if _transient(results) and not last:
                # A deadlock with another process's transaction (two hosts on one PostgreSQL
                # journal): our rollback let the other one finish; run the group again.
                self.stats.transient_retries += 1
                _back_off(attempt)
                continue
            # Some operation failed: run the group again with a savepoint around each
            # operation, so that the failed one is undone alone and only its caller sees it.
            self.stats.retried_groups += 1
            results = self._attempt(db, group, savepoints=True)
            if _transient(results) and not last:
                db.rollback()
                self.stats.transient_retries += 1
                _back_off(attempt)
                continue
            db.commit()
            return results
        raise AssertionError("unreachable: the last attempt always returns")

    @staticmethod
    def _attempt(db: Db, group: list[Op], *, savepoints: bool) -> list[tuple[Op, outcome.Outcome]]:
        """Begin a transaction and run the group's operations in it (no commit)."""
        db.begin(immediate=True)
        results = []
        for i, op in enumerate(group):
            if not savepoints:
                result = outcome.capture(call, op.fn, db, *op.args, **op.kwargs)
                results.append((op, result))
                if isinstance(result, outcome.Error):
                    break  # the group will be run again with savepoints
                continue
            db.execute(f"SAVEPOINT op{i}")
            result = outcome.capture(call, op.fn, db, *op.args, **op.kwargs)
            if isinstance(result, outcome.Error):
                db.execute(f"ROLLBACK TO SAVEPOINT op{i}")
            db.execute(f"RELEASE SAVEPOINT op{i}")
            results.append((op, result))
        return results

    def _recover(self, db: Db) -> Db:
        try:
            db.rollback()
            return db
        except Exception as exc:
            log.warning("store.reconnecting", error=repr(exc))
        with contextlib.suppress(Exception):
            db.close()
        try:
            return self._connect()
        except Exception as exc:
            log.error("store.reconnect_failed", error=repr(exc))
            return db  # the next group fails again and retries the connection

    @staticmethod
    def _complete(results: list[tuple[Op, outcome.Outcome]]) -> None:
        # One callback per distinct notifier (e.g. per Trio run): one wake-up per group.
        by_notify: dict[Notify, list[tuple[Op, outcome.Outcome]]] = {}
        for op, result in results:
            by_notify.setdefault(op.notify, []).append((op, result))
        for notify, items in by_notify.items():
            try:
                notify(items)
            except Exception:
                log.exception("store.notify_failed")
