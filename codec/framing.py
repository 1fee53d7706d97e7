"""Sans-IO framing: 2-byte big-endian length prefix, then (terminal dialect) TPDU + header.

Kept free of sockets, like h11: the server feeds whatever ``recv`` returned and gets complete
frames back, so partial reads and several frames in one read are handled in one tested place
(the classic failure of hosts that do one ``recv(4096)`` per message).
"""

from __future__ import annotations

import attrs

from codec.errors import FrameError

TPDU_LEN = 5
HEADER_LEN = 6
TPDU_ID = 0x60
_PREFIX = 2
_MAX_PREFIXED = 0xFFFF


def prefix_length(body: bytes) -> bytes:
    """2-byte big-endian length + body."""
    n = len(body)
    if n > _MAX_PREFIXED:
        raise FrameError(f"body of {n} bytes does not fit a 2-byte length", field="frame")
    return n.to_bytes(2, "big") + body


class LengthPrefixedDecoder:
    """Incremental decoder: ``feed`` bytes, get complete bodies (prefix stripped).

    A frame longer than ``max_length`` or of zero length raises ``FrameError`` as soon as its
    prefix arrives, so a hostile peer cannot make the host buffer 64 KiB per connection. After
    an error the stream is out of step; the decoder stays poisoned and the caller must close.
    """

    def __init__(self, max_length: int = 4096) -> None:
        if not 0 < max_length <= _MAX_PREFIXED:
            raise ValueError("max_length must be 1..65535")
        self.max_length = max_length
        self._buf = bytearray()
        self._consumed = 0  # stream offset of _buf[0], for error reports
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _PREFIX:
            n = (buf[pos] << 8) | buf[pos + 1]
            if n == 0 or n > self.max_length:
                reason = (
                    "zero-length frame"
                    if n == 0
                    else f"frame of {n} bytes exceeds {self.max_length}"
                )
                self._error = FrameError(reason, field="frame", offset=self._consumed + pos)
                del buf[:pos]
                self._consumed += pos
                raise self._error
            end = pos + _PREFIX + n
            if end > len(buf):
                break
            frames.append(bytes(buf[pos + _PREFIX : end]))
            pos = end
        if pos:
            del buf[:pos]
            self._consumed += pos
        return frames


@attrs.frozen
class Envelope:
    """A terminal-dialect frame body split into TPDU, header and the ISO 8583 payload."""

    tpdu: bytes
    header: bytes
    payload: bytes

    def to_body(self) -> bytes:
        return self.tpdu + self.header + self.payload

    def to_frame(self) -> bytes:
        return prefix_length(self.to_body())

    @property
    def processing(self) -> int:
        """The header's processing-requirement nibble (what the host asks the terminal to do)."""
        return self.header[2] & 0x0F

    def response(self, processing: int | None = None, payload: bytes = b"") -> Envelope:
        """TPDU with destination and source swapped; the request header echoed.

        ``processing`` (0..15) sets the header's processing-requirement nibble, e.g. 3 to make
        the terminal sign on again, 1 to make it download parameters.
        """
        tpdu = self.tpdu[:1] + self.tpdu[3:5] + self.tpdu[1:3]
        header = self.header
        if processing is not None:
            if not 0 <= processing <= 0x0F:
                raise FrameError(f"processing nibble {processing} out of range", field="header")
            header = header[:2] + bytes([(header[2] & 0xF0) | processing]) + header[3:]
        return Envelope(tpdu, header, payload)


def parse_envelope(body: bytes) -> Envelope:
    """Split a frame body; refuses a body too short to hold an MTI or a TPDU not starting 0x60."""
    body = bytes(body)
    if len(body) < TPDU_LEN + HEADER_LEN + 2:
        raise FrameError(
            f"body of {len(body)} bytes is shorter than TPDU + header + MTI",
            field="frame",
            offset=len(body),
        )
    if body[0] != TPDU_ID:
        raise FrameError(f"TPDU id {body[0]:02X}, expected 60", field="tpdu", offset=0)
    return Envelope(
        body[:TPDU_LEN], body[TPDU_LEN : TPDU_LEN + HEADER_LEN], body[TPDU_LEN + HEADER_LEN :]
    )


def build_envelope(
    payload: bytes,
    *,
    tpdu: bytes = bytes.fromhex("6000030000"),
    header: bytes = bytes.fromhex("603100000000"),
) -> Envelope:
    """An envelope for a terminal-originated message (defaults: the usual terminal TPDU)."""
    if len(tpdu) != TPDU_LEN or tpdu[0] != TPDU_ID:
        raise FrameError("TPDU must be 5 bytes starting 60", field="tpdu")
    if len(header) != HEADER_LEN:
        raise FrameError("header must be 6 bytes", field="header")
    return Envelope(bytes(tpdu), bytes(header), bytes(payload))
