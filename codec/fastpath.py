"""Precompiled fast path for the dialect codecs: per-field encoders/decoders built from the table.

pyiso8583 is general (spec-dict lookups, a ``doc_enc`` dict per field, error bookkeeping), and
the host runs four codec operations per purchase. This module compiles each ``FieldDef`` once
into two small closures that do only what that one field needs (``bytes.hex``/``unhexlify`` for
packed BCD, ``str.encode``/``bytes.decode`` for text, precomputed length-prefix tables), and
caches per-bitmap / per-field-set "plans" (the ordered encoders/decoders), so a call is one loop
over the present fields.

It is deliberately *partial*: it handles the well-formed, canonical case and nothing else. Any
irregularity - wrong type, length out of range, non-BCD nibble, unknown bit, truncation,
trailing bytes, a non-canonical length prefix (``" 5"``, ``"+5"`` that pyiso8583's ``int()``
would take), anything - makes it give up (``None``), and ``codec.dialect.Codec`` then runs the
pyiso8583 reference path, which either accepts the input with the same result or raises today's
``CodecError``. The fast path never raises: every exception inside it means "defer".

Soundness argument for decode (why a fast success implies the reference accepts it too, with an
equal ``Message``): the fast decoder accepts exactly the inputs where every field has a canonical
length prefix within the maximum, enough data, pad nibbles the reference accepts (leading ``0``
for right-aligned odd fixed nibble fields, trailing ``0`` or ``F`` for left-aligned/variable ones
- the reference takes ``F`` through its per-field ``right_pad="F"`` retry), decimal digits in
``n`` fields (ASCII digits in the issuer dialect), ASCII in issuer ``z``, a decimal MTI, only
defined bits (no bit 1 in the terminal dialect, no bit 65 in the issuer dialect), and no
trailing bytes. Every one of those is a condition under which the
reference succeeds and computes the same value.
"""

from __future__ import annotations

import contextlib
import re
from binascii import unhexlify
from collections.abc import Callable
from operator import call, itemgetter
from typing import Any

from codec.message import FieldValue, Message

Encoder = Callable[[Any], bytes]
# a decoder reads its field at ``pos``, stores the value in ``out`` and returns the end offset
Decoder = Callable[[bytes, int, dict[int, FieldValue]], int]

# bitmap bytes, the encoders in the message's key order, the reordering to wire order (or None)
_EncodePlan = tuple[bytes, tuple[Encoder, ...], Callable[[tuple[bytes, ...]], Any] | None]

# Plans are cached per bitmap (decode) / per field-key tuple (encode). Real traffic uses a few
# dozen shapes; the bound keeps random garbage from growing the caches without limit.
_PLAN_CACHE_MAX = 4096

_Z_CHARS = re.compile(r"[0-9A-F=]*")  # same rule as the reference layer in codec.dialect


class Defer(Exception):
    """Raised inside the fast path: "not mine, let the pyiso8583 reference path decide"."""


def _defer(*_args: Any) -> Any:
    raise Defer


def _prefix_tables(
    maxlen: int, digits: int, bcd: bool
) -> tuple[tuple[bytes, ...], dict[bytes, int]]:
    """Every canonical length prefix 0..max: by length (encode) and by wire bytes (decode).

    Only lengths that fit in ``digits`` digits are listed (pyiso8583 refuses longer ones), so a
    length missing from the table - too long, non-BCD, non-digit, truncated - means "defer".
    """
    limit = min(maxlen, 10**digits - 1)
    if bcd:
        by_len = tuple(unhexlify(f"{n:0{digits}d}") for n in range(limit + 1))
    else:
        by_len = tuple(f"{n:0{digits}d}".encode("ascii") for n in range(limit + 1))
    return by_len, {p: n for n, p in enumerate(by_len)}


# ---------------------------------------------------------------- packed BCD nibble fields (n, z)


