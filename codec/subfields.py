"""Subfield codecs: small pure parse/format pairs for 44, 48, 53, 54, 60, 61 and 62.

They work on the field *values* the dialect codec returns (str of digits/text, or bytes), so a
flow decodes only the subfields it needs. Errors are ``CodecError`` naming the subfield (e.g.
``"60.3"``); ``offset`` is the character (or byte, for 62) index inside the field value.

Field 48 batch-upload layout (ours; the dialect leaves it open), all digits:

* 0320 with 60.3 = 201 (detail records):
  ``count n2`` then ``count`` records of
  ``organisation n2`` (00 domestic card, 01 foreign card) | ``PAN length n2`` | ``PAN n..19``
  (no pad inside the record) | ``amount n12`` | ``STAN n6`` | ``original type n2`` (the
  original's 60.1, e.g. 22 purchase). A record is at most 43 digits, so up to 7 fit in 322.
* 0320 with 60.3 = 201, the layout NewPOS-family CUP terminals send: ``count n2`` then
  ``count`` fixed 40-digit records of ``original type n2`` (60.1) | ``STAN n6`` | ``PAN n20``
  (right-aligned, zero-filled) | ``amount n12``. No organisation: the host takes the card group
  from the PAN's BIN, as for its own journal rows.
  The two layouts are told apart by the record's first two digits: ours starts with the
  organisation (00 or 01), theirs with a 60.1 type that is uploaded (20, 22, 24, 25...), never
  00 (management) or 01 (balance inquiry); and theirs is exactly 2 + 40 x count digits.
* 0320 with 60.3 = 202/207 (end of upload): ``total records uploaded n4``.

Field 48 of a transfer (0200, 60.1 = 47, and its 0400): the payee's PAN alone, 12 to 19
digits, check digit valid (``parse_payee``).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from codec.errors import CodecError

# ---------------------------------------------------------------------------- helpers


def _digits(value: str, width: int, name: str) -> str:
    if len(value) != width or not value.isdecimal():
        raise CodecError(f"expected {width} digits, got {value!r}", field=name)
    return value


def _num(value: int, width: int, name: str) -> str:
    if not 0 <= value < 10**width:
        raise CodecError(f"{value} does not fit n{width}", field=name)
    return f"{value:0{width}d}"


def _need_decimal(s: str, field: str) -> None:
    if not s.isdecimal() and s:
        bad = next(i for i, c in enumerate(s) if not c.isdecimal())
        raise CodecError("non-decimal digit", field=field, offset=bad)


# ---------------------------------------------------------------------------- 60

_F60 = (
    ("txn_type", 2),
    ("batch", 6),
    ("nmc", 3),
    ("read_capability", 1),
    ("ic_condition", 1),
    ("partial", 1),
)


@attrs.frozen
class Field60:
    """60.1 type n2, 60.2 batch n6, 60.3 network management code n3, 60.4-60.6 n1 each.

    Trailing subfields may be absent (terminals send 8, 11, 14 digits or more), so parse
    accepts any prefix and format omits trailing empty parts.
    """

    txn_type: str
    batch: str
    nmc: str = ""
    read_capability: str = ""
    ic_condition: str = ""
    partial: str = ""

    rest: str = ""  # digits beyond 60.6 (the field allows 17), kept for a faithful re-format

    @classmethod
    def parse(cls, s: str) -> Field60:
        _need_decimal(s, "60")
        if len(s) < 2:
            raise CodecError("60.1 missing", field="60.1", offset=0)
        parts, pos = [], 0
        for i, (_name, width) in enumerate(_F60, start=1):
            part = s[pos : pos + width]
            if part and len(part) != width:
                raise CodecError(
                    f"truncated, {len(part)} of {width} digits", field=f"60.{i}", offset=pos
                )
            parts.append(part)
            pos += width
        return cls(*parts, rest=s[pos:])  # type: ignore[misc]  # parts fill the six names

    def format(self) -> str:
        values = [getattr(self, name) for name, _ in _F60]
        while values and values[-1] == "" and not self.rest:
            values.pop()
        out = [
            _digits(v, w, f"60.{i}")
            for i, ((_n, w), v) in enumerate(zip(_F60, values, strict=False), 1)
        ]
        _need_decimal(self.rest, "60")
        return "".join(out) + self.rest


# ---------------------------------------------------------------------------- 61


@attrs.frozen
class Field61:
    """Original transaction: batch n6, STAN n6, date MMDD n4 (absent in some voids), rest kept."""

    batch: str
    stan: str
    date: str = ""
    rest: str = ""

    @classmethod
    def parse(cls, s: str) -> Field61:
        _need_decimal(s, "61")
        if len(s) < 12 or 12 < len(s) < 16:
            raise CodecError(
                f"{len(s)} digits; expected 12 or at least 16", field="61", offset=len(s)
            )
        return cls(s[0:6], s[6:12], s[12:16], s[16:])

    def format(self) -> str:
        out = _digits(self.batch, 6, "61.1") + _digits(self.stan, 6, "61.2")
        if self.date or self.rest:
            out += _digits(self.date, 4, "61.3")
            _need_decimal(self.rest, "61")
            out += self.rest
        return out


# ---------------------------------------------------------------------------- 62 keys

_SIGNON_LEN = {"001": 24, "003": 40, "004": 60}


@attrs.frozen(repr=False)
class SignOnKeys:
    """Working keys as they travel in 62 of an 0810: each under the TMK, with a 4-byte check value.

    Cryptograms only; still never shown in a repr (they end in logs).
    """

    pik: bytes
    pik_cv: bytes
    mak: bytes
    mak_cv: bytes
    tdk: bytes | None = None
    tdk_cv: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"SignOnKeys(pik={len(self.pik)}B, mak={len(self.mak)}B, tdk={len(self.tdk or b'')}B)"
        )


def parse_signon_keys(data: bytes, mode: str) -> SignOnKeys:
    """62 of a sign-on response, layout by 60.3: 001 (24 bytes), 003 (40), 004 (60).

    In 003/004 the MAK is single-length followed by 8 zero bytes; a host that sends a
    double-length MAK there instead is accepted and the 16 bytes are returned as the MAK.
    """
    want = _SIGNON_LEN.get(mode)
    if want is None:
        raise CodecError(f"unknown sign-on key mode {mode!r}", field="60.3")
    if len(data) != want:
        raise CodecError(f"{len(data)} bytes, mode {mode} needs {want}", field=62, offset=len(data))
    if mode == "001":
        return SignOnKeys(data[0:8], data[8:12], data[12:20], data[20:24])
    mak = data[20:36]
    if mak[8:] == bytes(8):
        mak = mak[:8]
    keys = SignOnKeys(data[0:16], data[16:20], mak, data[36:40])
    if mode == "004":
        keys = attrs.evolve(keys, tdk=data[40:56], tdk_cv=data[56:60])
    return keys


def format_signon_keys(keys: SignOnKeys, mode: str) -> bytes:
    def need(value: bytes | None, n: int, name: str) -> bytes:
        if value is None or len(value) != n:
            raise CodecError(f"{name} must be {n} bytes for mode {mode}", field=62)
        return value

    if mode == "001":
        return (
            need(keys.pik, 8, "PIK")
            + need(keys.pik_cv, 4, "PIK CV")
            + need(keys.mak, 8, "MAK")
            + need(keys.mak_cv, 4, "MAK CV")
        )
    if mode not in ("003", "004"):
        raise CodecError(f"unknown sign-on key mode {mode!r}", field="60.3")
    mak = keys.mak + bytes(8) if len(keys.mak) == 8 else need(keys.mak, 16, "MAK")
    out = (
        need(keys.pik, 16, "PIK")
        + need(keys.pik_cv, 4, "PIK CV")
        + mak
        + need(keys.mak_cv, 4, "MAK CV")
    )
    if mode == "004":
        out += need(keys.tdk, 16, "TDK") + need(keys.tdk_cv, 4, "TDK CV")
    return out


_TUSN_TAG = b"Sequence No"


def parse_tusn(data: bytes) -> str | None:
    """The terminal serial (TUSN) a sign-on request may carry in 62, or None if absent/garbled."""
    if not data.startswith(_TUSN_TAG):
        return None
    head = data[len(_TUSN_TAG) : len(_TUSN_TAG) + 2]
    if len(head) != 2 or not head.isdigit():
        return None
    n = int(head)
    body = data[len(_TUSN_TAG) + 2 :]
    if len(body) < n:
        return None
    try:
        return body[:n].decode("ascii")
    except UnicodeDecodeError:
        return None


def format_tusn(tusn: str) -> bytes:
    raw = tusn.encode("ascii")
    if len(raw) > 99:
        raise CodecError("TUSN longer than 99 characters", field=62)
    return _TUSN_TAG + f"{len(raw):02d}".encode() + raw


# ---------------------------------------------------------------------------- 44, 53


@attrs.frozen
class Field44:
    """Additional response data: issuer id an11 + acquirer id an11 (trailing spaces kept)."""

    issuer: str
    acquirer: str

    @classmethod
    def parse(cls, s: str) -> Field44:
        return cls(s[0:11], s[11:22])

    def format(self) -> str:
        if len(self.issuer) > 11 or len(self.acquirer) > 11:
            raise CodecError("issuer and acquirer ids are an11 each", field=44)
        return self.issuer.ljust(11) + self.acquirer.ljust(11)


@attrs.frozen
class SecurityControl:
    """53: digit 1 PIN format (2 = ISO format 0 with PAN, 0 none), 2 algorithm (0 DES, 6 3DES),
    3 track encryption (1 yes); the other 13 digits are 0."""

    pin_format: str = "2"
    algorithm: str = "6"
    track_encrypted: bool = False

    @classmethod
    def parse(cls, s: str) -> SecurityControl:
        if len(s) != 16 or not s.isdecimal():
            raise CodecError("53 must be 16 digits", field=53)
        return cls(s[0], s[1], s[2] == "1")

    def format(self) -> str:
        return self.pin_format + self.algorithm + ("1" if self.track_encrypted else "0") + "0" * 13


# ---------------------------------------------------------------------------- 48 settlement


@attrs.frozen
class SettlementTotals:
    """One block of 48 in a 0500: debit amount n12, count n3, credit amount n12, count n3,
    result n1 (0 request; 1 balanced, 2 not balanced, 3 error in the response)."""

    debit_amount: int
    debit_count: int
    credit_amount: int
    credit_count: int
    result: str = "0"

    def format(self) -> str:
        if len(self.result) != 1 or not self.result.isdecimal():
            raise CodecError("result must be one digit", field="48")
        return (
            _num(self.debit_amount, 12, "48")
            + _num(self.debit_count, 3, "48")
            + _num(self.credit_amount, 12, "48")
            + _num(self.credit_count, 3, "48")
            + self.result
        )


_ZERO_TOTALS = SettlementTotals(0, 0, 0, 0, "0")


def _totals(s: str, pos: int) -> SettlementTotals:
    b = s[pos : pos + 31]
    return SettlementTotals(int(b[0:12]), int(b[12:15]), int(b[15:27]), int(b[27:30]), b[30])


def parse_field48_settlement(s: str) -> tuple[SettlementTotals, SettlementTotals]:
    """(domestic, foreign) totals. A terminal that sends only the domestic block (31 digits)
    gets zero foreign totals."""
    _need_decimal(s, "48")
    if len(s) < 31:
        raise CodecError(
            f"{len(s)} digits, settlement totals need 31 or 62", field="48", offset=len(s)
        )
    domestic = _totals(s, 0)
    if len(s) < 62:
        return domestic, _ZERO_TOTALS
    return domestic, _totals(s, 31)


def format_field48_settlement(domestic: SettlementTotals, foreign: SettlementTotals) -> str:
    return domestic.format() + foreign.format()


# ---------------------------------------------------------------------------- 48 batch upload


@attrs.frozen
class BatchRecord:
    """One detail record of a batch upload (layout in the module docstring)."""

    organisation: str | None  # "00" domestic, "01" foreign; None: not sent (NewPOS layout)
    pan: str
    amount: int
    stan: str
    original_type: str  # the original's 60.1

    def format(self) -> str:
        if not 1 <= len(self.pan) <= 19 or not self.pan.isdecimal():
            raise CodecError("PAN must be 1..19 digits", field="48")
        return (
            _digits(self.organisation or "", 2, "48")
            + f"{len(self.pan):02d}"
            + self.pan
            + _num(self.amount, 12, "48")
            + _digits(self.stan, 6, "48")
            + _digits(self.original_type, 2, "48")
        )


NEWPOS_RECORD = 40


def is_newpos_layout(s: str) -> bool:
    """Whether 48 holds NewPOS-type fixed 40-digit records (see the module docstring)."""
    if len(s) < 2 or not s.isdecimal():
        return False
    count = int(s[:2])
    return count > 0 and len(s) == 2 + NEWPOS_RECORD * count and s[2:4] not in ("00", "01")


def _parse_newpos_records(s: str) -> tuple[BatchRecord, ...]:
    out = []
    for pos in range(2, len(s), NEWPOS_RECORD):
        rec = s[pos : pos + NEWPOS_RECORD]
        pan = rec[8:28].lstrip("0")
        if not 12 <= len(pan) <= 19:
            raise CodecError("PAN of a record is not 12..19 digits", field="48", offset=pos + 8)
        out.append(BatchRecord(None, pan, int(rec[28:40]), rec[2:8], rec[0:2]))
    return tuple(out)


def parse_batch_upload(s: str) -> tuple[BatchRecord, ...]:
    """Either layout of the module docstring."""
    _need_decimal(s, "48")
    if is_newpos_layout(s):
        return _parse_newpos_records(s)
    if len(s) < 2:
        raise CodecError("record count missing", field="48", offset=0)
    count, pos, out = int(s[:2]), 2, []
    for _ in range(count):
        if len(s) < pos + 4:
            raise CodecError("truncated record", field="48", offset=pos)
        org, plen = s[pos : pos + 2], int(s[pos + 2 : pos + 4])
        end = pos + 4 + plen + 20
        if not 1 <= plen <= 19 or len(s) < end:
            raise CodecError("bad PAN length or truncated record", field="48", offset=pos + 2)
        p = pos + 4 + plen
        out.append(
            BatchRecord(
                org, s[pos + 4 : p], int(s[p : p + 12]), s[p + 12 : p + 18], s[p + 18 : p + 20]
            )
        )
        pos = end
    if pos != len(s):
        raise CodecError(f"{len(s) - pos} digits after {count} records", field="48", offset=pos)
    return tuple(out)


def format_batch_upload(records: Iterable[BatchRecord]) -> str:
    recs = list(records)
    body = "".join(r.format() for r in recs)
    out = _num(len(recs), 2, "48") + body
    if len(out) > 322:
        raise CodecError("records do not fit 322 digits", field="48")
    return out


def parse_batch_end(s: str) -> int:
    """0320 with 60.3 202/207: the total number of records the terminal uploaded."""
    return int(_digits(s, 4, "48"))


def format_batch_end(count: int) -> str:
    return _num(count, 4, "48")


# ---------------------------------------------------------------------------- 48 payee

PAYEE_DIGITS = (12, 19)


def luhn_valid(pan: str) -> bool:
    """The ISO/IEC 7812 check digit is right. It catches every mistyped digit and most swaps of
    two neighbours, so a typo in a payee's number is refused before an issuer is asked."""
    if not (pan.isascii() and pan.isdecimal()):
        return False
    total = 0
    for i, c in enumerate(reversed(pan)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def parse_payee(value: str) -> str:
    """48 of a transfer: the payee's PAN, 12 to 19 digits with a valid check digit, and
    nothing else (docs/terminal-dialect.md, "Transfer"). Errors say which rule is broken and
    never show a digit: the value is a card number."""
    if not (value.isascii() and value.isdecimal()):
        raise CodecError("payee PAN: digits only", field="48")
    low, high = PAYEE_DIGITS
    if not low <= len(value) <= high:
        raise CodecError(f"payee PAN: {len(value)} digits, {low} to {high} allowed", field="48")
    if not luhn_valid(value):
        raise CodecError("payee PAN: check digit wrong", field="48")
    return value


# ---------------------------------------------------------------------------- 54


@attrs.frozen
class Balance:
    """54 entry: account type n2, amount type n2, currency an3, sign C/D, amount n12.

    ``amount`` is signed: D (debit balance) is negative.
    """

    account_type: str
    amount_type: str
    currency: str
    amount: int

    def format(self) -> str:
        sign = "D" if self.amount < 0 else "C"
        return (
            _digits(self.account_type, 2, "54")
            + _digits(self.amount_type, 2, "54")
            + (self.currency if len(self.currency) == 3 else _digits(self.currency, 3, "54"))
            + sign
            + _num(abs(self.amount), 12, "54")
        )


def parse_field54(s: str) -> tuple[Balance, ...]:
    """All 20-character balance entries in 54 (terminals get one or two)."""
    if len(s) % 20 or not s:
        raise CodecError(
            f"{len(s)} characters, not a multiple of 20", field=54, offset=len(s) - len(s) % 20
        )
    out = []
    for pos in range(0, len(s), 20):
        e = s[pos : pos + 20]
        sign, amount = e[7], e[8:20]
        if sign not in "CD" or not amount.isdecimal():
            raise CodecError("bad sign or amount", field=54, offset=pos + 7)
        value = int(amount)
        out.append(Balance(e[0:2], e[2:4], e[4:7], -value if sign == "D" else value))
    return tuple(out)


def format_field54(balances: Iterable[Balance]) -> str:
    return "".join(b.format() for b in balances)
