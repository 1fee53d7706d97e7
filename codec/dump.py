"""Masked, human-readable dumps of messages, for logs and the ``poshost decode`` command.

Masking is the default and not optional here: PAN as first 6 + last 4, and only the length of
tracks (35, 36), the PIN block (52), IC data (55) and field 62 (working keys under the TMK, or
a DUKPT KSN) — except that a TUSN in 62, not being key material, is shown. PANs inside batch
upload records (48 of a 0320) are masked as well; in the issuer dialect 48 carries the ZPK
under the ZMK during key exchange and is shown as a length only. 48 of a financial terminal
message (01xx, 02xx, 04xx) holds a card number or a payment code: a transfer's payee PAN (the
registry's ``payee`` field; 103 on the issuer side) or a QR payment code (docs/qr.md). It is
masked exactly like 2, in field dumps and hex traces, whether or not the message could be
identified.
"""

from __future__ import annotations

import contextlib
import re

from codec.dialect import DialectTable
from codec.errors import CodecError
from codec.message import FieldValue, Message
from codec.subfields import parse_batch_upload, parse_tusn
from codec.txntypes import PAYEE_FIELDS

HIDDEN = frozenset({35, 36, 45, 52, 55})
FINANCIAL_CLASSES = ("01", "02", "04")
# 48 of a financial message: a QR payment code, or (with any other payee field of the registry)
# a transfer's payee
FINANCIAL_PAN_FIELDS = PAYEE_FIELDS | {48}
ISSUER_PAN_FIELDS = frozenset({2, 103})  # 103: account identification 2, a transfer's payee


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


def is_pan_field(msg: Message, n: int, dialect: str = "terminal") -> bool:
    """Does field ``n`` of ``msg`` hold a card number (the card's own, a payee's) or a QR
    payment code?"""
    if dialect == "issuer":
        return n in ISSUER_PAN_FIELDS
    return n == 2 or (n in FINANCIAL_PAN_FIELDS and msg.mti[:2] in FINANCIAL_CLASSES)


def _mask_value(msg: Message, n: int, v: FieldValue, dialect: str) -> str:
    if isinstance(v, str) and is_pan_field(msg, n, dialect):
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


def _hex_hidden(msg: Message, n: int, v: FieldValue) -> bool:
    """Fields whose bytes never appear in a hex dump: tracks, PIN block, IC data, keys or a TUSN
    in 62, a sign-on password in 63 and batch-upload records (clear PANs) in 48."""
    if n in HIDDEN or n == 62:
        return True
    if n == 48:
        return msg.mti in ("0320", "0330")
    return n == 63 and msg.mti.startswith("08") and len(str(v).strip()) > 3


def _encodings(v: FieldValue) -> list[str]:
    """How a field value can show up in the hex of a payload: as binary, as packed BCD (track 2
    separators become D) or as ASCII."""
    if isinstance(v, bytes):
        return [v.hex().upper()]
    text = str(v)
    out = [text.encode("latin-1", "replace").hex().upper()]
    bcd = text.upper().replace("=", "D")
    if bcd and all(c in "0123456789D" for c in bcd):
        out.append(bcd)
    return out


def masked_hex(
    payload: bytes, msg: Message | None, width: int = 32, dialect: str = "terminal"
) -> str:
    """The payload as offset-prefixed hex lines, for someone comparing bytes with a terminal
    vendor's trace, with the bytes of the PAN (all but first 6 and last 4 digits), tracks, PIN
    block, IC data, keys and passwords replaced by asterisks (a payee's PAN like the card's).
    Without a decoded message (a frame that did not decode) every run of 13 or more decimal
    nibbles, which could be a packed PAN, is masked the same way."""
    text = payload.hex().upper()
    if msg is None:
        text = re.sub(r"\d{13,}", lambda m: mask_pan(m.group()), text)
    else:
        for n, v in msg.fields.items():
            if isinstance(v, str) and len(v) >= 12 and is_pan_field(msg, n, dialect):
                for enc in _encodings(v):
                    if enc == v:  # packed BCD: keep the digits a masked PAN shows
                        text = text.replace(enc, mask_pan(v))
                    elif len(enc) >= 8:
                        text = text.replace(enc, "*" * len(enc))
            elif v not in (None, "", b"") and _hex_hidden(msg, n, v):
                for enc in _encodings(v):
                    if len(enc) >= 4:
                        text = text.replace(enc, "*" * len(enc))
    lines = [f"{i // 2:04X}  {text[i : i + width]}" for i in range(0, len(text), width)]
    return "\n".join(lines)
