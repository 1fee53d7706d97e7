"""The transaction registry (``specs/transactions.toml``): how a type is identified on the wire,
and every other fact about it that the host needs (reversible, journalled, settlement bucket,
what it undoes, risk and velocity classes, the field of a transfer's payee).

Flows are chosen by name, so the mapping from wire fields to a name lives in data and is
checked once at import (duplicate keys are refused). Lookups accept requests and responses.
Modules never keep their own lists of type names: they ask this one (``names``, the sets
below), and SQL gets its ``IN (...)`` lists from ``sql_list``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from codec.errors import CodecError
from codec.message import Message
from specs import load_toml


class UnknownTransaction(CodecError):
    """No row of the table matches; the reason lists the fields that were looked at."""


@attrs.frozen
class TxnType:
    name: str
    request_mti: str
    response_mti: str
    reversible: bool
    management: bool
    type_code: str = ""  # 60.1 of a financial type ("22" purchase)
    processing: str = ""  # the transaction code: the first two digits of field 3
    condition: str = ""  # field 25
    journal: bool = False
    settles: str | None = None  # "debit" | "credit"
    undoes: str | None = None
    completes: str | None = None
    risk: bool = False
    velocity: bool = False
    card_debit: bool = False
    payee: int | None = None  # the field with a second card's PAN (a transfer's payee)
    channel: str = "card"  # "card" | "qr": how the customer pays (docs/qr.md)
    awaits_payer: bool = False  # stays pending while the customer pays (a QR order)


_Financial = dict[tuple[str, str, str, str], TxnType]
_Management = dict[tuple[str, str], TxnType]


def _load() -> tuple[_Financial, _Management, dict[str, TxnType], frozenset[str]]:
    data = load_toml("transactions.toml")
    financial: _Financial = {}
    management: _Management = {}
    by_name: dict[str, TxnType] = {}

    def add(table: dict[Any, TxnType], key: tuple[str, ...], t: TxnType) -> None:
        if key in table:
            raise ValueError(
                f"transactions.toml: {key} maps to both {table[key].name} and {t.name}"
            )
        table[key] = t
        by_name[t.name] = t

    for row in data["financial"]:
        if row.get("channel", "card") not in ("card", "qr"):
            raise ValueError(f"transactions.toml: {row['name']}: channel is card or qr")
        if row.get("settles") not in (None, "debit", "credit"):
            raise ValueError(f"transactions.toml: {row['name']}: settles is debit or credit")
        if not isinstance(row.get("payee", 0), int) or isinstance(row.get("payee"), bool):
            raise ValueError(f"transactions.toml: {row['name']}: payee is a field number")
        t = TxnType(
            row["name"], row["mti"][0], row["mti"][1], row["reversible"], False,
            type_code=row["type"], processing=row["processing"], condition=row["condition"],
            journal=row.get("journal", False),
            settles=row.get("settles"), undoes=row.get("undoes"), completes=row.get("completes"),
            risk=row.get("risk", False),
            velocity=row.get("velocity", False), card_debit=row.get("card_debit", False),
            payee=row.get("payee"),
            channel=row.get("channel", "card"), awaits_payer=row.get("awaits_payer", False),
        )  # fmt: skip
        add(financial, (t.request_mti, row["processing"], row["condition"], row["type"]), t)
    for row in data["management"]:
        t = TxnType(row["name"], row["mti"][0], row["mti"][1], False, True)
        for nmc in row["nmc"]:
            add(management, (t.request_mti, nmc), t)
    reversal_mtis = set()
    for row in data["reversal"]:
        t = TxnType(row["name"], row["mti"][0], row["mti"][1], False, False)
        by_name[t.name] = t
        reversal_mtis |= {row["mti"][0], row["repeat_mti"]}
    return financial, management, by_name, frozenset(reversal_mtis)


_FINANCIAL, _MANAGEMENT, TYPES, _REVERSAL_MTIS = _load()
REVERSAL = TYPES["reversal"]
REQUEST_MTIS = frozenset(t.request_mti for t in TYPES.values()) | _REVERSAL_MTIS
"""The MTIs a terminal may send as a request; anything else (a response such as 0210, an
unknown class such as 9999) never reaches a flow."""
_BY_FIELDS = {(k[1], k[2], k[3]): t for k, t in _FINANCIAL.items()}


def names(predicate: Callable[[TxnType], bool]) -> tuple[str, ...]:
    """The names of the types a predicate selects, in the registry's order."""
    return tuple(t.name for t in TYPES.values() if predicate(t))


