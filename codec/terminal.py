"""Terminal dialect (UnionPay-style POS): packed BCD, BCD length prefixes, primary bitmap only.

The table is ``specs/terminal_fields.toml``; how pyiso8583 is made to speak it is described in
``codec.dialect``. ``decode``/``encode`` see the payload from the MTI on (framing and the
TPDU/header live in ``codec.framing``).
"""

from __future__ import annotations

from collections.abc import Callable

from codec.dialect import Codec, load_table
from codec.errors import CodecError
from codec.message import FieldValue, Message

TABLE = load_table("terminal_fields.toml")
CODEC = Codec(TABLE)
SPEC = CODEC.spec  # the plain pyiso8583 spec, e.g. for benchmarks and tools

_MAC_PLACEHOLDER = "00000000"
_HEX = frozenset("0123456789ABCDEF")


def decode(payload: bytes) -> Message:
    """Payload (MTI onwards) -> Message; CodecError on anything malformed."""
    return CODEC.decode(payload)


def readable_fields(payload: bytes) -> dict[int, FieldValue]:
    """What can be read of a malformed message, field by field from the start (never raises):
    the fields a format-error answer echoes."""
    return CODEC.fast.readable_fields(payload)


def encode(msg: Message) -> bytes:
    """Message -> payload (MTI onwards); CodecError on anything not encodable."""
    return CODEC.encode(msg)


def encode_with_mac(msg: Message, mac: Callable[[bytes], str]) -> bytes:
    """Encode with bit 64 set and field 64 = ``mac(bytes from MTI up to field 64)``.

    Field 64 is the last field of the primary bitmap, so the MAC input is everything before
    the last 8 bytes of a message encoded with a placeholder: one encode, no second pass.
    """
    head = mac_head(msg)
    return with_mac(head, mac(head))


def mac_head(msg: Message) -> bytes:
    """The message encoded with bit 64 set, up to (not including) field 64: the MAC input, for
    a caller that computes the MAC asynchronously and then calls :func:`with_mac`."""
    return CODEC.encode(msg.with_fields({64: _MAC_PLACEHOLDER}))[:-8]


def with_mac(head: bytes, value: str | bytes) -> bytes:
    """``head`` (from :func:`mac_head`) completed with the 8 hex characters of the MAC."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    if len(value) != 8 or not _HEX.issuperset(value.upper()):
        raise CodecError("MAC must be 8 hex characters", field=64)
    return head + value.encode("ascii")


def mac_data(payload: bytes) -> bytes:
    """The bytes a terminal MAC covers: MTI up to, not including, field 64.

    Without bit 64 in the bitmap this is the whole payload.
    """
    if len(payload) < 10:
        raise CodecError("payload shorter than MTI + bitmap", field="bitmap", offset=len(payload))
    if payload[9] & 0x01:
        if len(payload) < 18:
            raise CodecError("payload too short to hold field 64", field=64, offset=len(payload))
        return bytes(payload[:-8])
    return bytes(payload)
