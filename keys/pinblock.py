"""ISO 9564-1 PIN blocks: formats 0, 1, 2, 3 (8 bytes, TDES) and 4 (16 bytes, AES).

Format 2 (control 2, PIN length, PIN, fill F; no PAN) exists only between a terminal and an
ICC for offline PIN (ISO 9564-1, EMV Book 3 "VERIFY"): it is encoded and decoded here but is
not one of the interchange :data:`FORMATS` an HSM translates.

Every failure raises :class:`PinError` whose message never contains the PIN, the PAN or the
block, because decoders see attacker-chosen bytes and their errors get logged.
"""

from __future__ import annotations

import secrets

from Crypto.Cipher import AES

from keys.des import Cipher
from keys.errors import PinError

FORMATS = (0, 1, 3, 4)  # interchange formats (what an HSM translates)
ICC_FORMAT = 2  # offline PIN to the chip card only
PAN_BOUND = frozenset({0, 3, 4})


def check_pin(pin: str) -> None:
    """A PIN is 4 to 12 decimal digits (ISO 9564-1)."""
    if (
        not isinstance(pin, str)
        or not (4 <= len(pin) <= 12)
        or not pin.isdigit()
        or not pin.isascii()
    ):
        raise PinError("a PIN must be 4 to 12 decimal digits")


def check_pan(pan: str) -> None:
    """A PAN is 8 to 19 decimal digits (ISO/IEC 7812)."""
    if (
        not isinstance(pan, str)
        or not (8 <= len(pan) <= 19)
        or not pan.isdigit()
        or not pan.isascii()
    ):
        raise PinError("a PAN must be 8 to 19 decimal digits")


def _pan_field_0(pan: str) -> bytes:
    """Formats 0 and 3: 0000 + the 12 rightmost PAN digits excluding the check digit."""
    check_pan(pan)
    return bytes.fromhex("0000" + pan[:-1][-12:].rjust(12, "0"))


