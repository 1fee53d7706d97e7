"""The message value object shared by both dialects.

A message crosses tasks (session, journal, issuer link) and is kept in the journal, so it is an
immutable value: ``with_*`` helpers return new messages instead of mutating one another task may
still hold. Field values are plain ``str`` (n, z, an, ans) or ``bytes`` (b) so that callers never
need to know the wire encoding of a dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

FieldValue = str | bytes

_MISSING: Any = object()


def _freeze(fields: Mapping[int, FieldValue]) -> Mapping[int, FieldValue]:
    # Always copy: a caller-held dict must not be able to change a message after the fact.
    return MappingProxyType(dict(fields))


def _check_mti(_inst: Any, _attr: Any, value: str) -> None:
    if type(value) is not str or len(value) != 4 or not value.isdecimal():
        raise ValueError(f"MTI must be 4 decimal digits, got {value!r}")


@attrs.frozen
class Message:
    """An ISO 8583 message: MTI plus data elements 2..128 (bitmaps are derived, never stored).

    Hashing uses the MTI only (the field mapping is not hashable); equality compares both.
    """

    mti: str = attrs.field(validator=_check_mti)
    fields: Mapping[int, FieldValue] = attrs.field(
        factory=dict, converter=_freeze, hash=False, repr=False
    )

    @classmethod
    def owning(cls, mti: str, fields: dict[int, FieldValue]) -> Message:
        """A message over ``fields`` without the defensive copy: for a caller that built the
        dict itself and drops it (a decoder, ``response``); four of these per purchase. The
        MTI is still checked."""
        _check_mti(None, None, mti)
        msg = object.__new__(cls)
        object.__setattr__(msg, "mti", mti)
        object.__setattr__(msg, "fields", MappingProxyType(fields))
        return msg

    def get(self, n: int, default: FieldValue | None = None) -> FieldValue | None:
        """Field ``n`` or ``default``; mirrors ``dict.get`` so flows read naturally."""
        return self.fields.get(n, default)

    def __getitem__(self, n: int) -> FieldValue:
        return self.fields[n]

    def __contains__(self, n: object) -> bool:
        return n in self.fields

    def __repr__(self) -> str:
        # Never show values: a repr ends up in logs and tracebacks, and values include PANs.
        return f"Message(mti={self.mti!r}, fields={sorted(self.fields)})"

    def with_fields(self, updates: Mapping[int, FieldValue | None]) -> Message:
        """A copy with ``updates`` applied; a value of ``None`` removes that field."""
        merged = dict(self.fields)
        for n, v in updates.items():
            if v is None:
                merged.pop(n, None)
            else:
                merged[n] = v
        return Message.owning(self.mti, merged)

    def without(self, *numbers: int) -> Message:
        """A copy without the given fields (e.g. a reversal drops 26, 35, 36, 37, 52, 53)."""
        return Message.owning(self.mti, {n: v for n, v in self.fields.items() if n not in numbers})

    def with_mti(self, mti: str) -> Message:
        return Message(mti, self.fields)

    def response(
        self,
        code: str | None = None,
        *,
        echo: Iterable[int] = (3, 11, 41, 42),
        extra: Mapping[int, FieldValue | None] | None = None,
    ) -> Message:
        """The matching response skeleton: MTI + 10, echoed fields, 39, and 4 when the request
        had it.

        Terminals reject a response that does not echo 3, 11, 41 and 42; strict ones compare 4
        on every answer, declines included ("AMOUNT ERROR", and a reversal left pending), so
        building it here keeps every flow from re-deriving that rule.
        """
        mti = response_mti(self.mti)
        fields = self.fields
        out: dict[int, FieldValue] = {n: fields[n] for n in echo if n in fields}
        if code is not None:
            out[39] = code
            if 4 in fields:
                out[4] = fields[4]
        for n, v in (extra or {}).items():
            if v is None:
                out.pop(n, None)
            else:
                out[n] = v
        return Message.owning(mti, out)


def response_mti(mti: str) -> str:
    """0200 -> 0210, 0401 -> 0411; refuses an MTI that is already a response."""
    if len(mti) != 4 or not mti.isdecimal() or int(mti[2]) % 2:
        raise ValueError(f"{mti!r} is not a request MTI")
    return f"{int(mti) + 10:04d}"