def sql_list(type_names: Iterable[str]) -> str:
    """``('a', 'b')`` for an SQL ``IN``: only names of this registry, never user input."""
    chosen = tuple(type_names)
    unknown = [n for n in chosen if n not in TYPES]
    if unknown or not chosen:
        raise ValueError(f"not registry type names: {unknown or chosen}")
    return "(" + ", ".join(f"'{n}'" for n in chosen) + ")"


JOURNALLED = names(lambda t: t.journal)
MANAGEMENT_NAMES = names(lambda t: t.management)  # rows of the transaction journal
REVERSIBLE = names(lambda t: t.reversible)
DEBITS = names(lambda t: t.settles == "debit")  # approved ones count as debits
CREDITS = names(lambda t: t.settles == "credit")
SETTLED = DEBITS + CREDITS
UNDOING = names(lambda t: t.undoes is not None)  # approval marks the original 'voided'
COMPLETING = names(lambda t: t.completes == "preauth")  # what completes a pre-authorization
PREAUTH_ENDS = names(lambda t: t.undoes == "preauth") + COMPLETING
FOLLOW_UPS = UNDOING + COMPLETING + CREDITS  # name their original (61, 37)
UNDOING_SETTLED = names(lambda t: t.undoes is not None and TYPES[t.undoes].settles is not None)
RISK_CHECKED = names(lambda t: t.risk)
VELOCITY = names(lambda t: t.velocity)
CARD_DEBITS = names(lambda t: t.card_debit)
PAYEE_FIELDS = frozenset(t.payee for t in TYPES.values() if t.payee is not None)
"""Fields that carry a payee's PAN in some financial type: masked like 2 in every financial
message (01xx, 02xx, 04xx) whatever its type, so an unidentifiable request masks them too."""
QR = names(lambda t: t.channel == "qr")  # the QR wallet's own rows (docs/qr.md)
QR_SALES = names(lambda t: t.channel == "qr" and t.settles == "debit")
AWAITING_PAYER = names(lambda t: t.awaits_payer)  # pending until paid, closed, or expired
BY_TYPE_CODE = {t.type_code: t.name for t in TYPES.values() if t.settles}
"""60.1 of an uploaded batch record -> the journal type it names."""


def _request_mti(mti: str) -> str:
    # responses (third digit odd) look up under their request MTI
    return f"{int(mti) - 10:04d}" if int(mti[2]) % 2 else mti


def identify(msg: Message) -> TxnType:
    """The named type of a terminal request or response, or UnknownTransaction."""
    mti = _request_mti(msg.mti)
    if mti in _REVERSAL_MTIS:
        return REVERSAL
    f60 = msg.get(60)
    if not isinstance(f60, str) or len(f60) < 2:
        raise UnknownTransaction(f"MTI {msg.mti}: field 60 missing or too short", field=60)
    t1 = f60[:2]
    if t1 == "00":
        nmc = f60[8:11]
        t = _MANAGEMENT.get((mti, nmc))
        if t is None:
            raise UnknownTransaction(
                f"no management message for MTI {msg.mti}, 60.3={nmc or '(absent)'}", field="60.3"
            )
        return t
    p3, c25 = msg.get(3), msg.get(25)
    key = (mti, p3[:2] if isinstance(p3, str) else "", c25 if isinstance(c25, str) else "", t1)
    t = _FINANCIAL.get(key)
    if t is None:
        raise UnknownTransaction(
            f"no transaction type for MTI {msg.mti}, 3={p3!s}, 25={c25!s}, 60.1={t1}", field="mti"
        )
    return t


def identify_original(msg: Message) -> TxnType:
    """For a reversal (0400/0401 or its response): the reversible type it reverses."""
    if _request_mti(msg.mti) not in _REVERSAL_MTIS:
        raise UnknownTransaction(f"MTI {msg.mti} is not a reversal", field="mti")
    f60, p3, c25 = msg.get(60), msg.get(3), msg.get(25)
    if not (isinstance(f60, str) and isinstance(p3, str) and isinstance(c25, str)):
        raise UnknownTransaction("a reversal needs 3, 25 and 60 of the original", field=60)
    t = _BY_FIELDS.get((p3[:2], c25, f60[:2]))
    if t is None or not t.reversible:
        raise UnknownTransaction(
            f"reversal of nothing reversible: 3={p3}, 25={c25}, 60.1={f60[:2]}", field="60.1"
        )
    return t
