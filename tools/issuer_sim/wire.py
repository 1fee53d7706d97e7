"""A forgiving reader for request frames the strict codec refuses.

The codec knows only the fields of our issuer table and refuses a message with anything else.
A foreign acquirer sends more (15, 45, 60, 102, ...) and sometimes sends bad content (letters in
an amount). Closing the link for that would lose every other request in flight on it, so the
simulator reads such a frame again here, field by field, with the ISO 8583:1987 formats:

- a field our table defines is checked against our table; bad content makes the frame a
  *format error* (answered 30, with the fields that could be read echoed);
- a field only ISO 8583:1987 defines is skipped by its length and ignored;
- a frame whose structure cannot be followed (a length prefix that is not digits, a frame that
  ends inside a field) is a format error too, answered with what was read before the break;
- a frame without a readable request MTI cannot be answered at all: it is refused (recorded,
  no answer) and the connection keeps serving.

Error texts name the field and the reason, never the content (it may be a PAN or a track).
"""

from __future__ import annotations

import attrs

from codec import issuer
from codec.message import Message

# ISO 8583:1987 formats of every field, ASCII variant: (kind, length, prefix digits).
# kind: n digits, x signed amount (C/D + digits), b bytes, t any text. Lengths of b in bytes.
_N, _X, _B, _T = "n", "x", "b", "t"


def _iso_1987() -> dict[int, tuple[str, int, int]]:
    f: dict[int, tuple[str, int, int]] = {}
    fixed_n = {3: 6, 4: 12, 5: 12, 6: 12, 7: 10, 8: 8, 9: 8, 10: 8, 11: 6, 12: 6, 13: 4}
    fixed_n |= {n: 4 for n in range(14, 19)} | {n: 3 for n in range(19, 25)}
    fixed_n |= {25: 2, 26: 2, 27: 1, 53: 16, 66: 1, 67: 2, 68: 3, 69: 3, 70: 3, 71: 4, 72: 4}
    fixed_n |= {73: 6} | {n: 10 for n in range(74, 82)} | {n: 12 for n in range(82, 86)}
    fixed_n |= {n: 16 for n in range(86, 90)} | {90: 42}
    for n, length in fixed_n.items():
        f[n] = (_N, length, 0)
    for n in (28, 29, 30, 31):
        f[n] = (_X, 9, 0)
    f[97] = (_X, 17, 0)
    for n, length in {2: 19, 32: 11, 33: 11, 99: 11, 100: 11}.items():
        f[n] = (_N, length, 2)
    f[36] = (_N, 104, 3)
    fixed_t = {37: 12, 38: 6, 39: 2, 40: 3, 41: 8, 42: 15, 43: 40, 49: 3, 50: 3, 51: 3}
    fixed_t |= {91: 1, 92: 2, 93: 5, 94: 7, 95: 42, 98: 25}
    for n, length in fixed_t.items():
        f[n] = (_T, length, 0)
    for n, length in {34: 28, 35: 37, 44: 25, 45: 76, 101: 17, 102: 28, 103: 28}.items():
        f[n] = (_T, length, 2)
    for n in [46, 47, 48, 54, *range(55, 64), 104, *range(105, 128)]:
        f[n] = (_T, 120 if n == 54 else (100 if n == 104 else 999), 3)
    for n in (52, 64, 96, 128):
        f[n] = (_B, 8, 0)
    return f


ISO_1987 = _iso_1987()
# our table, in the same terms; it wins over ISO_1987 for the fields it defines
OURS = {
    fd.number: (
        _B if fd.format == "b" else (_N if fd.format == "n" else _T),
        fd.length,
        fd.prefix,
    )
    for fd in issuer.TABLE.fields
}


@attrs.frozen
class Frame:
    """What a forgiving read found: the MTI (None when unreadable), the fields of our table
    with good content, the ISO-only fields it skipped, and the problems (empty = usable)."""

    mti: str | None
    fields: dict
    ignored: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def message(self) -> Message | None:
        return None if self.mti is None else Message(self.mti, dict(self.fields))

    @property
    def answerable(self) -> bool:
        """A request MTI (third digit even) can get an answer; anything else cannot."""
        m = self.mti
        return m is not None and m[2] in "02468" and m[3] in "0123"


class _Stop(Exception):
    """Reading stops at the first field that cannot be read; what came before is kept."""


def read(body: bytes) -> Frame:
    """Read a frame (after the length prefix) as far as it goes; never raises."""
    mti_raw = body[:4]
    if len(mti_raw) < 4 or not mti_raw.isdigit():
        return Frame(None, {}, (), ("MTI is not 4 ASCII digits",))
    mti = mti_raw.decode("ascii")
    fields: dict = {}
    ignored: list[int] = []
    problems: list[str] = []
    try:
        bits, pos = _bitmaps(body)
        for n in bits:
            pos = _one(body, pos, n, fields, ignored, problems)
    except _Stop as stop:
        problems.append(str(stop))
    return Frame(mti, fields, tuple(ignored), tuple(problems))


def _bitmaps(body: bytes) -> tuple[list[int], int]:
    primary = body[4:12]
    if len(primary) < 8:
        raise _Stop("bitmap: frame ends inside the primary bitmap")
    value = int.from_bytes(primary, "big")
    bits = [b for b in range(1, 65) if value >> (64 - b) & 1]
    pos = 12
    if bits and bits[0] == 1:
        secondary = body[12:20]
        if len(secondary) < 8:
            raise _Stop("bitmap: frame ends inside the secondary bitmap")
        value = int.from_bytes(secondary, "big")
        bits = bits[1:] + [64 + b for b in range(1, 65) if value >> (64 - b) & 1]
        pos = 20
    if 65 in bits:
        raise _Stop("bit 65 (tertiary bitmap) is not used")
    return bits, pos


def _one(body: bytes, pos: int, n: int, fields: dict, ignored: list, problems: list) -> int:
    kind, length, prefix = OURS.get(n) or ISO_1987[n]
    size = length
    if prefix:
        raw_len = body[pos : pos + prefix]
        if len(raw_len) < prefix or not raw_len.isdigit():
            raise _Stop(f"field {n}: length prefix is not {prefix} ASCII digits")
        size = int(raw_len)
        pos += prefix
    data = body[pos : pos + size]
    if len(data) < size:
        raise _Stop(f"field {n}: frame ends inside the field")
    pos += size
    if n not in OURS:
        ignored.append(n)
        return pos
    problem = _content_problem(kind, length, prefix, data)
    if problem:
        problems.append(f"field {n}: {problem}")
    else:
        fields[n] = data if kind == _B else data.decode("latin-1")
    return pos


def _content_problem(kind: str, length: int, prefix: int, data: bytes) -> str | None:
    if prefix and len(data) > length:
        return f"{len(data)} characters, at most {length} allowed"
    if kind == _N and not data.isdigit() and data:
        return "not numeric"
    return None
