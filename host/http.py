"""The host's small HTTP/1.1 server: h11 (sans-IO) parses and frames, trio moves the bytes.

Used by the back-office API (read-only: no request body at all) and by the endpoint where a
wallet posts its payment notifications (a small JSON body). One task per connection,
keep-alive, a read timeout, caps on the request head, the body and the connections. A handler
is ``async (method, target, headers, peer, body) -> (status, content_type, body,
extra_headers)``; the peer is ``host:port`` of the client, for throttles and security events.
A handler that raises answers 500 and the server goes on; one that returns None has the
connection closed without an answer (a simulator's injected lost answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import h11
import structlog
import trio

log = structlog.get_logger("poshost.http")

Answer = tuple[int, str, bytes, list[tuple[str, str]]]
Handler = Callable[[str, str, dict[str, str], str | None, bytes], Awaitable[Answer | None]]
MAX_HEAD = 16 * 1024


class HttpServer:
    def __init__(
        self,
        handler: Handler,
        *,
        name: str = "backoffice",
        max_body: int = 0,
        max_head: int = MAX_HEAD,
        read_timeout: float = 15.0,
        max_connections: int = 256,
    ):
        self.handler = handler
        self.name = name  # the log events' prefix
        self.max_body = max_body  # 0: a request with a body is refused
        self.max_head = max_head
        self.read_timeout = read_timeout
        self.limiter = trio.CapacityLimiter(max_connections)

    async def serve(self, host: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        log.info(f"{self.name}_listening", host=host, port=bound)
        task_status.started(bound)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        async with self.limiter:
            try:
                await self._serve_connection(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                pass
            finally:
                await stream.aclose()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_head)
        peer = _peer(stream)
        while True:
            try:
                event = await self._next_event(conn, stream)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(
                        conn, stream, exc.error_status_hint, b'{"error":"bad request"}'
                    )
                return
            if isinstance(event, h11.ConnectionClosed) or event is None:
                return
            if not isinstance(event, h11.Request):
                continue
            method = event.method.decode("ascii", "replace")
            target = event.target.decode("ascii", "replace")
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            if (
                int(headers.get("content-length", "0") or 0) > self.max_body
                or "transfer-encoding" in headers
            ):
                await self._send(conn, stream, 413, b'{"error":"request body too large"}')
                return
            request_body = b""
            while True:  # read to EndOfMessage (the length was checked above)
                ev = await self._next_event(conn, stream)
                if isinstance(ev, h11.Data):
                    request_body += ev.data
                elif isinstance(ev, h11.EndOfMessage) or ev is None:
                    break
            try:
                answer = await self.handler(method, target, headers, peer, request_body)
            except Exception as exc:  # a handler bug answers 500, never kills the server
                log.exception(f"{self.name}_handler_failed", error=type(exc).__name__)
                answer = 500, "application/json", b'{"error":"internal"}', []
            if answer is None:
                return  # closed without a word, on the handler's request
            status, ctype, body, extra = answer
            body_out = b"" if method == "HEAD" else body
            await self._send(conn, stream, status, body_out, ctype, extra, length=len(body))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _next_event(self, conn: h11.Connection, stream: trio.SocketStream):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                with trio.fail_after(self.read_timeout):
                    data = await stream.receive_some(65536)
                conn.receive_data(data)
                continue
            if event is h11.PAUSED:
                return None
            return event

    async def _send(self, conn, stream, status, body, ctype="application/json", extra=(),
                    length=None) -> None:  # fmt: skip
        headers = [
            ("content-type", ctype),
            ("content-length", str(len(body) if length is None else length)),
            ("cache-control", "no-store"),
            ("x-content-type-options", "nosniff"),
            *extra,
        ]
        await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
        if body:
            await stream.send_all(conn.send(h11.Data(data=body)))
        await stream.send_all(conn.send(h11.EndOfMessage()))


def _peer(stream: trio.SocketStream) -> str | None:
    try:
        host, port, *_ = stream.socket.getpeername()
    except (OSError, ValueError):
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
