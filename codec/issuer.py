"""Issuer dialect: ISO 8583:1987, ASCII MTI/numerics, binary primary + secondary bitmaps.

The table is ``specs/issuer_fields.toml`` (docs/issuer-contract.md). The 2-byte length prefix
is framing (``codec.framing``); ``decode``/``encode`` see the message from the MTI on.
"""

from __future__ import annotations

from codec.dialect import Codec, load_table
from codec.message import Message

TABLE = load_table("issuer_fields.toml")
CODEC = Codec(TABLE)
SPEC = CODEC.spec  # the plain pyiso8583 spec, e.g. for benchmarks and tools

# network management codes (field 70)
SIGN_ON, SIGN_OFF, ECHO, KEY_EXCHANGE = "001", "002", "301", "101"


def decode(body: bytes) -> Message:
    """The message after the length prefix -> Message; CodecError on anything malformed."""
    return CODEC.decode(body)


def encode(msg: Message) -> bytes:
    """Message -> bytes without the length prefix; CodecError on anything not encodable."""
    return CODEC.encode(msg)


def original_data(mti: str, stan: str, transmission: str, acquirer: str) -> str:
    """Field 90: orig MTI n4, STAN n6, 7 n10, 32 n11 (0-padded), 11 zeros."""
    parts = (mti, stan, transmission, acquirer.rjust(11, "0"))
    if [len(p) for p in parts] != [4, 6, 10, 11] or not all(p.isdecimal() for p in parts):
        raise ValueError("field 90 parts must be n4, n6, n10, n..11")
    return "".join(parts) + "0" * 11


def parse_original_data(value: str) -> tuple[str, str, str, str]:
    """(orig MTI, orig STAN, orig 7, orig 32 as sent, 0-padded) from field 90."""
    return value[0:4], value[4:10], value[10:20], value[20:31]
