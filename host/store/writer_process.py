"""The journal writer in a process of its own, for the Trio host.

Why a process: the writer thread and the event loop share one GIL. Every SQLite statement
releases the GIL and takes it back, so under load each statement costs the two threads a GIL
hand-off (a futex wake-up and a sleep on each side), and the busier the event loop, the longer
and costlier the wait. Measured on the benchmark machine, a writer thread next to a busy thread
spent 3.5x the CPU it needs alone for the same journal writes. In its own process the writer
has its own interpreter: no hand-offs, and the host's event loop never waits for the GIL.

The child runs the group logic of :class:`~host.store.writer.Writer` (group commit, commit
delay, savepoint retry, deadlock retry, checkpoints) in its one thread: it reads operations from
a socket and hands results back on it.
Operations travel as ``(seq, name, args, kwargs)`` where ``name`` is a function of
``host.store.ops`` (nothing else can be called); results as ``(seq, ok, value_or_exception)``.
Both directions are batched: the host sends what its tasks queued in one scheduler tick in one
frame, and the child answers a whole committed group in one frame, so a group costs one wake-up
each way, not one per operation. Frames are a 4-byte big-endian length and a pickle; the socket
is a private socketpair between a host and the child it started, never a listening socket.

The child lives as long as its socket: when the host closes it (or dies, SIGKILL included), the
child finishes and commits every operation it has read, then exits.
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import select
import signal
import socket
import struct
import subprocess
import time

import attrs
import outcome
import trio

from host.child import spawn_child_with
from host.logs import configure
from host.store import ops
from host.store.db import connect
from host.store.errors import StoreError
from host.store.log_writer import LogWriter, project_now
from host.store.writer import Op, Writer, WriterStats

_LEN = struct.Struct(">I")
IDLE = 0.05  # seconds without a request after which the child checkpoints the WAL
PROTOCOL = pickle.HIGHEST_PROTOCOL


def frame(obj: object) -> bytes:
    data = pickle.dumps(obj, PROTOCOL)
    return _LEN.pack(len(data)) + data


class FrameReader:
    """Length-prefixed frames out of a byte stream fed in arbitrary pieces."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[object]:
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            (size,) = _LEN.unpack_from(self._buf)
            if len(self._buf) < 4 + size:
                break
            out.append(pickle.loads(bytes(self._buf[4 : 4 + size])))  # noqa: S301 (our own child)
            del self._buf[: 4 + size]
        return out


def _results_frame(items: list[tuple[Op, outcome.Outcome]], stats: WriterStats) -> bytes:
    results = [
        (op.waiter, True, r.value) if isinstance(r, outcome.Value) else (op.waiter, False, r.error)
        for op, r in items
    ]
    try:
        return frame(("results", results, attrs.astuple(stats)))
    except Exception:
        # Something does not pickle (an exception from a driver, say): each such result goes
        # back as a StoreError with its text, so no caller is left waiting.
        return frame(("results", [_portable(*result) for result in results], attrs.astuple(stats)))


def _portable(seq: int, ok: bool, value: object) -> tuple[int, bool, object]:
    try:
        pickle.loads(pickle.dumps(value, PROTOCOL))  # noqa: S301
        return seq, ok, value
    except Exception:
        return seq, False, StoreError(f"unpicklable result {type(value).__name__}: {value}")


