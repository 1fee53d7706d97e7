"""The two faces of the store, over the same SQL (``host.store.ops``; typed methods in
``host.store.facade``).

* :class:`Store` — for the Trio host. ``await store.insert_pending(...)`` returns once the row
  is committed (durable); writes go through one writer with group commit (a thread of this
  process, or with ``writer_process=True`` a child process: :mod:`host.store.writer_process`),
  reads run in worker threads on a small pool of read connections. The event loop never touches
  disk. With ``durability="log"`` (SQLite, writer process: the host's default) a request or
  an outcome is durable once it is in the journal's write log and reaches the tables a moment
  later (:mod:`host.store.log_writer`); every read of the journal first asks the writer to
  apply what it has acknowledged, so reads see every acknowledged write; a read from another
  process (a ``SyncStore``, a store without the log) waits the moment that takes.
* :class:`SyncStore` — plain blocking calls for CLI tools and scripts: one connection, one
  transaction per write.

Both expose the same method names. Open with ``async with open_store(url) as store`` or
``with SyncStore.open(url) as store``; both migrate the schema to the current version.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import attrs
import outcome
import structlog
import trio

from host.store import ops
from host.store.db import DEFAULT_URL, Clock, Db, Url, call, connect, epoch_ms, redact
from host.store.errors import StoreClosed
from host.store.facade import AsyncFacade, SyncFacade
from host.store.journal_log import wait_applied
from host.store.log_writer import project_now
from host.store.schema import migrate
from host.store.writer import Op, Writer, WriterStats
from host.store.writer_process import WriterProcess, cannot_abort

log = structlog.get_logger(__name__)
T = TypeVar("T")


def default_url() -> str:
    """``$POSHOST_JOURNAL_URL`` (the variable the host's config reads), else
    ``sqlite:///var/poshost.sqlite`` (relative to the cwd)."""
    return os.environ.get("POSHOST_JOURNAL_URL") or DEFAULT_URL


# Reads of tables that only synchronous writes change (the estate, limits, terms, tokens): in
# log mode they need not wait for the writer to apply logged journal writes first.
ESTATE_READS = frozenset(
    fn.__name__
    for fn in (
        ops.get_merchant,
        ops.list_merchants,
        ops.get_terminal,
        ops.list_terminals,
        ops.get_operator,
        ops.list_operators,
        ops.get_business_day,
        ops.get_risk_limit_rows,
        ops.list_risk_limits,
        ops.get_merchant_terms,
        ops.get_device,
        ops.latest_activation_code,
        ops.get_api_token,
        ops.list_api_tokens,
    )
)


def _reading_after_log(fn: Callable[..., T], db_path: str) -> Callable[..., T]:
    """``fn`` run once the tables hold what a running host's journal writer has made durable
    in its write log (a read from outside the writer: the CLI, the back office)."""

    def read(db: Db, *args: Any, **kwargs: Any) -> T:
        wait_applied(db, db_path)
        return fn(db, *args, **kwargs)

    return read


# -- the Trio store ----------------------------------------------------------------------------


def _wake(items: list[tuple[Op, outcome.Outcome]]) -> None:
    """Runs on the event loop (via run_sync_soon): hand each waiting task its result."""
    for op, result in items:
        trio.lowlevel.reschedule(op.waiter, result)


class _ReaderPool:
    """At most ``size`` read connections, each used by one worker thread at a time."""

    def __init__(self, connect_fn: Callable[[], Db], size: int):
        self._connect = connect_fn
        self._free: list[Db] = []
        self._lock = threading.Lock()
        self.limiter = trio.CapacityLimiter(size)

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        with self._lock:
            db = self._free.pop() if self._free else None
        if db is None:
            db = self._connect()
        try:
            return call(fn, db, *args, **kwargs)
        finally:
            if getattr(db, "broken", False):
                db.close()  # a lost PostgreSQL connection: the next read opens a new one
            else:
                with self._lock:
                    self._free.append(db)

    def close(self) -> None:
        with self._lock:
            free, self._free = self._free, []
        for db in free:
            db.close()


class Store(AsyncFacade):
    """The journal and estate store for Trio code. See the module docstring."""

    def __init__(
        self,
        url: str,
        writer: Writer | WriterProcess,
        readers: _ReaderPool,
        durability: str = "database",
    ):
        self.url = url
        self.backend = Url.parse(url).backend
        self.durability = durability
        self._writer = writer
        self._process = writer if isinstance(writer, WriterProcess) else None
        self._readers = readers
        self._notifiers: dict[trio.lowlevel.TrioToken, Callable] = {}
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        clock: Clock = epoch_ms,
        readers: int = 4,
        batch_cap: int = 256,
        commit_delay: float = 0.0,
        writer_process: bool = False,
        durability: str = "database",
        workers: int = 0,
        journal_socket: socket.socket | None = None,
    ) -> Store:
        """Open (creating and migrating as needed) the store at ``url``; ``aclose()`` it.
        ``commit_delay`` (seconds): see :mod:`host.store.writer`. ``writer_process``: the
        writer runs in a child process (:mod:`host.store.writer_process`) instead of a thread;
        it keeps the default clock. ``durability``: "database" (each group is a durable
        transaction) or "log" (SQLite with the writer process only: the journal's write log,
        :mod:`host.store.log_writer`; one such store per journal file). ``workers``: the writer
        process also serves that many worker processes (``writer_sockets()``);
        ``journal_socket``: this store is such a worker's, on the writer its parent started (the
        parent migrated the schema)."""
        url = url or default_url()
        parsed = Url.parse(url)
        if writer_process and clock is not epoch_ms:
            raise ValueError("a writer process keeps the default clock (epoch_ms)")
        if durability not in ("database", "log"):
            raise ValueError('durability is "database" or "log"')
        if durability == "log" and (not writer_process or parsed.backend != "sqlite"):
            raise ValueError("durability = log needs a SQLite journal and the writer process")
        if journal_socket is not None:
            attached = await WriterProcess.attach(journal_socket)
            pool = _ReaderPool(lambda: connect(parsed, clock), readers)
            log.info("store.attached", url=redact(url), durability=durability)
            return cls(url, attached, pool, durability)

        def prepare() -> Writer | None:
            db = connect(parsed, clock, writer=True)
            try:
                migrate(db)
            finally:
                db.close()
            if writer_process:
                return None
            writer = Writer(
                lambda: connect(parsed, clock, writer=True),
                batch_cap=batch_cap,
                commit_delay=commit_delay,
            )
            writer.start()
            return writer

        writer = await trio.to_thread.run_sync(prepare)
        if writer is None:
            writer = await WriterProcess.start(
                url,
                commit_delay=commit_delay,
                batch_cap=batch_cap,
                durability=durability,
                workers=workers,
            )
        pool = _ReaderPool(lambda: connect(parsed, clock), readers)
        mode = "process" if writer_process else "thread"
        log.info("store.opened", url=redact(url), backend=parsed.backend, writer=mode,
                 durability=durability)  # fmt: skip
        return cls(url, writer, pool, durability)

    async def aclose(self) -> None:
        """Complete every write submitted so far, then close all connections."""
        if self._closed:
            return
        self._closed = True
        if self._process is not None:
            await self._process.aclose()
        else:
            await trio.to_thread.run_sync(self._writer.close)
        self._readers.close()
        log.info("store.closed", url=redact(self.url), **attrs.asdict(self.writer_stats))

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def writer_sockets(self) -> list[socket.socket]:
        """The sockets of the worker processes the writer process serves (``workers``)."""
        return self._process.worker_sockets if self._process is not None else []

    @property
    def writer_stats(self) -> WriterStats:
        """Counters of the writer thread (ops, commits, failed_ops, max_group, checkpoints)."""
        return self._writer.stats

    async def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise StoreClosed("store is closed")
        if self._process is not None:
            return await self._process.write(fn, args, kwargs)
        self._writer.submit(Op(fn, args, kwargs, self._notifier(), trio.lowlevel.current_task()))
        # Once submitted, a write runs to its end: a cancelled caller must still learn whether
        # its row is journalled. So the wait cannot be aborted; a cancellation is delivered at
        # the caller's next checkpoint. (A shielded cancel scope and an event would do the same,
        # at a cost that showed in the event loop's profile: two writes per purchase.)
        return await trio.lowlevel.wait_task_rescheduled(cannot_abort)

    async def applied(self) -> None:
        """Return once every write acknowledged so far (by this process or another using the
        same writer) is in the tables; at once with durability = database."""
        if self.durability == "log":
            await self._write(project_now)

    def _notifier(self) -> Callable:
        """One callback per Trio run: the writer thread calls it once per committed group."""
        token = trio.lowlevel.current_trio_token()
        notify = self._notifiers.get(token)
        if notify is None:

            def notify(items: list[tuple[Op, outcome.Outcome]]) -> None:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(_wake, items)

            self._notifiers[token] = notify
        return notify

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise StoreClosed("store is closed")
        if fn.__name__ not in ESTATE_READS:
            if self.durability == "log":
                await self.applied()
            elif self.backend == "sqlite":
                fn = _reading_after_log(fn, Url.parse(self.url).target)
        return await trio.to_thread.run_sync(
            self._readers.run, fn, args, kwargs, limiter=self._readers.limiter
        )