def _nibbles_fixed(
    number: int, length: int, z: bool, left_aligned: bool
) -> tuple[Encoder, Decoder]:
    """Fixed n/z in the BCD dialect; odd lengths carry one pad nibble.

    Right-aligned (the default) pads with a leading 0; left-aligned (field 22) with a trailing 0
    on encode and accepts 0 or F on decode, as the reference does.
    """
    odd = length & 1
    nbytes = (length + 1) // 2
    nhex = 2 * nbytes

    def enc(v: Any) -> bytes:
        if type(v) is not str or len(v) != length:
            raise Defer
        if z:
            if _Z_CHARS.fullmatch(v) is None:
                raise Defer
            v = v.replace("=", "D")
        elif not (v.isascii() and v.isdigit()):
            raise Defer
        if odd:
            v = v + "0" if left_aligned else "0" + v
        return unhexlify(v)

    def dec(data: bytes, pos: int, out: dict[int, FieldValue]) -> int:
        end = pos + nbytes
        h = data[pos:end].hex()
        if len(h) != nhex:
            raise Defer
        if odd:
            if left_aligned:
                if h[-1] not in "0f":
                    raise Defer
                h = h[:-1]
            else:
                if h[0] != "0":
                    raise Defer
                h = h[1:]
        if z:
            out[number] = h.upper().replace("D", "=")
            return end
        if not h.isdigit():
            raise Defer
        out[number] = h
        return end

    return enc, dec


def _nibbles_var(number: int, maxlen: int, digits: int, z: bool) -> tuple[Encoder, Decoder]:
    """LL/LLL n/z in the BCD dialect: BCD prefix counts digits, pad 0 sent, 0 or F accepted."""
    by_len, by_prefix = _prefix_tables(maxlen, digits, bcd=True)
    limit = len(by_len) - 1
    plen = digits // 2

    def enc(v: Any) -> bytes:
        if type(v) is not str:
            raise Defer
        n = len(v)
        if n > limit:
            raise Defer
        if z:
            if _Z_CHARS.fullmatch(v) is None:
                raise Defer
            v = v.replace("=", "D")
        elif n and not (v.isascii() and v.isdigit()):
            raise Defer
        if n & 1:
            v += "0"
        return by_len[n] + unhexlify(v)

    def dec(data: bytes, pos: int, out: dict[int, FieldValue]) -> int:
        n = by_prefix.get(data[pos : pos + plen])
        if n is None:
            raise Defer
        pos += plen
        end = pos + (n + 1) // 2
        h = data[pos:end].hex()
        if len(h) != 2 * (end - pos):
            raise Defer
        if n & 1:
            if h[-1] not in "0f":
                raise Defer
            h = h[:-1]
        if z:
            out[number] = h.upper().replace("D", "=")
            return end
        if n and not h.isdigit():
            raise Defer
        out[number] = h
        return end

    return enc, dec


# ------------------------------------------------------------- text fields (an, ans; ASCII n, z)


def _text_fixed(
    number: int, length: int, encoding: str, digits_only: bool, space_pad: bool
) -> tuple[Encoder, Decoder]:
    """Fixed text: an/ans (latin-1, space-padded on encode when shorter), ASCII-dialect n/z."""

    def enc(v: Any) -> bytes:
        if type(v) is not str:
            raise Defer
        if digits_only and not (v.isascii() and v.isdigit()):
            raise Defer
        if space_pad and len(v) < length:
            v = v.ljust(length)
        b: bytes = v.encode(encoding)  # a character outside the encoding raises: defer
        if len(b) != length:
            raise Defer
        return b

    def dec(data: bytes, pos: int, out: dict[int, FieldValue]) -> int:
        end = pos + length
        raw = data[pos:end]
        if len(raw) != length or (digits_only and not raw.isdigit()):
            raise Defer
        out[number] = raw.decode(encoding)  # undecodable (non-ASCII in ASCII n/z) raises: defer
        return end

    return enc, dec


def _text_var(
    number: int, maxlen: int, digits: int, bcd: bool, encoding: str, digits_only: bool
) -> tuple[Encoder, Decoder]:
    """LL/LLL text; the prefix (BCD or ASCII, per dialect) counts bytes."""
    by_len, by_prefix = _prefix_tables(maxlen, digits, bcd)
    limit = len(by_len) - 1
    plen = digits // 2 if bcd else digits

    def enc(v: Any) -> bytes:
        if type(v) is not str:
            raise Defer
        if digits_only and v and not (v.isascii() and v.isdigit()):
            raise Defer
        b = v.encode(encoding)
        if len(b) > limit:
            raise Defer
        return by_len[len(b)] + b

    def dec(data: bytes, pos: int, out: dict[int, FieldValue]) -> int:
        n = by_prefix.get(data[pos : pos + plen])
        if n is None:
            raise Defer
        pos += plen
        end = pos + n
        raw = data[pos:end]
        if len(raw) != n or (digits_only and n and not raw.isdigit()):
            raise Defer
        out[number] = raw.decode(encoding)
        return end

    return enc, dec


# -------------------------------------------------------------------------------- b fields


