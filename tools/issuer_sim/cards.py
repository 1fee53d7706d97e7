"""The card database file (TOML) and its values.

File format (``[[card]]`` tables, one per card)::

    [[card]]
    pan = "6222020000000001"
    expiry = "3012"            # YYMM
    status = "active"          # active | lost | stolen | blocked
    pvki = 1                   # PIN verification key index (0-6)
    pvv = "4821"               # Visa PVV under the issuer's PVK - never a clear PIN
    max_pin_tries = 3
    currency = "156"
    balance = 1000000          # minor units (fen)
    daily_limit = 500000       # minor units; 0 = no limit

The PIN try counter starts at 0 (an optional ``pin_tries`` sets it).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from pathlib import Path

import attrs

STATUSES = ("active", "lost", "stolen", "blocked")


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits; the rest as '*'."""
    if len(pan) <= 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _check_status(_inst, _attr, value: str) -> None:
    if value not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {value!r}")


def _check_digits(n_min: int, n_max: int):
    def check(_inst, attr, value: str) -> None:
        if not (value.isdigit() and n_min <= len(value) <= n_max):
            raise ValueError(f"{attr.name} must be {n_min}..{n_max} digits, not {value!r}")

    return check


@attrs.frozen
class Card:
    pan: str = attrs.field(validator=_check_digits(12, 19))
    expiry: str = attrs.field(validator=_check_digits(4, 4))
    pvv: str = attrs.field(validator=_check_digits(4, 4))
    status: str = attrs.field(default="active", validator=_check_status)
    pvki: int = 1
    pin_tries: int = 0
    max_pin_tries: int = 3
    currency: str = attrs.field(default="156", validator=_check_digits(3, 3))
    balance: int = 0
    daily_limit: int = 0
    label: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> Card:
        names = {a.name for a in attrs.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown card field(s): {', '.join(sorted(unknown))}")
        values = dict(d)
        for key in ("pan", "expiry", "pvv", "currency"):
            if key in values:
                values[key] = str(values[key])
        return cls(**values)

    def to_dict(self) -> dict:
        return attrs.asdict(self)


def load_cards(path: str | Path) -> list[Card]:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    cards = [Card.from_dict(entry) for entry in data.get("card", [])]
    seen: set[str] = set()
    for card in cards:
        if card.pan in seen:
            raise ValueError(f"duplicate card {mask_pan(card.pan)} in {path}")
        seen.add(card.pan)
    return cards


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def format_card(card: Card) -> str:
    lines = ["[[card]]"]
    defaults = Card(pan="000000000000", expiry="0000", pvv="0000")
    for a in attrs.fields(Card):
        value = getattr(card, a.name)
        if a.name in ("label", "pin_tries") and value == getattr(defaults, a.name):
            continue
        lines.append(f"{a.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def format_cards(cards: Iterable[Card], header: str = "") -> str:
    parts = [header] if header else []
    parts.extend(format_card(c) for c in cards)
    return "\n".join(parts)


def append_card(path: str | Path, card: Card) -> None:
    path = Path(path)
    existing = load_cards(path) if path.exists() else []
    if any(c.pan == card.pan for c in existing):
        raise ValueError(f"card {mask_pan(card.pan)} already in {path}")
    text = path.read_text() if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(text + ("\n" if text else "") + format_card(card))