@contextlib.asynccontextmanager
async def open_store(url: str | None = None, **kwargs: Any) -> AsyncIterator[Store]:
    """``async with open_store(url) as store: ...`` — see :meth:`Store.open`."""
    store = await Store.open(url, **kwargs)
    try:
        yield store
    finally:
        await store.aclose()


# -- the blocking store ------------------------------------------------------------------------


class SyncStore(SyncFacade):
    """The same API without Trio: blocking calls, one transaction per write. For CLI tools."""

    def __init__(self, url: str, db: Db):
        self.url = url
        self.backend = db.backend
        self._db: Db | None = db

    @classmethod
    def open(cls, url: str | None = None, *, clock: Clock = epoch_ms) -> SyncStore:
        url = url or default_url()
        db = connect(url, clock, writer=True)
        try:
            migrate(db)
        except BaseException:
            db.close()
            raise
        return cls(url, db)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> Db:
        if self._db is None:
            raise StoreClosed("store is closed")
        return self._db

    def _transact(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def in_transaction(db: Db) -> Any:
            db.begin(immediate=True)
            try:
                result = fn(db, *args, **kwargs)
            except BaseException:
                db.rollback()
                raise
            db.commit()
            return result

        return call(in_transaction, self._connection())

    def _read_now(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.backend == "sqlite" and fn.__name__ not in ESTATE_READS:
            fn = _reading_after_log(fn, Url.parse(self.url).target)
        return call(fn, self._connection(), *args, **kwargs)