def serve(
    socks: list[socket.socket],
    reader: FrameReader,
    url: str,
    commit_delay: float,
    batch_cap: int,
    durability: str = "database",
) -> int:
    """The child's main loop, one thread: read what the host sent, run it as one group (after
    the commit delay when several operations came together, as the thread writer does), send
    the group's results in one frame; until EOF, after which what was read still commits.
    With ``durability = "log"`` the group logic is :class:`~host.store.log_writer.LogWriter`'s
    (the SQLite journal's write log); between groups it applies logged writes when due.
    ``socks[0]`` is the host's socket (``reader`` holds what was read from it already); the
    others are its workers' (``serve --workers``): one journal writer for all of them, whose
    groups mix their operations, until every one has closed its socket."""
    sock = socks[0]
    writer: Writer
    try:
        if durability == "log":
            writer = LogWriter(url, batch_cap=batch_cap, commit_delay=commit_delay)
        else:
            writer = Writer(
                lambda: connect(url, writer=True), batch_cap=batch_cap, commit_delay=commit_delay
            )
        db = writer.open_connection()
    except BaseException as exc:
        for target in socks:
            with contextlib.suppress(OSError):
                target.sendall(frame(("failed", f"{type(exc).__name__}: {exc}")))
        return 1
    for target in socks:
        with contextlib.suppress(OSError):  # a worker that is gone already
            target.sendall(frame(("ready",)))

    def notifier(conn: _Connection):
        def notify(items: list[tuple[Op, outcome.Outcome]]) -> None:
            conn.outstanding -= len(items)
            with contextlib.suppress(OSError):  # the host is gone: nobody to tell
                conn.sock.sendall(_results_frame(items, writer.stats))

        return notify

    connections = [_Connection(s, reader if s is sock else FrameReader()) for s in socks]
    for conn in connections:
        conn.notify = notifier(conn)
    inbox = _Inbox(connections)

    def say_closed(conn: _Connection) -> None:
        conn.closed = True
        with contextlib.suppress(OSError):
            conn.sock.sendall(frame(("closed", attrs.astuple(writer.stats))))
            conn.sock.shutdown(socket.SHUT_WR)

    while inbox.pending or not inbox.eof:
        for conn in inbox.finished():
            if conn.sock is not sock:  # a worker that stopped: it need not wait for the rest
                say_closed(conn)
        if not inbox.pending:
            # Nothing to do: wait for the host, doing the writer's own work when it is due
            # (applying logged writes) or when the host stays quiet a moment (a checkpoint).
            due = writer.next_deadline()
            if due is not None and due < IDLE:
                inbox.receive(timeout=max(due, 1e-4))
                if not inbox.pending and not inbox.eof:
                    writer.on_due(db)
                continue
            inbox.receive(timeout=IDLE)
            if not inbox.pending and not inbox.eof:
                writer.on_idle(db)
                if writer.next_deadline() is None and not inbox.finished():
                    inbox.receive(timeout=None)
            continue
        inbox.receive(timeout=0)
        if commit_delay and len(inbox.pending) > 1 and not inbox.eof:
            time.sleep(commit_delay)
            inbox.receive(timeout=0)
        group = inbox.pending[:batch_cap]
        del inbox.pending[:batch_cap]
        db = writer.run_group(db, group)
        writer.after_group(db)
    writer.finish(db)
    db.close()
    for conn in connections:
        if not conn.closed:
            say_closed(conn)
    return 0


class _Connection:
    __slots__ = ("closed", "eof", "notify", "outstanding", "reader", "sock")

    def __init__(self, sock: socket.socket, reader: FrameReader) -> None:
        self.sock = sock
        self.reader = reader
        self.notify = None
        self.eof = False
        self.closed = False  # "closed" sent: everything it sent is answered
        self.outstanding = 0  # operations read from it and not yet answered


class _Inbox:
    """Operations read from the host's socket (and, with workers, from each worker's), in the
    order they arrived, as writer Ops."""

    def __init__(self, connections: list[_Connection]) -> None:
        self._connections = connections
        self.pending: list[Op] = []

    @property
    def eof(self) -> bool:
        return all(c.eof for c in self._connections)

    def receive(self, *, timeout: float | None) -> None:
        """Read what is there, first waiting up to ``timeout`` seconds (None: for ever) for
        something to arrive; EOF or a broken socket (a host died) ends that one's input."""
        open_ = [c for c in self._connections if not c.eof]
        if not open_:
            return
        if timeout != 0:
            ready = select.select([c.sock for c in open_], [], [], timeout)[0]
            if not ready:
                return
            open_ = [c for c in open_ if c.sock in ready]
        for conn in open_:
            self._drain(conn)

    def _drain(self, conn: _Connection) -> None:
        while True:
            try:
                data = conn.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                conn.eof = True
                return
            for batch in conn.reader.feed(data):
                for seq, name, args, kwargs in batch:
                    if name == project_now.__name__:
                        fn = project_now
                    else:
                        fn = ops.WRITES_BY_NAME.get(name)
                    conn.outstanding += 1
                    if fn is None:
                        conn.notify([(Op(None, (), {}, conn.notify, seq), _unknown(name))])
                        continue
                    self.pending.append(Op(fn, args, kwargs, conn.notify, seq))

    def finished(self) -> list[_Connection]:
        """Connections that have closed and have all their answers, not yet told so."""
        return [c for c in self._connections if c.eof and not c.outstanding and not c.closed]