def _random_nibbles(n: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _xor8(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def encode(fmt: int, pin: str, pan: str | None = None, *, key: bytes | None = None) -> bytes:
    """The clear PIN block (formats 0, 1, 3) or the AES-enciphered block (format 4, needs key).

    Format 4 is defined as an enciphered block: its PAN field is chained between two AES
    encryptions, so it cannot exist as a clear XOR like the others.
    """
    check_pin(pin)
    if fmt == 0:
        field = ("0" + format(len(pin), "X") + pin).ljust(16, "F")
        return _xor8(bytes.fromhex(field), _pan_field_0(pan or ""))
    if fmt == 1:
        field = "1" + format(len(pin), "X") + pin
        return bytes.fromhex(field + _random_nibbles(16 - len(field), "0123456789ABCDEF"))
    if fmt == ICC_FORMAT:
        return bytes.fromhex(("2" + format(len(pin), "X") + pin).ljust(16, "F"))
    if fmt == 3:
        field = "3" + format(len(pin), "X") + pin
        field += _random_nibbles(16 - len(field), "ABCDEF")
        return _xor8(bytes.fromhex(field), _pan_field_0(pan or ""))
    if fmt == 4:
        if key is None:
            raise PinError("format 4 PIN blocks are enciphered: give the AES key")
        return encipher_format4(key, pin, pan or "")
    raise PinError(f"unsupported PIN block format {fmt!r}")


def decode(fmt: int, block: bytes, pan: str | None = None, *, key: bytes | None = None) -> str:
    """The PIN from a clear block (formats 0, 1, 3) or from an enciphered format 4 block."""
    if not isinstance(block, bytes | bytearray):
        raise PinError("a PIN block must be bytes")
    if fmt == 4:
        if key is None:
            raise PinError("format 4 PIN blocks are enciphered: give the AES key")
        return decipher_format4(key, bytes(block), pan or "")
    if fmt not in (0, 1, 2, 3):
        raise PinError(f"unsupported PIN block format {fmt!r}")
    if len(block) != 8:
        raise PinError("a format 0/1/2/3 PIN block is 8 bytes")
    if fmt in (0, 3):
        block = _xor8(bytes(block), _pan_field_0(pan or ""))
    nibbles = bytes(block).hex().upper()
    if nibbles[0] != str(fmt):
        raise PinError(f"the PIN block does not decode as format {fmt}")
    n = int(nibbles[1], 16)
    if not 4 <= n <= 12:
        raise PinError("the PIN block gives a PIN length outside 4-12")
    pin, fill = nibbles[2 : 2 + n], nibbles[2 + n :]
    if not pin.isdigit():
        raise PinError("the PIN block holds a non-decimal PIN digit")
    if fmt in (0, ICC_FORMAT) and fill != "F" * len(fill):
        raise PinError(f"the format {fmt} PIN block has a fill other than F")
    if fmt == 3 and any(c not in "ABCDEF" for c in fill):
        raise PinError("the format 3 PIN block has a fill outside A-F")
    return pin


# --- format 4 (ISO 9564-1:2017, 9.4) -------------------------------------------------------


def pin_field_4(pin: str, rand: bytes | None = None) -> bytes:
    """Plain-text PIN field: 4, N, PIN, fill A to 16 nibbles, then 8 random bytes.

    ``rand`` fixes the random half, for reproducing published examples only.
    """
    check_pin(pin)
    field = ("4" + format(len(pin), "X") + pin).ljust(16, "A")
    if rand is None:
        rand = secrets.token_bytes(8)
    elif len(rand) != 8:
        raise PinError("the format 4 random fill is 8 bytes")
    return bytes.fromhex(field) + rand


def pan_field_4(pan: str) -> bytes:
    """Plain-text PAN field: M (PAN length - 12), the PAN (left-padded to 12), 0 fill."""
    check_pan(pan)
    m = max(len(pan) - 12, 0)
    return bytes.fromhex((str(m) + pan.rjust(12, "0")).ljust(32, "0"))


def parse_pin_field_4(field: bytes) -> str:
    """The PIN from a deciphered format 4 PIN field."""
    nibbles = field.hex().upper()
    if nibbles[0] != "4":
        raise PinError("the PIN block does not decode as format 4")
    n = int(nibbles[1], 16)
    if not 4 <= n <= 12:
        raise PinError("the PIN block gives a PIN length outside 4-12")
    pin, fill = nibbles[2 : 2 + n], nibbles[2 + n : 16]
    if not pin.isdigit():
        raise PinError("the PIN block holds a non-decimal PIN digit")
    if fill != "A" * len(fill):
        raise PinError("the format 4 PIN block has a fill other than A")
    return pin


def _aes(key: bytes) -> Cipher:
    if len(key) not in (16, 24, 32):
        raise PinError("format 4 needs an AES key of 16, 24 or 32 bytes")
    return AES.new(key, AES.MODE_ECB)


def encipher_format4(
    key: bytes, pin: str, pan: str, *, ecb: Cipher | None = None, rand: bytes | None = None
) -> bytes:
    """C = E(K, E(K, PIN field) XOR PAN field). ``ecb`` lets an HSM pass a cached cipher."""
    ecb = ecb or _aes(key)
    inter = ecb.encrypt(pin_field_4(pin, rand))
    return ecb.encrypt(_xor8(inter, pan_field_4(pan)))


def decipher_format4(key: bytes, block: bytes, pan: str, *, ecb: Cipher | None = None) -> str:
    """Inverse of :func:`encipher_format4`; any malformed input gives a :class:`PinError`."""
    if len(block) != 16:
        raise PinError("a format 4 PIN block is 16 bytes")
    ecb = ecb or _aes(key)
    inter = _xor8(ecb.decrypt(block), pan_field_4(pan))
    return parse_pin_field_4(ecb.decrypt(inter))