def _as_bytes(v: Any) -> bytes:
    if type(v) is bytes:
        return v
    if type(v) is bytearray:
        return bytes(v)
    raise Defer  # subclasses, memoryview, str...: the reference decides


def _bin_fixed(number: int, length: int) -> tuple[Encoder, Decoder]:
    def enc(v: Any) -> bytes:
        b = _as_bytes(v)
        if len(b) != length:
            raise Defer
        return b

    def dec(data: bytes, pos: int, out: dict[int, FieldValue]) -> int:
        end = pos + length
        raw = data[pos:end]
        if len(raw) != length:
            raise Defer
        out[number] = raw
        return end

    return enc, dec


def _bin_var(number: int, maxlen: int, digits: int, bcd: bool) -> tuple[Encoder, Decoder]:
    by_len, by_prefix = _prefix_tables(maxlen, digits, bcd)
    limit = len(by_len) - 1
    plen = digits // 2 if bcd else digits

    def enc(v: Any) -> bytes:
        b = _as_bytes(v)
        if len(b) > limit:
            raise Defer
        return by_len[len(b)] + b

    def dec(data: bytes, pos: int, out: dict[int, FieldValue]) -> int:
        n = by_prefix.get(data[pos : pos + plen])
        if n is None:
            raise Defer
        pos += plen
        end = pos + n
        raw = data[pos:end]
        if len(raw) != n:
            raise Defer
        out[number] = raw
        return end

    return enc, dec


def compile_field(fd: Any, bcd: bool) -> tuple[Encoder, Decoder]:
    """The (encoder, decoder) pair for one table row (a ``codec.dialect.FieldDef``).

    Mirrors ``codec.dialect._field_spec`` plus the layer's conversions, row by row. A row shape
    this compiler does not know (e.g. a zero length) gets a pair that always defers.
    """
    fmt, length, prefix = fd.format, fd.length, fd.prefix
    if length <= 0:
        return _defer, _defer
    # LL/LLL: BCD prefixes are 2/4 digits (1/2 bytes); ASCII prefixes 2/3 characters
    digits = {2: 2, 3: 4}[prefix] if (bcd and prefix) else prefix
    if bcd and fmt in ("n", "z"):
        if prefix == 0:
            return _nibbles_fixed(fd.number, length, fmt == "z", fd.align != "right")
        return _nibbles_var(fd.number, length, digits, fmt == "z")
    if fmt == "b":
        return (
            _bin_fixed(fd.number, length)
            if prefix == 0
            else _bin_var(fd.number, length, digits, bcd)
        )
    if fmt in ("n", "z"):  # ASCII dialect: ASCII text; n must be decimal, z is not checked
        encoding, digits_only = "ascii", fmt == "n"
    else:
        encoding, digits_only = "latin-1", False
    if prefix == 0:
        return _text_fixed(fd.number, length, encoding, digits_only, space_pad=fmt in ("an", "ans"))
    return _text_var(fd.number, length, digits, bcd, encoding, digits_only)


# ------------------------------------------------------------------------------- the codec


