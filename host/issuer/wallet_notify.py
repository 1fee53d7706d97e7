"""Where the wallet's asynchronous payment notifications arrive (``qr.notify_listen``): a small
HTTP/1.1 endpoint (h11 under Trio) taking ``POST /wallet/notify`` with a JSON body of at most
16 KiB; what a notification does is ``host.issuer.wallet_orders.on_notification``. Anything
else gets 404, a malformed request 400, and a connection that stalls is closed."""

from __future__ import annotations

import h11
import structlog
import trio

from host.config import parse_address

log = structlog.get_logger("poshost.wallet")

PATH = "/wallet/notify"
MAX_HEAD = 8 * 1024
MAX_BODY = 16 * 1024
READ_TIMEOUT = 10.0


async def serve_notifications(host, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    address, port = parse_address(host.settings.qr.notify_listen)
    listeners = await trio.open_tcp_listeners(port, host=address)
    bound = listeners[0].socket.getsockname()[1]
    log.info("wallet_notify_listening", host=address, port=bound)
    task_status.started(bound)
    limiter = trio.CapacityLimiter(64)

    async def connection(stream: trio.SocketStream) -> None:
        async with limiter:
            try:
                await _serve(host, stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                pass
            except Exception:
                log.exception("wallet_notify_failed")
            finally:
                with trio.CancelScope(shield=True):
                    await stream.aclose()

    await trio.serve_listeners(connection, listeners)


async def _serve(host, stream: trio.SocketStream) -> None:
    from host.issuer.wallet_orders import on_notification

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    peer = _peer(stream)
    while True:
        try:
            event = await _next(conn, stream)
            if event is None or isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                continue
            body = b""
            while True:
                ev = await _next(conn, stream)
                if isinstance(ev, h11.Data):
                    body += ev.data
                    if len(body) > MAX_BODY:
                        await _send(conn, stream, 413, b"fail")
                        return
                elif ev is None or isinstance(ev, h11.EndOfMessage):
                    break
        except h11.RemoteProtocolError:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(conn, stream, 400, b"fail")
            return
        if event.method != b"POST" or event.target.split(b"?")[0] != PATH.encode():
            status, answer = 404, b"fail"
        else:
            status, answer = await on_notification(host, body, peer)
        await _send(conn, stream, status, answer)
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


async def _next(conn: h11.Connection, stream: trio.SocketStream):
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            with trio.fail_after(READ_TIMEOUT):
                conn.receive_data(await stream.receive_some(65536))
            continue
        return None if event is h11.PAUSED else event


async def _send(conn: h11.Connection, stream: trio.SocketStream, status: int, body: bytes) -> None:
    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    data = conn.send(h11.Response(status_code=status, headers=headers))
    data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
    await stream.send_all(data)


def _peer(stream: trio.SocketStream) -> str | None:
    try:
        host, port, *_ = stream.socket.getpeername()
    except (OSError, ValueError):
        return None
    return f"{host}:{port}"
