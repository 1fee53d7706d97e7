"""Dialect tables (``specs/``) as pyiso8583 specs, the thin layer around them, and a fast path.

Two paths, one behaviour:

* **fast path** (``codec.fastpath``, ``Codec.fast``): compiled once, at import, from the same
  field tables - one small encoder/decoder closure per field (packed BCD via ``bytes.hex`` /
  ``unhexlify``, text via ``encode``/``decode``, precomputed length-prefix tables) and cached
  per-bitmap / per-field-set plans. ``Codec.encode``/``decode`` try it first; it answers
  well-formed input (about 5x cheaper than the reference path, see
  ``benchmarks/codec_bench.py``).
* **reference path** (``Codec.reference_encode``/``reference_decode``): pyiso8583 with the
  specs below plus the layer. It is the definition of correct behaviour and the *only* error
  path.

Fallback rule: the fast path never raises and never guesses. On anything irregular - a value of
an unexpected type, a length out of range, a non-BCD nibble, a pad the reference would refuse,
an undefined or secondary/tertiary bit it should not see, a non-canonical length prefix,
truncation, trailing bytes, any exception inside it - it returns ``None`` and the reference path
runs, producing today's bytes, ``Message`` or ``CodecError`` (field, offset, reason). Its own
answers are byte-identical (encode) / equal (decode) to the reference's, and it only accepts
input the reference accepts; ``tests/codec/test_fastpath.py`` checks both differentially.

pyiso8583 4.x does the wire work of the reference path. The spec dicts are built once, at
import, from the TOML field tables; the per-field conversion tables used on every call are
precomputed here too, so that path is one ``iso8583.decode``/``encode`` plus one loop over the
present fields.

How each terminal-dialect rule is expressed in the reference path (the only places we go beyond
a plain spec); the fast path implements the same rules field by field:

* packed BCD numerics: pyiso8583 ``data_enc="b"`` + ``len_count="nibbles"``; fixed odd fields
  are right-aligned with ``left_pad="0"``, field 22 (left-aligned) uses ``right_pad="0"``;
  variable n/z use ``right_pad="0"``, so we *send* pad 0 (the terminal dialect's choice).
* LL/LLL BCD prefixes: ``len_enc="bcd"`` with ``len_type`` 1/2; n/z count nibbles, an/b bytes.
* pad F accepted on decode: pyiso8583 accepts one pad character per field. When it reports a
  pad error on a field whose last nibble is F, we decode again with a spec variant that has
  ``right_pad="F"`` for that field (variants memoised per set of fields). Only messages that
  really carry F pads pay for it. [layer: ``Codec._decode_slow``]
* ``z`` track data: decoded by pyiso8583 as hex nibbles; the layer maps separator nibble D to
  ``=`` and back. [layer: the post/pre conversion loops]
* n fields must be decimal: pyiso8583 returns any hex nibble for ``data_enc="b"``; the layer
  rejects non-BCD nibbles in n fields (z fields may be encrypted and keep A-F). [layer]
* ``b`` fields are ``bytes`` in a Message; pyiso8583 wants/returns hex text. [layer]
* field 64 as 8 ASCII hex characters: simply an ``an`` 8 field in the table.
* fixed an/ans fields are space-padded on encode when shorter (left-aligned). [layer]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
from iso8583.decoder import DecodeError
from iso8583.decoder import decode as _iso_decode
from iso8583.encoder import EncodeError
from iso8583.encoder import encode as _iso_encode

from codec.errors import CodecError
from codec.fastpath import FastPath
from codec.message import Message
from specs import load_toml

FORMATS = ("n", "z", "an", "ans", "b")

# conversion kinds used by the per-call loops
_TEXT, _NUM, _BIN, _ZBCD = 0, 1, 2, 3

_Z_CHARS = re.compile(r"[0-9A-F=]*")


@attrs.frozen
class FieldDef:
    """One row of a dialect table."""

    number: int
    format: str
    length: int
    prefix: int = 0  # 0 fixed, 2 LL, 3 LLL
    align: str = "right"
    desc: str = ""


@attrs.frozen
class DialectTable:
    name: str
    encoding: str  # "bcd" (terminal) or "ascii" (issuer)
    secondary_bitmap: bool
    fields: tuple[FieldDef, ...]

    def field(self, n: int) -> FieldDef:
        for f in self.fields:
            if f.number == n:
                return f
        raise KeyError(n)


def load_table(resource: str) -> DialectTable:
    """Read ``specs/<resource>`` (TOML) into a checked DialectTable."""
    return table_from_data(load_toml(resource))


def table_from_data(data: Mapping[str, Any]) -> DialectTable:
    meta = data["dialect"]
    rows = []
    for key, row in sorted(data["fields"].items(), key=lambda kv: int(kv[0])):
        fd = FieldDef(number=int(key), **row)
        if not 2 <= fd.number <= 128 or fd.format not in FORMATS or fd.prefix not in (0, 2, 3):
            raise ValueError(f"bad field definition {fd}")
        if fd.number > 64 and not meta["secondary_bitmap"]:
            raise ValueError(f"field {fd.number} needs a secondary bitmap")
        rows.append(fd)
    if meta["encoding"] not in ("bcd", "ascii"):
        raise ValueError("encoding must be bcd or ascii")
    return DialectTable(meta["name"], meta["encoding"], meta["secondary_bitmap"], tuple(rows))


def build_spec(table: DialectTable) -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec dict for a table (pure data in, pure data out)."""
    bcd = table.encoding == "bcd"
    spec: dict[str, dict[str, Any]] = {
        "h": _spec("ascii", "ascii", 0, 0, "Message header (none)"),
        "t": _spec("b" if bcd else "ascii", "ascii", 0, 4, "Message type"),
        "p": _spec("b", "ascii", 0, 8, "Primary bitmap"),
    }
    if table.secondary_bitmap:
        spec["1"] = _spec("b", "ascii", 0, 8, "Secondary bitmap")
    for fd in table.fields:
        spec[str(fd.number)] = _field_spec(fd, bcd)
    return spec


