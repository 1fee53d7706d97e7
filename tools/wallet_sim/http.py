"""A small HTTP/1.1 server for wallet-sim's gateway and control endpoint: h11 parses and
frames, trio moves the bytes. Keep-alive, a read timeout, a cap on head and body sizes. A
handler is ``async (method, path, headers, body) -> (status, content type, body)``, or None to
close the connection without answering (an injected drop)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import h11
import structlog
import trio

log = structlog.get_logger("wallet_sim.http")

Handler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, str, bytes] | None]]
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024


async def serve_http(handler: Handler, host: str, port: int, *, read_timeout: float = 15.0,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:  # fmt: skip
    listeners = await trio.open_tcp_listeners(port, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])

    async def connection(stream: trio.SocketStream) -> None:
        try:
            await _serve(handler, stream, read_timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass
        except Exception:
            log.exception("http connection failed")
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    await trio.serve_listeners(connection, listeners)


async def _serve(handler: Handler, stream: trio.SocketStream, read_timeout: float) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    while True:
        try:
            event = await _next(conn, stream, read_timeout)
            if isinstance(event, h11.ConnectionClosed) or event is None:
                return
            if not isinstance(event, h11.Request):
                continue
            body = b""
            while True:
                ev = await _next(conn, stream, read_timeout)
                if isinstance(ev, h11.Data):
                    body += ev.data
                    if len(body) > MAX_BODY:
                        await _send(conn, stream, 413, "application/json", b'{"error":"too big"}')
                        return
                elif isinstance(ev, h11.EndOfMessage) or ev is None:
                    break
        except h11.RemoteProtocolError:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(conn, stream, 400, "application/json", b'{"error":"bad request"}')
            return
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        answer = await handler(event.method.decode(), event.target.decode(), headers, body)
        if answer is None:
            return  # dropped on purpose: close without a word
        await _send(conn, stream, *answer)
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


async def _next(conn: h11.Connection, stream: trio.SocketStream, timeout: float):
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            with trio.fail_after(timeout):
                data = await stream.receive_some(65536)
            conn.receive_data(data)
            continue
        if event is h11.PAUSED:
            return None
        return event


async def _send(conn, stream, status: int, ctype: str, body: bytes) -> None:
    headers = [("content-type", ctype), ("content-length", str(len(body)))]
    data = conn.send(h11.Response(status_code=status, headers=headers))
    data += conn.send(h11.Data(data=body)) if body else b""
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
