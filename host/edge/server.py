"""The terminal-facing Trio TCP server: connections, limits, framing, graceful shutdown.

One task per connection inside a nursery. A connection is closed for a malformed frame, an
oversize length, silence longer than the idle timeout, or a frame that starts but does not
complete within the read timeout. Nothing a socket sends can raise out of the per-connection
task: the last-resort handler closes that one connection, and every other terminal keeps
transacting.

A peer controls how often bad input arrives, so none of it costs a log line per event: refused
connections, silent connections and bad frames are security events (host/security.py), counted
and logged once per kind, address and interval. One address may hold at most
``max_per_peer`` connections, and a connection that has not had one frame answered within
``first_frame_timeout`` is closed, so a flood of idle sockets neither locks other terminals out
nor holds its slots for the whole idle timeout.
"""

from __future__ import annotations

import itertools
import math
import time
import traceback
from collections.abc import Awaitable, Callable

import attrs
import structlog
import trio

from codec.errors import CodecError, FrameError
from codec.framing import Envelope, LengthPrefixedDecoder, parse_envelope, prefix_length
from host.edge.sockets import RawStream, accept_loop, close_listening, listening_sockets
from host.security import SecurityMonitor, peer_address

log = structlog.get_logger("poshost.server")


class CloseConnection(Exception):
    """Raised by a handler for a frame that cannot be answered: the connection is closed and
    the server records one security event of ``kind`` (the raiser does not log it too), so each
    bad frame costs one count, not a log line."""

    def __init__(self, reason: str, *, kind: str = "closing_connection") -> None:
        super().__init__(reason)
        self.kind = kind


# A handler turns one request envelope into the response envelope (or None: no answer).
Handler = Callable[[Envelope, "Connection"], Awaitable[Envelope | None]]


@attrs.frozen
class Limits:
    max_connections: int = 2000
    max_per_peer: int = 200
    max_frame: int = 4096
    first_frame_timeout: float = 30.0
    idle_timeout: float = 300.0
    read_timeout: float = 15.0
    shutdown_grace: float = 10.0


@attrs.define
class Connection:
    """Per-connection facts a flow may need (peer address, which terminal spoke on it)."""

    id: int
    peer: str
    terminal_id: str | None = None
    answered: int = 0  # frames answered; until the first, first_frame_timeout applies
    # The MAK (token text) this connection proved it holds: a request on it verified under that
    # MAK, or a first sign-on on it put the MAK in force. While that MAK is the terminal's
    # current one, this connection holds the session and may end it (host/flow/session_guard.py).
    proven_mak: str | None = attrs.field(default=None, repr=False)


@attrs.define
class TracebackThrottle:
    """Lets one traceback per bug site through per interval: a bug that a peer can trigger at
    will must not fill the disk, but the first occurrence keeps its full stack."""

    interval: float = 10.0
    max_sites: int = 100
    _last: dict[str, float] = attrs.field(factory=dict)

    def allow(self, site: str) -> bool:
        now = time.monotonic()
        last = self._last.get(site)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= self.max_sites:
            self._last.clear()
        self._last[site] = now
        return True


# Frames answered from one read before the connection lets the others run (a purchase waits,
# and so lets them run, several times; a peer pipelining cheap requests would not).
FRAMES_PER_TURN = 8


