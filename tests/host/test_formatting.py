"""Money and time are shown one way everywhere (host/formatting.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.formatting import (
    business_date,
    format_amount,
    local_time,
    parse_amount,
    plain,
    signed_amount,
    terminal_time,
)

CODES = st.sampled_from(["156", "840", "392", "CNY", "JPY", "999"])


@given(st.integers(min_value=-(10**15), max_value=10**15), CODES)
def test_amount_round_trips(minor, code):
    text = format_amount(minor, code)
    value, letters = parse_amount(text)
    assert value == minor
    assert text.endswith(" " + letters)


@given(st.integers(min_value=1, max_value=10**12))
def test_negative_amount_is_the_positive_with_a_minus(minor):
    assert format_amount(-minor) == "-" + format_amount(minor)


def test_examples():
    assert format_amount(1234) == "12.34 CNY"
    assert format_amount(0) == "0.00 CNY"
    assert format_amount(-5) == "-0.05 CNY"
    assert format_amount(123456789) == "1,234,567.89 CNY"
    assert format_amount(500, "392") == "500 JPY"
    assert format_amount(100, "999") == "1.00 999"


@pytest.mark.parametrize("bad", ["12.3 CNY", "12.34", "1,23.00 CNY", "12 CNY", "-x CNY"])
def test_parse_refuses_what_format_never_writes(bad):
    with pytest.raises(ValueError):
        parse_amount(bad)


def test_credits_are_negative():
    assert signed_amount(500, "void") == -500
    assert signed_amount(500, "refund") == -500
    assert signed_amount(500, "purchase") == 500


def test_local_time_has_the_year_in_the_given_zone():
    tz = dt.timezone(dt.timedelta(hours=8))
    ms = int(dt.datetime(2026, 12, 31, 20, 0, 5, tzinfo=dt.UTC).timestamp() * 1000)
    assert local_time(ms, tz) == "2027-01-01 04:00:05"
    assert local_time(None) == "-"


def test_terminal_time_takes_the_nearest_year():
    assert terminal_time("1231", "235959", dt.date(2027, 1, 2)) == "2026-12-31 23:59:59"
    assert terminal_time("0102", "080000", dt.date(2027, 1, 2)) == "2027-01-02 08:00:00"
    assert terminal_time("0103", "", dt.date(2026, 12, 31)) == "2027-01-03"
    assert terminal_time("", "") == "-"


def test_plain_values_have_no_python_spelling():
    assert plain(True) == "yes"
    assert plain(("void", "refund")) == "void, refund"
    assert plain(None) == "-"
    assert plain(()) == "-"
    assert business_date("20261201") == "2026-12-01"