class FastPath:
    """Encode/decode for one dialect table, or ``None`` when the reference path must decide."""

    def __init__(self, table: Any) -> None:
        self.bcd = table.encoding == "bcd"
        self.secondary = bool(table.secondary_bitmap)
        self._enc: dict[int, tuple[int, Encoder]] = {}
        self._dec: dict[int, Decoder] = {}
        for fd in table.fields:
            enc, dec = compile_field(fd, self.bcd)
            self._enc[fd.number] = (fd.number, enc)
            self._dec[fd.number] = dec
        self._enc_plans: dict[tuple[Any, ...], _EncodePlan] = {}
        self._mti_out: dict[str, bytes] = {}
        self._dec_plans: dict[bytes, tuple[Decoder, ...]] = {}

    # ------------------------------------------------------------------ encode

    def encode(self, msg: Message) -> bytes | None:
        """The wire bytes, byte-identical to the reference; ``None`` to defer. Never raises."""
        try:
            return self._encode(msg)
        except Exception:
            return None

    def _encode(self, msg: Message) -> bytes:
        head = self._mti_out.get(msg.mti)
        if head is None:
            head = self._encode_mti(msg.mti)
        fields = msg.fields
        key = tuple(fields)
        plan = self._enc_plans.get(key)
        if plan is None:
            plan = self._encode_plan(key)
        bitmap, encoders, to_wire_order = plan
        # one encoder per value, in the message's own key order, without a Python-level loop
        pieces = tuple(map(call, encoders, fields.values()))
        out = [head, bitmap]
        out += to_wire_order(pieces) if to_wire_order else pieces
        return b"".join(out)

    def _encode_mti(self, mti: Any) -> bytes:
        """4 ASCII digits -> 2 BCD bytes or 4 ASCII bytes (memoised: at most 10,000 MTIs)."""
        if type(mti) is not str or len(mti) != 4 or not (mti.isascii() and mti.isdigit()):
            raise Defer
        out = unhexlify(mti) if self.bcd else mti.encode("ascii")
        self._mti_out[mti] = out
        return out

    def _encode_plan(self, key: tuple[Any, ...]) -> _EncodePlan:
        """Bitmap bytes, the encoders in the message's key order, and the reordering to wire
        (ascending field) order - ``None`` when the message's keys are already ascending."""
        entries = [self._enc[k] for k in key]  # an undefined key raises KeyError: defer
        numbers = [n for n, _ in entries]
        if len(set(numbers)) != len(numbers):  # distinct keys naming one field (exotic keys)
            raise Defer
        bits = 0
        for n in numbers:
            bits |= 1 << (128 - n)
        if bits & ((1 << 64) - 1):  # a field above 64: secondary bitmap, bit 1 set
            bits |= 1 << 127
            bitmap = bits.to_bytes(16, "big")
        else:
            bitmap = (bits >> 64).to_bytes(8, "big")
        perm = sorted(range(len(numbers)), key=numbers.__getitem__)
        in_order = perm == list(range(len(perm)))
        to_wire_order = None if in_order else itemgetter(*perm)  # >= 2 items: returns a tuple
        plan = (bitmap, tuple(e for _, e in entries), to_wire_order)
        if len(self._enc_plans) < _PLAN_CACHE_MAX:
            self._enc_plans[key] = plan
        return plan

    # ------------------------------------------------------------------ decode

    def decode(self, data: bytes) -> Message | None:
        """An equal Message to the reference's, or ``None`` to defer. Never raises."""
        try:
            return self._decode(data)
        except Exception:
            return None

    def _decode(self, data: bytes) -> Message:
        if self.bcd:
            mti = data[:2].hex()
            if len(mti) != 4 or not mti.isdigit():
                raise Defer
            start = 2
        else:
            raw = data[:4]
            if len(raw) != 4 or not raw.isdigit():
                raise Defer
            mti = raw.decode("ascii")
            start = 4
        key = data[start : start + 8]
        if key and key[0] & 0x80:
            key = data[start : start + 16]
        plan = self._dec_plans.get(key)
        if plan is None:
            plan = self._decode_plan(key)
        pos = start + len(key)
        fields: dict[int, FieldValue] = {}
        for dec in plan:
            pos = dec(data, pos, fields)
        if pos != len(data):
            raise Defer
        return Message.owning(mti, fields)

    def readable_fields(self, data: bytes) -> dict[int, FieldValue]:
        """The fields that decode cleanly from the start of a message that, as a whole, does
        not: each field is checked by its own decoder, so what is returned is well-formed. An
        answer to a format error echoes them (3, 11, 41, 42...). Never raises."""
        fields: dict[int, FieldValue] = {}
        with contextlib.suppress(Exception):  # stop at the first field that does not decode
            start = 2 if self.bcd else 4
            key = data[start : start + 8]
            if key and key[0] & 0x80:
                key = data[start : start + 16]
            nbits = 8 * len(key) if len(key) in (8, 16) else 0
            bits = int.from_bytes(key, "big")
            pos = start + len(key)
            for number in range(2, nbits + 1):
                if bits >> (nbits - number) & 1:
                    pos = self._dec[number](data, pos, fields)
        return fields

    def _decode_plan(self, key: bytes) -> tuple[Decoder, ...]:
        """The decoders for the bits of ``key`` (8 or 16 bitmap bytes), lowest field first."""
        if key and key[0] & 0x80:  # bit 1: a secondary bitmap must follow, without bit 65
            if not self.secondary or len(key) != 16 or key[8] & 0x80:
                raise Defer
        elif len(key) != 8:
            raise Defer
        nbits = 8 * len(key)
        bits = int.from_bytes(key, "big")
        numbers = [b for b in range(2, nbits + 1) if bits >> (nbits - b) & 1]
        plan = tuple(self._dec[n] for n in numbers)  # undefined bit: KeyError, defer
        if len(self._dec_plans) < _PLAN_CACHE_MAX:
            self._dec_plans[key] = plan
        return plan