def _unknown(name: str) -> outcome.Error:
    return outcome.Error(StoreError(f"no store operation named {name!r}"))


def main(argv: list[str]) -> int:
    """The child: its arguments are the sockets' descriptors (the host's, then its workers');
    the store URL (which may hold a password) comes over the host's socket, never on a command
    line that ``ps`` shows."""
    # Ctrl-C reaches the whole process group, and a service manager may SIGTERM every process
    # of the service: the child leaves only when its host closes the socket, so the host's
    # graceful stop can still journal the requests it lets finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure("auto", "warning")  # JSON lines, or readable ones on a terminal, like the host
    socks = [socket.socket(fileno=int(fd)) for fd in argv]
    sock = socks[0]
    reader = FrameReader()
    config: list[object] = []
    while not config:
        data = sock.recv(65536)
        if not data:
            return 1
        config = reader.feed(data)
    url, commit_delay, batch_cap, durability = config[0]
    return serve(socks, reader, url, commit_delay, batch_cap, durability)


# -- the host's end ------------------------------------------------------------------------------


def cannot_abort(_raise_cancel: object) -> trio.lowlevel.Abort:
    """For ``wait_task_rescheduled``: a write once submitted is waited for to its end."""
    return trio.lowlevel.Abort.FAILED


# Started with -c rather than -m: the package imports this module before runpy would run it.
_CHILD = "import sys; from host.store.writer_process import main; sys.exit(main(sys.argv[1:]))"


