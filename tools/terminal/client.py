"""A terminal's TCP connection: length-prefixed frames, one request at a time."""

from __future__ import annotations

import trio

from codec.framing import LengthPrefixedDecoder, parse_envelope
from codec.message import Message
from tools.terminal.device import Device

CONNECT_TIMEOUT = 5.0  # seconds to open the TCP connection


class TerminalClient:
    def __init__(self, stream: trio.SocketStream, device: Device, timeout: float = 30.0):
        self.stream = stream
        self.device = device
        self.timeout = timeout
        self._decoder = LengthPrefixedDecoder(65535)
        self._pending: list[bytes] = []

    @classmethod
    async def connect(cls, host: str, port: int, device: Device, timeout: float = 30.0):
        # A host that is down answers at once (refused) or never (filtered): bound the wait.
        with trio.fail_after(min(timeout, CONNECT_TIMEOUT)):
            stream = await trio.open_tcp_stream(host, port)
        return cls(stream, device, timeout)

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def send_raw(self, frame: bytes) -> None:
        await self.stream.send_all(frame)

    async def receive_body(self) -> bytes | None:
        """The next frame body, or None when the host closed the connection."""
        with trio.fail_after(self.timeout):
            while not self._pending:
                data = await self.stream.receive_some(65536)
                if not data:
                    return None
                self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)

    async def exchange(self, request: Message) -> tuple[Message, int]:
        """Send one request; return the checked response and the header's processing nibble."""
        payload = self.device.encode(request)
        await self.send_raw(self.device.envelope(payload).to_frame())
        body = await self.receive_body()
        if body is None:
            raise ConnectionError("host closed the connection")
        env = parse_envelope(body)
        return self.device.check_response(request, env.payload), env.processing

    async def sign_on(self, operator: str = "01 ") -> Message:
        resp, _ = await self.exchange(self.device.sign_on_request(operator))
        self.device.accept_sign_on(resp)
        return resp
