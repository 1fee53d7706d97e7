"""The business day: cut-over and the age of a terminal's open batch.

The business date comes from the injectable clock and the calendar (``acquirer.cutover``): a
request after the cut-over time belongs to the next business date, and field 15 (settlement
date) of its response says so. The host records each change of business date in the journal
(``business_day``) and logs it as a cut-over.

A batch stays open across cut-overs until the terminal settles it. One that is still open more
than ``flows.batch_max_days`` business days after it was opened is out of step: at its next use
the host closes it as 'unbalanced' with its own totals (the terminal may still settle it; a
matching 0500 then closes it as balanced), opens the next batch and answers 77 with "sign on
again", so the terminal learns the new batch number from the sign-on response (60.2).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import attrs
import structlog

from codec import responses as codes
from host.clock import journal_date, parse_date, settlement_mmdd
from host.flow.batch import OpenBatch, forget_batch, next_batch
from host.flow.engine import Decline, Exchange
from host.flow.steps import SIGN_ON_AGAIN, moment

if TYPE_CHECKING:
    from host.app import Host

log = structlog.get_logger("poshost.business_day")


@attrs.define
class BusinessDayRecord:
    """The business date this process last saw recorded in the journal: a cut-over is
    written once, by the first request of the new day, not looked up on every request."""

    recorded: dt.date | None = None


async def track_business_day(host: Host, today: dt.date | None = None) -> dt.date:
    """Today's business date; the first request after a cut-over records the new day."""
    today = today or host.business_date()
    if host.business_day.recorded != today:
        stored = await host.store.get_business_day()
        text = journal_date(today)
        if stored is None or stored.business_date != text:
            now_ms = int(host.now().timestamp() * 1000)
            await host.store.set_business_day(text, settlement_mmdd(today), now_ms)
            log.info("cutover", business_date=text, settlement_date=settlement_mmdd(today),
                     previous=stored.business_date if stored else None)  # fmt: skip
        host.business_day.recorded = today
    return today


async def check_business_day(host: Host, ex: Exchange) -> None:
    """After ``check_batch``: the terminal's open batch is known to the host and not too old."""
    today = await track_business_day(host, moment(host, ex).business_date)
    tid, batch = ex.terminal.tid, ex.terminal.current_batch
    known = host.batches.get(tid)
    if known is None or known.batch != batch:
        row = await host.store.open_batch(tid, batch, journal_date(today))
        known = OpenBatch(batch, parse_date(row.business_date), row.status)
        host.batches.put(tid, known)
    if known.status != "open":
        raise Decline(
            codes.SIGN_ON_AGAIN, f"batch {batch} is {known.status}", processing=SIGN_ON_AGAIN
        )
    max_days = host.settings.flows.batch_max_days
    age = (today - known.opened_on).days
    if age > max_days:
        totals = await host.store.batch_totals(tid, batch)
        following = next_batch(batch)
        await host.store.settle_batch(
            tid, batch, next_batch=following, business_date=journal_date(today),
            status="unbalanced", host_totals=totals, terminal_totals=None,
        )  # fmt: skip
        host.estate.forget_terminal(tid)
        forget_batch(host, tid)
        log.warning("batch_closed_by_age", tid=tid, batch=batch,
                    opened=journal_date(known.opened_on), age_days=age,
                    next_batch=following)  # fmt: skip
        raise Decline(
            codes.SIGN_ON_AGAIN, f"batch {batch} open for {age} days", processing=SIGN_ON_AGAIN
        )