def _spec(
    data_enc: str, len_enc: str, len_type: int, max_len: int, desc: str, **extra: Any
) -> dict[str, Any]:
    return {
        "data_enc": data_enc,
        "len_enc": len_enc,
        "len_type": len_type,
        "max_len": max_len,
        "desc": desc,
        **extra,
    }


def _field_spec(fd: FieldDef, bcd: bool) -> dict[str, Any]:
    if bcd:
        len_type = {0: 0, 2: 1, 3: 2}[fd.prefix]
        len_enc = "bcd"
        if fd.format in ("n", "z"):
            if fd.prefix == 0 and fd.align == "right":
                pad = {"left_pad": "0"}
            else:
                pad = {"right_pad": "0"}
            return _spec("b", len_enc, len_type, fd.length, fd.desc, len_count="nibbles", **pad)
    else:
        len_type = fd.prefix
        len_enc = "ascii"
        if fd.format in ("n", "z"):
            return _spec("ascii", len_enc, len_type, fd.length, fd.desc)
    if fd.format == "b":
        return _spec("b", len_enc, len_type, fd.length, fd.desc)
    # an/ans: latin-1 decodes every byte, so a terminal's non-ASCII text (e.g. GBK in 63)
    # survives decode and re-encodes to the same bytes.
    return _spec("latin-1", len_enc, len_type, fd.length, fd.desc)


def _part_name(key: str) -> int | str:
    return {"t": "mti", "p": "bitmap", "1": "bitmap", "h": "header"}.get(key) or int(key)