def _peer_name(stream: RawStream) -> str:
    """``1.2.3.4:5678``, or ``[::1]:5678`` so that the port can be told from the address."""
    try:
        address, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def bug_site(exc: BaseException) -> str:
    """``KeyError@host/flow/steps.py:123``: the exception type and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__}@{'/'.join(last.filename.split('/')[-2:])}:{last.lineno}"


@attrs.define
class TerminalServer:
    handler: Handler
    limits: Limits = attrs.field(factory=Limits)
    # The host's monitor (journalled); a bare server gets one that only counts and logs.
    security: SecurityMonitor = attrs.field(factory=SecurityMonitor)
    active: int = 0
    in_flight: int = 0
    per_peer: dict[str, int] = attrs.field(factory=dict, init=False)  # address -> open
    _ids: itertools.count = attrs.field(factory=itertools.count, init=False)
    _idle: trio.Event | None = attrs.field(default=None, init=False)
    _accept_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope, init=False)
    _tracebacks: TracebackThrottle = attrs.field(factory=TracebackThrottle, init=False)
    accepting: bool = True

    def __attrs_post_init__(self) -> None:
        self._tracebacks.interval = self.security.interval

    async def serve(
        self,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        task_status=trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen until cancelled. task_status.started() receives the bound port. After
        stop_accepting() the open connections keep being served until the caller cancels.
        ``reuse_port``: other processes (the host's workers) listen on the same port."""
        listeners = listening_sockets(host, port, reuse_port=reuse_port)
        bound = listeners[0].getsockname()[1]
        log.info("listening", host=host, port=bound)
        try:
            async with trio.open_nursery() as connections:
                with self._accept_scope:
                    task_status.started(bound)
                    async with trio.open_nursery() as accepting:
                        for sock in listeners:
                            accepting.start_soon(accept_loop, sock, self._accept, connections)
                close_listening(listeners)
        finally:
            close_listening(listeners)

    def stop_accepting(self) -> None:
        self.accepting = False
        self._accept_scope.cancel()

    async def drain(self, grace: float) -> None:
        """Wait until no request is being processed, at most `grace` seconds."""
        with trio.move_on_after(grace):
            while self.in_flight:
                self._idle = trio.Event()
                await self._idle.wait()

    def _refusal(self, address: str) -> tuple[str, str] | None:
        """Why a new connection from ``address`` is refused (security event kind, detail), or
        None. The per-address limit comes first: one address must never fill the server."""
        if self.per_peer.get(address, 0) >= self.limits.max_per_peer:
            return "connection_limit", f"limit {self.limits.max_per_peer} per address"
        if self.active >= self.limits.max_connections:
            return "server_full", f"limit {self.limits.max_connections} connections"
        return None

    async def _accept(self, stream: RawStream) -> None:
        conn_id = next(self._ids)
        peer = _peer_name(stream)
        address = peer_address(peer) or "?"
        if not self.accepting:
            await stream.aclose()
            return
        refusal = self._refusal(address)
        if refusal is not None:
            kind, detail = refusal
            self.security.record(kind, peer=peer, detail=detail)
            await stream.aclose()  # at once: a refused peer gets no slot and no time
            return
        self.active += 1
        self.per_peer[address] = self.per_peer.get(address, 0) + 1
        conn = Connection(conn_id, peer)
        structlog.contextvars.bind_contextvars(conn=conn_id)
        try:
            await self._serve_connection(stream, conn)
        except Exception as exc:  # last resort: one connection's bug never stops the server
            self._crashed(conn, exc)
        finally:
            self.active -= 1
            self._release(address)
            with trio.CancelScope(shield=True):
                await stream.aclose()
            structlog.contextvars.unbind_contextvars("conn")

    def _release(self, address: str) -> None:
        left = self.per_peer.get(address, 1) - 1
        if left > 0:
            self.per_peer[address] = left
        else:
            self.per_peer.pop(address, None)

    def _crashed(self, conn: Connection, exc: Exception) -> None:
        """A bug, not bad input (that has its own events): counted, and its traceback logged
        once per bug site and interval."""
        site = bug_site(exc)
        self.security.record("connection_crashed", peer=conn.peer, detail=site)
        if self._tracebacks.allow(site):
            log.error("connection_crashed", peer=conn.peer, site=site, exc_info=exc)

    def _read_deadline(self, conn: Connection, decoder, first_frame_by: float) -> float:
        """Until a frame was answered, one fixed deadline for the whole first frame: a peer
        that trickles bytes cannot stretch it. Afterwards the read and idle timeouts."""
        if not conn.answered:
            return first_frame_by
        timeout = self.limits.read_timeout if decoder.buffered else self.limits.idle_timeout
        return trio.current_time() + timeout

    async def _serve_connection(self, stream: RawStream, conn: Connection) -> None:
        decoder = LengthPrefixedDecoder(self.limits.max_frame)
        log.debug("connected", peer=conn.peer)
        first_wait = min(self.limits.first_frame_timeout, self.limits.idle_timeout)
        first_frame_by = trio.current_time() + first_wait
        # One cancel scope for the connection's whole life, its deadline moved before each
        # read and lifted while a request is handled: a scope per read costs more than the
        # read itself at a few thousand requests a second.
        with trio.CancelScope() as reading:
            while True:
                reading.deadline = self._read_deadline(conn, decoder, first_frame_by)
                try:
                    data = await stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    return
                reading.deadline = math.inf
                if not data:
                    log.debug("closed_by_peer", peer=conn.peer)
                    return
                if not await self._frames(stream, conn, decoder, data):
                    return
        if not conn.answered:
            what = "an incomplete frame" if decoder.buffered else "nothing"
            detail = f"sent {what} within {first_wait:g} s"
            self.security.record("silent_connection", peer=conn.peer, detail=detail)
            return
        reason = "read_timeout" if decoder.buffered else "idle_timeout"
        log.info("connection_timeout", peer=conn.peer, reason=reason)

    async def _frames(self, stream: RawStream, conn: Connection, decoder, data: bytes) -> bool:
        """Handle every complete frame in `data`; False when the connection must close."""
        try:
            bodies = decoder.feed(data)
        except FrameError as exc:
            self.security.record("bad_frame", peer=conn.peer, detail=str(exc))
            return False
        for n, body in enumerate(bodies):
            if n and not n % FRAMES_PER_TURN:
                await trio.lowlevel.cancel_shielded_checkpoint()
            try:
                envelope = parse_envelope(body)
            except CodecError as exc:
                self.security.record("bad_frame", peer=conn.peer, detail=str(exc))
                return False
            self.in_flight += 1
            try:
                response = await self.handler(envelope, conn)
            except CloseConnection as exc:
                self.security.record(exc.kind, peer=conn.peer, detail=str(exc))
                return False
            finally:
                self.in_flight -= 1
                if not self.in_flight and self._idle is not None:
                    self._idle.set()
            if response is None:
                continue
            try:
                await stream.send_all(prefix_length(response.to_body()))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.info("send_failed", peer=conn.peer, error=str(exc))
                return False
            conn.answered += 1
        return True
