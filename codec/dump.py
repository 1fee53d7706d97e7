"""Masked, human-readable dumps of messages, for logs and the ``poshost decode`` command.

Masking is the default and not optional here: PAN as first 6 + last 4, and only the length of
tracks (35, 36), the PIN block (52), IC data (55) and field 62 (working keys under the TMK, or
a DUKPT KSN) — except that a TUSN in 62, not being key material, is shown. PANs inside batch
upload records (48 of a 0320) are masked as well; in the issuer dialect 48 carries the ZPK
under the ZMK during key exchange and is shown as a length only.
"""

from __future__ import annotations

import contextlib

from codec.dialect import DialectTable
from codec.errors import CodecError
from codec.message import FieldValue, Message
from codec.subfields import parse_batch_upload, parse_tusn

HIDDEN = frozenset({35, 36, 45, 52, 55})


def mask_pan(pan: str) -> str:
    """First 6 + last 4 digits; shorter PANs keep at most their last 4 (never more than half)."""
    n = len(pan)
    if n >= 13:
        return pan[:6] + "*" * (n - 10) + pan[-4:]
    keep = min(4, n // 2)
    return "*" * (n - keep) + pan[n - keep :] if keep else "*" * n


def _length_only(v: FieldValue) -> str:
    unit = "bytes" if isinstance(v, bytes) else "chars"
    return f"[{len(v)} {unit}]"


def _mask_value(msg: Message, n: int, v: FieldValue, dialect: str) -> str:
    if n == 2 and isinstance(v, str):
        return mask_pan(v)
    if n in HIDDEN:
        return _length_only(v)
    if n == 62 and isinstance(v, bytes):
        tusn = parse_tusn(v)
        return f"TUSN {tusn} [{len(v)} bytes]" if tusn is not None else _length_only(v)
    if n == 48 and dialect == "issuer":
        return _length_only(v)
    if n == 63 and msg.mti.startswith("08") and len(str(v).strip()) > 3:
        # a sign-on's operator password or an activation code follows the operator number
        return f"[{len(v)} chars]"
    if n == 48 and msg.mti in ("0320", "0330") and isinstance(v, str):
        return _mask_batch_upload(v)
    if isinstance(v, bytes):
        return v.hex().upper()
    return v


def _mask_batch_upload(v: str) -> str:
    try:
        records = parse_batch_upload(v)
    except CodecError:
        # not detail records (e.g. the end-of-upload count): digits only if it cannot be a PAN
        return v if len(v) <= 6 else _length_only(v)
    parts = [
        f"{r.organisation}/{mask_pan(r.pan)}/{r.amount}/{r.stan}/{r.original_type}" for r in records
    ]
    return f"{len(records)} records: " + "; ".join(parts)


def masked_fields(msg: Message, dialect: str = "terminal") -> dict[str, str]:
    """JSON-ready field values (keys as strings, MTI under ``"mti"``), masked."""
    out = {"mti": msg.mti}
    for n in sorted(msg.fields):
        out[str(n)] = _mask_value(msg, n, msg.fields[n], dialect)
    return out


def unmasked_fields(msg: Message) -> dict[str, str]:
    """JSON-ready field values with nothing hidden: for test data only (``--unmasked``)."""
    out = {"mti": msg.mti}
    for n in sorted(msg.fields):
        v = msg.fields[n]
        out[str(n)] = v.hex().upper() if isinstance(v, bytes) else v
    return out


def _table(dialect: str) -> DialectTable:
    if dialect == "issuer":
        from codec import issuer

        return issuer.TABLE
    from codec import terminal

    return terminal.TABLE


def format_message(msg: Message, dialect: str = "terminal") -> str:
    """One readable block: a title line, then one line per field with its description."""
    table = _table(dialect)
    desc = {f.number: f.desc for f in table.fields}
    title = f"{msg.mti} ({dialect})"
    if dialect == "terminal":
        from codec.txntypes import identify

        with contextlib.suppress(CodecError):  # an unknown type still dumps, just untitled
            title = f"{msg.mti} {identify(msg).name} ({dialect})"
    lines = [title]
    for key, value in masked_fields(msg, dialect).items():
        if key == "mti":
            continue
        n = int(key)
        lines.append(f"  {n:>3}  {desc.get(n, ''):<34} {value}")
    return "\n".join(lines)
