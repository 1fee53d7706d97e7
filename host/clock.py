"""Time for the host, injectable so tests can move days and cross cut-over deterministically."""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

import attrs


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware datetime."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@attrs.define
class FixedClock:
    """A clock that tests move by hand."""

    current: dt.datetime

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current = self.current + dt.timedelta(**delta)


# A business date is a ``datetime.date`` everywhere in the host. It becomes text only where it
# meets the journal's SQL (YYYYMMDD: ``journal_date`` / ``parse_date``) and the wire (field 15,
# MMDD: ``settlement_mmdd``).


def parse_date(yyyymmdd: str) -> dt.date:
    """A journal date (YYYYMMDD text) as a date."""
    return dt.datetime.strptime(yyyymmdd, "%Y%m%d").date()


def journal_date(day: dt.date) -> str:
    """A date as the journal keeps it (YYYYMMDD)."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def settlement_mmdd(day: dt.date) -> str:
    """A business date as field 15 (settlement date) carries it: MMDD."""
    return f"{day.month:02d}{day.day:02d}"


@attrs.frozen
class Moment:
    """One second of the host's clock, pre-formatted for the wire."""

    instant: dt.datetime
    local: dt.datetime
    business_date: dt.date
    hhmmss: str  # field 12
    mmdd: str  # field 13 (local calendar day; field 15 is the business date's)
    transmission: str  # field 7, UTC MMDDhhmmss


@attrs.frozen
class BusinessCalendar:
    """Maps wall-clock time to the business date, which advances at the cut-over time.

    A transaction at 23:30 with a 23:00 cut-over belongs to the next business date; settlement
    date (field 15, MMDD) is the business date.
    """

    timezone: ZoneInfo
    cutover: dt.time

    @classmethod
    def from_settings(cls, tz_name: str, cutover_hhmm: str) -> BusinessCalendar:
        hours, minutes = (int(part) for part in cutover_hhmm.split(":"))
        return cls(ZoneInfo(tz_name), dt.time(hours, minutes))

    def local(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(self.timezone)

    def business_date(self, instant: dt.datetime) -> dt.date:
        local = self.local(instant)
        if self.cutover != dt.time(0, 0) and local.time() >= self.cutover:
            return local.date() + dt.timedelta(days=1)
        return local.date()
