"""One business date: a ``datetime.date`` everywhere in the host; its text forms (YYYYMMDD in
the journal's SQL, MMDD in field 15) are made and read in host/clock.py only. And the steps'
per-process state is typed attributes of the running host, not a dict shared by string keys."""

import datetime as dt
import pathlib
import re

import attrs
from hypothesis import given
from hypothesis import strategies as st

from host.app import Host
from host.clock import journal_date, parse_date, settlement_mmdd

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_only_the_clock_writes_or_reads_the_journals_date_text():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "host").rglob("*.py")
        if path.name != "clock.py" and re.search(r"%Y%m%d|\.yyyymmdd\b", path.read_text())
    ]
    assert offenders == []


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_the_journals_text_of_a_date_reads_back_as_that_date(day):
    text = journal_date(day)
    assert len(text) == 8 and text.isdigit()
    assert parse_date(text) == day
    assert settlement_mmdd(day) == text[4:]


def test_the_host_keeps_no_untyped_caches():
    names = {f.name for f in attrs.fields(Host)}
    assert "caches" not in names
    assert {"risk", "terms", "sessions", "batches", "business_day"} <= names
