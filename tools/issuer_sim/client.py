"""A small acquirer-side client for the issuer dialect (tests, replay, manual poking).

    async with await IssuerClient.connect("127.0.0.1", port) as client:
        rsp = await client.request(Message("0800", {7: ..., 11: "000001", 70: "301"}))

``request`` sends and waits for the response with the same MTI class, 11 and 41; responses for
other requests that arrive meanwhile are kept for their own ``request`` calls, so many tasks
can share one client.
"""

from __future__ import annotations

import trio

from codec import issuer
from codec.framing import LengthPrefixedDecoder, prefix_length
from codec.message import Message


def match_key(msg: Message) -> tuple[str, str, str]:
    mti = msg.mti
    cls = mti[:2] + str(int(mti[2]) & ~1)  # 0200/0210 -> "020"
    return cls, str(msg.get(11) or ""), str(msg.get(41) or "").strip()


class IssuerClient:
    def __init__(self, stream: trio.SocketStream):
        self.stream = stream
        self._decoder = LengthPrefixedDecoder(65535)
        self._ready: dict[tuple, Message] = {}
        self._lock = trio.Lock()
        self._send_lock = trio.Lock()
        self._arrived = trio.Event()
        self.closed = False

    @classmethod
    async def connect(cls, host: str, port: int) -> IssuerClient:
        return cls(await trio.open_tcp_stream(host, port))

    async def __aenter__(self) -> IssuerClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def send(self, msg: Message) -> None:
        frame = prefix_length(issuer.encode(msg))
        async with self._send_lock:
            await self.stream.send_all(frame)

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _pump(self) -> None:
        """Read once; file decoded responses; mark the client closed at EOF or reset."""
        try:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.closed = True
            else:
                for body in self._decoder.feed(data):
                    msg = issuer.decode(body)
                    self._ready[match_key(msg)] = msg
        finally:
            event, self._arrived = self._arrived, trio.Event()
            event.set()

    async def receive(self, key: tuple[str, str, str]) -> Message | None:
        """The response for ``key``; None if the connection closes first."""
        while True:
            if key in self._ready:
                return self._ready.pop(key)
            if self.closed:
                return None
            if self._lock.locked():
                await self._arrived.wait()
            else:
                async with self._lock:
                    await self._pump()

    async def request(self, msg: Message, timeout: float = 5.0) -> Message | None:
        """Send and wait; None when the connection closed; trio.TooSlowError on timeout."""
        await self.send(msg)
        with trio.fail_after(timeout):
            return await self.receive(match_key(msg))

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        """True when the peer closes the connection within ``timeout``."""
        with trio.move_on_after(timeout):
            while not self.closed:
                if self._lock.locked():
                    await self._arrived.wait()
                else:
                    async with self._lock:
                        await self._pump()
            return True
        return False
