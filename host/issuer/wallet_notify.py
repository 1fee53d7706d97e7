"""Where the wallet's asynchronous payment notifications arrive (``qr.notify_listen``):
``POST /wallet/notify`` with a JSON body of at most 16 KiB, served by the host's small HTTP
server (``host.http``); what a notification does is ``host.issuer.wallet_orders.on_notification``.
Anything else gets 404, a malformed request 400, a larger body 413, and a connection that
stalls is closed."""

from __future__ import annotations

from typing import Any

import trio

from host.config import parse_address
from host.http import HttpServer

PATH = "/wallet/notify"
MAX_HEAD = 8 * 1024
MAX_BODY = 16 * 1024
READ_TIMEOUT = 10.0


async def serve_notifications(host: Any, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    from host.issuer.wallet_orders import on_notification

    async def handle(
        method: str, target: str, headers: dict[str, str], peer: str | None, body: bytes
    ) -> tuple[int, str, bytes, list[tuple[str, str]]]:
        if method != "POST" or target.split("?")[0] != PATH:
            return 404, "text/plain", b"fail", []
        status, answer = await on_notification(host, body, peer)
        return status, "text/plain", answer, []

    address, port = parse_address(host.settings.qr.notify_listen)
    server = HttpServer(
        handle,
        name="wallet_notify",
        max_body=MAX_BODY,
        max_head=MAX_HEAD,
        read_timeout=READ_TIMEOUT,
        max_connections=64,
    )
    await server.serve(address, port, task_status=task_status)