class WriterProcess:
    """The host's handle on its writer child: ``await write(fn, args, kwargs)`` returns once
    the operation is committed, like the thread writer, and ``aclose()`` drains and stops.

    Its two tasks use the socket directly (non-blocking calls, Trio's wait only when the call
    would block) rather than a ``trio.SocketStream``, whose every successful call also yields
    to the scheduler: both tasks wake once per batch and have nothing to let others do first.
    """

    def __init__(self, proc: subprocess.Popen | None, sock: socket.socket) -> None:
        self._proc = proc
        self.worker_sockets: list[socket.socket] = []  # for ``serve --workers``: see start()
        self._sock = sock
        self._queue: list[tuple] = []
        self._waiting: dict[int, trio.lowlevel.Task] = {}
        self._seq = itertools.count(1)
        self._wake_sender = trio.lowlevel.ParkingLot()
        self._reader_done = trio.Event()
        self._closing = False
        self._dead: str | None = None
        self.stats = WriterStats()

    @classmethod
    async def start(
        cls,
        url: str,
        *,
        commit_delay: float,
        batch_cap: int,
        durability: str = "database",
        workers: int = 0,
    ) -> WriterProcess:
        """Start the child; with ``workers`` it also serves that many worker processes, each
        over a socket of its own (``worker_sockets``, handed to each worker's
        :meth:`attach`); it exits once the host's socket and every worker's are closed."""
        proc, ours, extra = spawn_child_with(_CHILD, workers)
        ours.setblocking(False)
        self = cls(proc, ours)
        self.worker_sockets = extra
        await self._send_all(frame((url, commit_delay, batch_cap, durability)))
        reader = FrameReader()
        hello: list[object] = []
        while not hello and (data := await self._recv()):
            hello = reader.feed(data)
        if not hello or hello[0][0] != "ready":
            self._close_socket()
            await trio.to_thread.run_sync(proc.wait)
            why = hello[0][1] if hello else f"exited with {proc.returncode}"
            raise StoreError(f"journal writer process failed to start: {why}")
        trio.lowlevel.spawn_system_task(self._sender, name="journal-writer-sender")
        trio.lowlevel.spawn_system_task(self._reader, reader, name="journal-writer-reader")
        return self

    @classmethod
    async def attach(cls, sock: socket.socket) -> WriterProcess:
        """A worker's handle on the journal writer its host started (``start(workers=...)``):
        writes and barriers as with the host's own handle; ``aclose()`` closes this socket."""
        sock.setblocking(False)
        self = cls(None, sock)
        reader = FrameReader()
        hello: list[object] = []
        while not hello and (data := await self._recv()):
            hello = reader.feed(data)
        if not hello or hello[0][0] != "ready":
            self._close_socket()
            raise StoreError("journal writer process is not there")
        trio.lowlevel.spawn_system_task(self._sender, name="journal-writer-sender")
        trio.lowlevel.spawn_system_task(self._reader, reader, name="journal-writer-reader")
        return self

    async def write(self, fn, args: tuple, kwargs: dict) -> object:
        if self._dead is not None:
            raise StoreError(self._dead)
        seq = next(self._seq)
        self._waiting[seq] = trio.lowlevel.current_task()
        self._queue.append((seq, fn.__name__, args, kwargs))
        self._wake_sender.unpark()
        # Once queued, a write runs to its end: a cancelled caller must still learn whether
        # its row is journalled (see Store._write).
        return await trio.lowlevel.wait_task_rescheduled(cannot_abort)

    async def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self._sock.send(view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)

    async def _recv(self) -> bytes:
        while True:
            try:
                return self._sock.recv(1 << 20)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)

    async def _sender(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        break
                    await self._wake_sender.park()
                    continue
                batch, self._queue = self._queue, []
                await self._send_all(frame(batch))
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fail(f"journal writer process unreachable: {exc!r}")
        except trio.Cancelled:
            raise
        except Exception as exc:  # a pickling bug must not kill the Trio run
            self._fail(f"journal writer frame failed: {exc!r}")

    async def _reader(self, reader: FrameReader) -> None:
        try:
            while data := await self._recv():
                for message in reader.feed(data):
                    if message[0] == "results":
                        _, results, stats = message
                        self.stats = WriterStats(*stats)
                        for seq, ok, value in results:
                            task = self._waiting.pop(seq, None)
                            if task is not None:
                                result = outcome.Value(value) if ok else outcome.Error(value)
                                trio.lowlevel.reschedule(task, result)
                    elif message[0] == "closed":
                        self.stats = WriterStats(*message[1])
        except OSError:
            pass  # the child went away: below, every waiting write fails
        except trio.Cancelled:
            raise
        except Exception as exc:
            self._fail(f"journal writer answer unreadable: {exc!r}")
        finally:
            self._fail("journal writer process exited")
            self._reader_done.set()

    def _fail(self, why: str) -> None:
        """Every write still waiting fails; later writes fail at once."""
        if self._dead is None:
            self._dead = why
        waiting, self._waiting = self._waiting, {}
        for task in waiting.values():
            trio.lowlevel.reschedule(task, outcome.Error(StoreError(why)))
        self._queue.clear()

    def _close_socket(self) -> None:
        if self._sock.fileno() != -1:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()

    async def aclose(self) -> None:
        """Send what is queued, let the child commit everything, wait for it to exit (a
        worker's handle: until the child has answered everything it sent)."""
        self._closing = True
        self._wake_sender.unpark()
        with trio.move_on_after(60):
            await self._reader_done.wait()
        self._close_socket()
        for sock in self.worker_sockets:
            sock.close()
        if self._proc is not None:
            await trio.to_thread.run_sync(self._proc.wait)
