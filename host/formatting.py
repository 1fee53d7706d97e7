"""Money, time and plain values as people read them, the same way in every command and report.

Amounts live in minor units (fen) everywhere in the code and in ``--json`` output, because an
integer is what a reconciliation script can add up without rounding. People read
``1,234.56 CNY``: the same number, the currency's decimals, and the currency by its letters.
Times are stored as UTC epoch milliseconds; people read them in their own time zone with the
year, since a slip or a report is read months later. Nothing here imports the rest of the host,
so the terminal emulator and the load and certification tools use it too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from codec import txntypes

# ISO 4217 numeric code -> (alphabetic code, minor-unit exponent), for the currencies a
# UnionPay acquirer meets; anything else prints as its numeric code with two decimals.
CURRENCIES: Mapping[str, tuple[str, int]] = {
    "156": ("CNY", 2),
    "344": ("HKD", 2),
    "446": ("MOP", 2),
    "840": ("USD", 2),
    "978": ("EUR", 2),
    "826": ("GBP", 2),
    "392": ("JPY", 0),
    "410": ("KRW", 0),
    "702": ("SGD", 2),
}
_BY_LETTERS = {letters: exp for letters, exp in CURRENCIES.values()}
_AMOUNT = re.compile(r"^(-?)(\d{1,3}(?:,\d{3})*)(?:\.(\d+))? ([A-Z0-9]{3})$")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def currency(code: str | None = "156") -> tuple[str, int]:
    """(letters, exponent) for a numeric or alphabetic ISO 4217 code; CNY when not given."""
    code = (code or "156").strip()
    if code in CURRENCIES:
        return CURRENCIES[code]
    if code in _BY_LETTERS:
        return code, _BY_LETTERS[code]
    return code, 2


def format_amount(minor: int, code: str | None = "156") -> str:
    """``-1234`` -> ``-12.34 CNY``: sign first, thousands grouped, the currency's decimals."""
    letters, exponent = currency(code)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(int(minor)), 10**exponent)
    text = f"{whole:,}" + (f".{part:0{exponent}d}" if exponent else "")
    return f"{sign}{text} {letters}"


def parse_amount(text: str) -> tuple[int, str]:
    """The inverse of :func:`format_amount`: ``"-12.34 CNY"`` -> ``(-1234, "CNY")``."""
    m = _AMOUNT.match(text.strip())
    if m is None:
        raise ValueError(f"not an amount like 12.34 CNY: {text!r}")
    sign, whole, part, letters = m.groups()
    _, exponent = currency(letters)
    part = part or ""
    if len(part) != exponent:
        raise ValueError(f"{letters} has {exponent} decimals: {text!r}")
    minor = int(whole.replace(",", "")) * 10**exponent + (int(part) if part else 0)
    return (-minor if sign else minor), letters


def signed_amount(minor: int, txn_type: str) -> int:
    """Money going back to the card (void, refund, cancel) is shown negative on slips and
    reports, so a column of amounts adds up to what the merchant is paid."""
    back_to_card = (*txntypes.CREDITS, *txntypes.UNDOING, "reversal")
    return -abs(minor) if txn_type in back_to_card else minor


def local_time(moment: dt.datetime | int | float | None, tz: dt.tzinfo | None = None) -> str:
    """A datetime or UTC epoch milliseconds as ``2026-12-01 14:03:05`` in local time (``tz``
    for tests); a naive datetime is taken as UTC, as the journal stores it."""
    if moment is None:
        return "-"
    if isinstance(moment, int | float):
        moment = dt.datetime.fromtimestamp(moment / 1000, dt.UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(tz).strftime(TIME_FORMAT)


def business_date(yyyymmdd: str | None) -> str:
    """``20261201`` -> ``2026-12-01``; anything else as given."""
    text = (yyyymmdd or "").strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or "-"


def terminal_time(mmdd: str | None, hhmmss: str | None, today: dt.date | None = None) -> str:
    """Fields 13 and 12 of a response (no year on the wire) with the year a slip needs: the
    year that puts the date nearest to today (a slip printed just after New Year for a sale of
    31 December gets last year's)."""
    mmdd, hhmmss = (mmdd or "").strip(), (hhmmss or "").strip()
    if len(mmdd) != 4 or not mmdd.isdigit():
        return "-"
    today = today or dt.date.today()
    year = today.year
    try:
        gap = dt.date(year, int(mmdd[:2]), int(mmdd[2:])) - today
        if gap > dt.timedelta(days=183):
            year -= 1
        elif gap < -dt.timedelta(days=183):
            year += 1
    except ValueError:  # 29 February of a common year, or garbage: print the digits we got
        pass
    clock = f" {hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:6]}" if len(hhmmss) == 6 else ""
    return f"{year}-{mmdd[:2]}-{mmdd[2:]}{clock}"


def plain(value: object) -> str:
    """A value for a table cell without Python's spelling: yes/no, comma lists, '-' for none."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(plain(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items()) or "-"
    return str(value)
