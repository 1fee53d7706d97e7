"""The rules file: ordered ``[[rule]]`` tables, first match wins.

Match keys (all optional; a rule without any matches everything; a list means "any of")::

    mti = "0200"                       # or ["0200", "0100"]
    processing_code = "00"             # prefix of field 3 ("000000" exact, "00" any purchase-ish)
    pan = "6222020000000001"           # exact PAN(s)
    bin = "622202"                     # PAN prefix(es)
    terminal = "TERM0001"              # field 41
    amount = 1234                      # exact amount in minor units
    amount_min = 100000                # inclusive range
    amount_max = 200000
    amount_ends_with = "51"            # the digits of the amount end with these ("1.51" -> "151")
    probability = 0.25                 # match only this share of otherwise matching requests

Actions (at least one)::

    response = "51"                    # answer with this code at once, no ledger effect
    delay_ms = 3000                    # or delay = "uniform:500-4000" (see settings.Latency)
    drop = true                        # never answer
    close = true                       # close the connection instead of answering

A rule with only a delay delays, then processing goes on (Python hook, then the ledger).
"""

from __future__ import annotations

import random
import re
import tomllib
from pathlib import Path

import attrs

from tools.issuer_sim.settings import Latency

MATCH_KEYS = {
    "mti",
    "processing_code",
    "pan",
    "bin",
    "terminal",
    "amount",
    "amount_min",
    "amount_max",
    "amount_ends_with",
    "probability",
}
ACTION_KEYS = {"response", "delay_ms", "delay", "drop", "close"}
RULE_HEADER = re.compile(r"\s*\[\[\s*rule\s*\]\]")
SINGLE_RULE_HEADER = re.compile(r"\s*\[\s*rule\s*\]")
TEXT_KEYS = ("mti", "processing_code", "pan", "bin", "terminal")
NUMBER_KEYS = ("amount", "amount_min", "amount_max", "delay_ms", "probability")