class Codec:
    """Decode/encode for one dialect, with everything per-call precomputed."""

    def __init__(self, table: DialectTable) -> None:
        self.table = table
        self.name = table.name
        self.spec = build_spec(table)
        bcd = table.encoding == "bcd"
        self._mti_len = 2 if bcd else 4
        # decode: pyiso8583 key -> (field number, conversion kind)
        self._post: dict[str, tuple[int, int]] = {}
        # encode: field number -> (pyiso8583 key, kind, width to space-pad fixed text to)
        self._pre: dict[int, tuple[str, int, int]] = {}
        self._right_pad_keys: set[str] = set()
        for fd in table.fields:
            key = str(fd.number)
            if fd.format == "n":
                kind = _NUM
            elif fd.format == "b":
                kind = _BIN
            elif fd.format == "z" and bcd:
                kind = _ZBCD
            else:
                kind = _TEXT
            width = fd.length if (fd.format in ("an", "ans") and fd.prefix == 0) else 0
            self._post[key] = (fd.number, kind)
            self._pre[fd.number] = (key, kind, width)
            if "right_pad" in self.spec[key]:
                self._right_pad_keys.add(key)
        self._variants: dict[frozenset[str], dict[str, dict[str, Any]]] = {}
        self.defined = frozenset(self._pre)
        self.fast = FastPath(table)

    # ------------------------------------------------------------------ decode

    def decode(self, data: bytes) -> Message:
        """bytes (from the MTI on) -> Message, or CodecError naming field, offset and reason.

        The fast path answers well-formed input; anything else goes to the reference path.
        """
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise CodecError(f"cannot decode {type(data).__name__}", field="message")
            data = bytes(data)
        msg = self.fast.decode(data)
        if msg is not None:
            return msg
        return self.reference_decode(data)

    def reference_decode(self, data: bytes) -> Message:
        """The pyiso8583 path: the reference for the fast path and the only error path."""
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise CodecError(f"cannot decode {type(data).__name__}", field="message")
            data = bytes(data)
        try:
            dec, enc = _iso_decode(data, self.spec)
        except DecodeError as e:
            dec, enc = self._decode_slow(data, e)
        except KeyError:
            raise self._undefined_field(data) from None
        except Exception as e:  # defensive: the contract is "CodecError, never anything else"
            raise CodecError(f"undecodable input ({type(e).__name__})", field="message") from None
        mti = dec.pop("t")
        del dec["p"]
        if "1" in dec and dec.pop("1")[0] in "89ABCDEF":
            raise CodecError("bit 65 (tertiary bitmap) is not used", field="bitmap", offset=12)
        if not mti.isdecimal():
            raise CodecError(f"MTI {mti!r} is not decimal", field="mti", offset=0)
        post = self._post
        fields: dict[int, Any] = {}
        for k, v in dec.items():
            n, kind = post[k]
            # text (_TEXT) needs no conversion
            if kind == _NUM:
                if not v.isdecimal() and v:
                    raise CodecError(
                        f"non-decimal digit in numeric field: {v!r}"
                        if n not in (2, 35, 36)
                        else "non-decimal digit in numeric field",
                        field=n,
                        offset=_offset_of(enc, k),
                    )
            elif kind == _BIN:
                fields[n] = bytes.fromhex(v)
                continue
            elif kind == _ZBCD:
                v = v.replace("D", "=")
            fields[n] = v
        return Message(mti, fields)

    def _decode_slow(self, data: bytes, e: DecodeError) -> tuple[dict[str, Any], dict[str, Any]]:
        """Retry with F-pad spec variants while the failure is an F pad; else wrap the error."""
        variant: frozenset[str] = frozenset()
        while True:
            key = e.field
            hexval = e.doc_dec.get(key, "")
            raw = e.doc_enc.get(key, {}).get("data", b"")
            is_f_pad = (
                key in self._right_pad_keys
                and key not in variant
                and hexval[-1:] == "F"
                and len(hexval) == 2 * len(raw)
            )
            if not is_f_pad:
                raise CodecError(e.msg, field=_part_name(key), offset=e.pos) from None
            variant = variant | {key}
            spec = self._variant(variant)
            try:
                return _iso_decode(data, spec)
            except DecodeError as e2:
                e = e2
            except KeyError:
                raise self._undefined_field(data) from None
            except Exception as exc:  # defensive, as in decode
                raise CodecError(
                    f"undecodable input ({type(exc).__name__})", field="message"
                ) from None

    def _variant(self, keys: frozenset[str]) -> dict[str, dict[str, Any]]:
        spec = self._variants.get(keys)
        if spec is None:
            spec = dict(self.spec)
            for k in keys:
                spec[k] = {**self.spec[k], "right_pad": "F"}
            self._variants[keys] = spec
        return spec

    def _undefined_field(self, data: bytes) -> CodecError:
        """Name the first bitmap bit that has no field in this dialect."""
        start = self._mti_len
        primary = int.from_bytes(data[start : start + 8], "big")
        present = [b for b in range(1, 65) if primary >> (64 - b) & 1]
        if 1 in present and not self.table.secondary_bitmap:
            return CodecError(
                f"secondary bitmap is not used in the {self.name} dialect",
                field="bitmap",
                offset=start,
            )
        if 1 in present:
            secondary = int.from_bytes(data[start + 8 : start + 16], "big")
            present += [64 + b for b in range(1, 65) if secondary >> (64 - b) & 1]
        for b in present:
            if b not in (1, 65) and b not in self.defined:
                return CodecError(
                    f"bit {b} is set but field {b} is not defined in the {self.name} dialect",
                    field="bitmap",
                    offset=start + (8 if b > 64 else 0) + ((b - 1) % 64) // 8,
                )
        return CodecError("bitmap names an undefined field", field="bitmap", offset=start)

    # ------------------------------------------------------------------ encode

    def encode(self, msg: Message) -> bytes:
        """Message -> bytes (from the MTI on), or CodecError naming the field and the reason.

        The fast path answers ordinary messages; anything else goes to the reference path.
        """
        out = self.fast.encode(msg)
        if out is not None:
            return out
        return self.reference_encode(msg)

    def reference_encode(self, msg: Message) -> bytes:
        """The pyiso8583 path: the reference for the fast path and the only error path."""
        doc: dict[str, str] = {"t": msg.mti}
        pre = self._pre
        for n, v in msg.fields.items():
            try:
                key, kind, width = pre[n]
            except KeyError:
                raise CodecError(
                    f"field {n} is not defined in the {self.name} dialect", field=n
                ) from None
            if kind == _BIN:
                if not isinstance(v, bytes | bytearray):
                    raise CodecError(f"expected bytes, got {type(v).__name__}", field=n)
                v = v.hex()
            elif type(v) is not str:
                raise CodecError(f"expected str, got {type(v).__name__}", field=n)
            elif kind == _NUM:
                if not v.isdecimal() and v:
                    raise CodecError("numeric field holds non-decimal characters", field=n)
            elif kind == _ZBCD:
                if _Z_CHARS.fullmatch(v) is None:
                    raise CodecError("track holds characters other than 0-9 A-F =", field=n)
                v = v.replace("=", "D")
            elif width and len(v) < width:
                v = v.ljust(width)
            doc[key] = v
        try:
            out, _ = _iso_encode(doc, self.spec)
        except EncodeError as e:
            raise CodecError(e.msg, field=_part_name(e.field)) from None
        except Exception as e:  # defensive, as in decode
            raise CodecError(f"unencodable message ({type(e).__name__})", field="message") from None
        return bytes(out)


def _offset_of(enc: dict[str, dict[str, bytes]], key: str) -> int:
    """Byte offset of a field's length prefix, from pyiso8583's per-field encoded parts."""
    pos = 0
    for k, part in enc.items():
        if k == key:
            return pos
        pos += len(part["len"]) + len(part["data"])
    return -1
