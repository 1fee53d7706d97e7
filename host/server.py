"""The terminal-facing Trio TCP server: connections, limits, framing, graceful shutdown.

One task per connection inside a nursery. A connection is closed (and logged) for a malformed
frame, an oversize length, silence longer than the idle timeout, or a frame that starts but does
not complete within the read timeout. Nothing a socket sends can raise out of the per-connection
task: the last-resort handler logs and closes that one connection, and every other terminal
keeps transacting.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable

import attrs
import structlog
import trio

from codec.errors import CodecError, FrameError
from codec.framing import Envelope, LengthPrefixedDecoder, parse_envelope, prefix_length

log = structlog.get_logger("poshost.server")


class CloseConnection(Exception):
    """Raised by a handler for a frame that cannot be answered: the connection is closed."""


# A handler turns one request envelope into the response envelope (or None: no answer).
Handler = Callable[[Envelope, "Connection"], Awaitable[Envelope | None]]


@attrs.frozen
class Limits:
    max_connections: int = 2000
    max_frame: int = 4096
    idle_timeout: float = 300.0
    read_timeout: float = 15.0
    shutdown_grace: float = 10.0


@attrs.define
class Connection:
    """Per-connection facts a flow may need (peer address, which terminal spoke on it)."""

    id: int
    peer: str
    terminal_id: str | None = None
    # The MAK (token text) this connection proved it holds: a request on it verified under that
    # MAK, or a first sign-on on it put the MAK in force. While that MAK is the terminal's
    # current one, this connection holds the session and may end it (host/session_guard.py).
    proven_mak: str | None = attrs.field(default=None, repr=False)


@attrs.define
class TerminalServer:
    handler: Handler
    limits: Limits = attrs.field(factory=Limits)
    active: int = 0
    in_flight: int = 0
    _ids: itertools.count = attrs.field(factory=itertools.count, init=False)
    _idle: trio.Event | None = attrs.field(default=None, init=False)
    _accept_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope, init=False)
    accepting: bool = True

    async def serve(self, host: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled. task_status.started() receives the bound port. After
        stop_accepting() the open connections keep being served until the caller cancels."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        log.info("listening", host=host, port=bound)
        async with trio.open_nursery() as connections:
            with self._accept_scope:
                task_status.started(bound)
                await trio.serve_listeners(self._accept, listeners, handler_nursery=connections)
            for listener in listeners:
                await listener.aclose()

    def stop_accepting(self) -> None:
        self.accepting = False
        self._accept_scope.cancel()

    async def drain(self, grace: float) -> None:
        """Wait until no request is being processed, at most `grace` seconds."""
        with trio.move_on_after(grace):
            while self.in_flight:
                self._idle = trio.Event()
                await self._idle.wait()

    async def _accept(self, stream: trio.SocketStream) -> None:
        conn_id = next(self._ids)
        try:
            peer = "{}:{}".format(*stream.socket.getpeername()[:2])
        except OSError:
            peer = "?"
        if not self.accepting or self.active >= self.limits.max_connections:
            log.warning("connection_refused", peer=peer, active=self.active, reason="limit")
            await stream.aclose()
            return
        self.active += 1
        conn = Connection(conn_id, peer)
        structlog.contextvars.bind_contextvars(conn=conn_id)
        try:
            await self._serve_connection(stream, conn)
        except Exception:  # last resort: one connection's bug never stops the server
            log.exception("connection_crashed", peer=peer)
        finally:
            self.active -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()
            structlog.contextvars.unbind_contextvars("conn")

    async def _serve_connection(self, stream: trio.SocketStream, conn: Connection) -> None:
        decoder = LengthPrefixedDecoder(self.limits.max_frame)
        log.debug("connected", peer=conn.peer)
        # One cancel scope for the connection's whole life, its deadline moved before each
        # read and lifted while a request is handled: a scope per read costs more than the
        # read itself at a few thousand requests a second.
        with trio.CancelScope() as reading:
            while True:
                timeout = self.limits.read_timeout if decoder.buffered else self.limits.idle_timeout
                reading.deadline = trio.current_time() + timeout
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
        reason = "read_timeout" if decoder.buffered else "idle_timeout"
        log.info("connection_timeout", peer=conn.peer, reason=reason)

    async def _frames(
        self, stream: trio.SocketStream, conn: Connection, decoder, data: bytes
    ) -> bool:
        """Handle every complete frame in `data`; False when the connection must close."""
        try:
            bodies = decoder.feed(data)
        except FrameError as exc:
            log.warning("bad_frame", peer=conn.peer, error=str(exc))
            return False
        for body in bodies:
            try:
                envelope = parse_envelope(body)
            except CodecError as exc:
                log.warning("bad_frame", peer=conn.peer, error=str(exc))
                return False
            self.in_flight += 1
            try:
                response = await self.handler(envelope, conn)
            except CloseConnection as exc:
                log.warning("closing_connection", peer=conn.peer, reason=str(exc))
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
        return True