def _strs(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


def _check_types(name: str, raw: dict) -> None:
    """Refuse values that would silently never match: ``mti = 200`` is the number 200, which
    no message's MTI ("0200") equals; a PAN or BIN as a number loses nothing but is refused
    the same way, so every match on wire text is written as text."""
    for key in TEXT_KEYS:
        value = raw.get(key)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is not None and not isinstance(v, str):
                raise ValueError(
                    f"rule {name!r}: {key} = {v!r} must be a string in quotes"
                    + (', e.g. mti = "0200"' if key == "mti" else "")
                )
    for v in _strs(raw.get("mti")) or ():
        if len(v) != 4 or not v.isdigit():
            raise ValueError(f'rule {name!r}: mti {v!r} is not 4 digits like "0200"')
    for key in NUMBER_KEYS:
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise ValueError(f"rule {name!r}: {key} = {v!r} must be a number")
    for key in ("drop", "close"):
        if key in raw and not isinstance(raw[key], bool):
            raise ValueError(f"rule {name!r}: {key} must be true or false")


def _field(msg, n: int) -> str:
    v = msg.get(n)
    if v is None:
        return ""
    return v.decode("ascii", "replace") if isinstance(v, bytes) else str(v)


@attrs.frozen
class Rule:
    name: str = ""
    mti: tuple[str, ...] | None = None
    processing_code: tuple[str, ...] | None = None
    pan: tuple[str, ...] | None = None
    bin: tuple[str, ...] | None = None
    terminal: tuple[str, ...] | None = None
    amount: int | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    amount_ends_with: str | None = None
    probability: float = 1.0
    response: str | None = None
    delay: Latency | None = None
    drop: bool = False
    close: bool = False

    @classmethod
    def from_dict(cls, raw: dict, index: int = 0) -> Rule:
        if not isinstance(raw, dict):
            raise ValueError(f"rule {index + 1} is not a table")
        unknown = set(raw) - MATCH_KEYS - ACTION_KEYS - {"name"}
        name = str(raw.get("name", f"rule {index + 1}"))
        if unknown:
            raise ValueError(f"rule {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
        if not set(raw) & ACTION_KEYS:
            raise ValueError(f"rule {name!r}: no action (response, delay_ms/delay, drop or close)")
        _check_types(name, raw)
        delay = None
        if "delay_ms" in raw:
            delay = Latency.parse(float(raw["delay_ms"]))
        if "delay" in raw:
            delay = Latency.parse(raw["delay"])
        response = raw.get("response")
        if response is not None and (len(str(response)) != 2 or not str(response).isalnum()):
            raise ValueError(
                f"rule {name!r}: response must be a 2-character code, not {response!r}"
            )

        def opt_int(key):
            return None if raw.get(key) is None else int(raw[key])

        ends = raw.get("amount_ends_with")
        return cls(
            name=name,
            mti=_strs(raw.get("mti")),
            processing_code=_strs(raw.get("processing_code")),
            pan=_strs(raw.get("pan")),
            bin=_strs(raw.get("bin")),
            terminal=_strs(raw.get("terminal")),
            amount=opt_int("amount"),
            amount_min=opt_int("amount_min"),
            amount_max=opt_int("amount_max"),
            amount_ends_with=None if ends is None else str(ends),
            probability=float(raw.get("probability", 1.0)),
            response=None if response is None else str(response),
            delay=delay,
            drop=bool(raw.get("drop", False)),
            close=bool(raw.get("close", False)),
        )

    def matches(self, msg, rng: random.Random) -> bool:
        if self.mti is not None and msg.mti not in self.mti:
            return False
        if self.processing_code is not None and not _field(msg, 3).startswith(self.processing_code):
            return False
        pan = _field(msg, 2)
        if self.pan is not None and pan not in self.pan:
            return False
        if self.bin is not None and not (pan and pan.startswith(self.bin)):
            return False
        if self.terminal is not None and _field(msg, 41).strip() not in self.terminal:
            return False
        if (
            self.amount is not None
            or self.amount_min is not None
            or self.amount_max is not None
            or self.amount_ends_with is not None
        ):
            raw = _field(msg, 4)
            if not raw.isdigit():
                return False
            amount = int(raw)
            if self.amount is not None and amount != self.amount:
                return False
            if self.amount_min is not None and amount < self.amount_min:
                return False
            if self.amount_max is not None and amount > self.amount_max:
                return False
            if self.amount_ends_with is not None and not str(amount).zfill(2).endswith(
                self.amount_ends_with
            ):
                return False
        return not (self.probability < 1.0 and rng.random() >= self.probability)


class RulesError(ValueError):
    """A rules file that cannot be used, with the file, the line and the rule in the message."""


def parse_rules(data: dict, lines: list[int] | None = None, path: str = "rules") -> list[Rule]:
    """Rules from parsed TOML. ``lines`` holds the line of each ``[[rule]]`` header, so an
    error can say where the rule is."""
    unknown = set(data) - {"rule"}
    if unknown:
        raise RulesError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    raw_rules = data.get("rule", [])
    if isinstance(raw_rules, dict):
        raise RulesError(
            f"{path}: [rule] declares a single table; write each rule as [[rule]] (an array"
            " of tables, first match wins)"
        )
    if not isinstance(raw_rules, list):
        raise RulesError(f"{path}: 'rule' must be [[rule]] tables")
    rules = []
    for i, raw in enumerate(raw_rules):
        where = f"{path}:{lines[i]}" if lines and i < len(lines) else f"{path}: rule {i + 1}"
        try:
            rules.append(Rule.from_dict(raw, i))
        except (ValueError, TypeError) as e:
            raise RulesError(f"{where}: {e}") from None
    return rules


def load_rules(path: str | Path) -> list[Rule]:
    """Read and check a rules file; RulesError (file, line, rule, reason) on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RulesError(f"{path}: cannot read: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulesError(f"{path}: not valid TOML: {e}") from None
    numbered = list(enumerate(text.splitlines(), 1))
    if isinstance(data.get("rule"), dict):
        at = next((i for i, line in numbered if SINGLE_RULE_HEADER.match(line)), 0)
        raise RulesError(
            f"{path}:{at}: [rule] declares a single table; write each rule as [[rule]] (an"
            " array of tables, first match wins)"
        )
    lines = [i for i, line in numbered if RULE_HEADER.match(line)]
    return parse_rules(data, lines, str(path))


def first_match(rules: list[Rule], msg, rng: random.Random) -> Rule | None:
    for rule in rules:
        if rule.matches(msg, rng):
            return rule
    return None
