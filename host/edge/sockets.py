"""Plain non-blocking sockets under Trio, for the terminal server's hot path.

A ``trio.SocketStream`` call goes through a conflict detector, an async context manager and a
scheduling point even when the socket is ready: ~15 CPU-us per send on the benchmark machine,
where the send itself costs ~2. A terminal connection sends one answer per request and reads
one frame (or several) per wake-up, so :class:`RawStream` calls the socket directly and only
asks Trio to wait when the call would block. It yields to the scheduler only when it waits (a
purchase waits several times anyway: the journal, the issuer); the server adds a scheduling
point of its own after a run of frames answered without one, so a peer that pipelines cheap
requests cannot keep the others waiting.

:func:`listening_sockets` opens the listening sockets itself rather than through
``trio.open_tcp_listeners``, so that several worker processes can listen on one port
(``SO_REUSEPORT``: the kernel spreads new connections over them).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable

import structlog
import trio

log = structlog.get_logger("poshost.server")

# accept() errors that mean "out of a resource for now": wait and try again (as Trio does)
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


class RawStream:
    """The three calls the server makes on a connection, on a plain socket."""

    __slots__ = ("socket",)

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.socket = sock

    async def receive_some(self, max_bytes: int) -> bytes:
        """What is there to read, waiting for it only when there is nothing (b"" at EOF)."""
        sock = self.socket
        while True:
            try:
                return sock.recv(max_bytes)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)

    async def send_all(self, data: bytes) -> None:
        """Send everything, waiting only while the socket's buffer is full."""
        sock = self.socket
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)

    async def aclose(self) -> None:
        if self.socket.fileno() != -1:
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()
        await trio.lowlevel.checkpoint()


def listening_sockets(
    host: str | None, port: int, *, reuse_port: bool = False, backlog: int = 4096
) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host`` (one per address family), like
    ``trio.open_tcp_listeners``; with ``reuse_port`` other processes may listen on the same
    port (each gets a share of the connections)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _name, address in infos:
            if family in seen:
                continue
            seen.add(family)
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # every family on the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def accept_loop(
    sock: socket.socket,
    handler: Callable[[RawStream], Awaitable[None]],
    nursery: trio.Nursery,
) -> None:
    """Accept connections on ``sock`` for ever, each handled in a task of ``nursery``."""
    while True:
        try:
            conn, _address = sock.accept()
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        except OSError as exc:
            if exc.errno not in _RESOURCE_ERRORS:
                raise
            log.error("accept_failed", error=str(exc), retry_in=0.1)
            await trio.sleep(0.1)
            continue
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nursery.start_soon(handler, RawStream(conn))
        await trio.lowlevel.checkpoint()  # a flood of connections cannot starve the others


def close_listening(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        if sock.fileno() != -1:
            trio.lowlevel.notify_closing(sock)
            sock.close()
