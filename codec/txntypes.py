"""Transaction-type lookup: a table (``specs/transactions.toml``), not an if-chain.

Flows are chosen by name, so the mapping from wire fields to a name lives in data and is
checked once at import (duplicate keys are refused). Lookups accept requests and responses.
"""

from __future__ import annotations

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
        t = TxnType(row["name"], row["mti"][0], row["mti"][1], row["reversible"], False)
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
