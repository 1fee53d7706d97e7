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

import structlog

from codec import responses as codes
from host.clock import parse_date
from host.flow.batch import forget_batch, next_batch
from host.flow.engine import Decline, Exchange
from host.flow.steps import SIGN_ON_AGAIN, moment

log = structlog.get_logger("poshost.business_day")


async def track_business_day(host, today: dt.date | None = None) -> dt.date:
    """Today's business date; the first request after a cut-over records the new day."""
    today = today or host.business_date()
    if host.caches.get("business_date") != today:
        stored = await host.store.get_business_day()
        text = today.strftime("%Y%m%d")
        if stored is None or stored.business_date != text:
            now_ms = int(host.now().timestamp() * 1000)
            await host.store.set_business_day(text, text[4:], now_ms)
            log.info("cutover", business_date=text, settlement_date=text[4:],
                     previous=stored.business_date if stored else None)  # fmt: skip
        host.caches["business_date"] = today
    return today


async def check_business_day(host, ex: Exchange) -> None:
    """After ``check_batch``: the terminal's open batch is known to the host and not too old."""
    today = await track_business_day(host, moment(host, ex).business_date)
    tid, batch = ex.terminal.tid, ex.terminal.current_batch
    key = ("batch", tid)
    cached = host.caches.get(key)
    if cached is None or cached[0] != batch:
        row = await host.store.open_batch(tid, batch, today.strftime("%Y%m%d"))
        opened_on = parse_date(row.business_date)
        cached = (batch, row.business_date, row.status, opened_on)
        host.caches[key] = cached
    _, opened, status, opened_on = cached
    if status != "open":
        raise Decline(codes.SIGN_ON_AGAIN, f"batch {batch} is {status}", processing=SIGN_ON_AGAIN)
    max_days = int(host.settings.get("flows.batch_max_days"))
    age = (today - opened_on).days
    if age > max_days:
        totals = await host.store.batch_totals(tid, batch)
        following = next_batch(batch)
        await host.store.settle_batch(
            tid, batch, next_batch=following, business_date=today.strftime("%Y%m%d"),
            status="unbalanced", host_totals=totals, terminal_totals=None,
        )  # fmt: skip
        host.estate.forget_terminal(tid)
        forget_batch(host, tid)
        log.warning("batch_closed_by_age", tid=tid, batch=batch, opened=opened, age_days=age,
                    next_batch=following)  # fmt: skip
        raise Decline(
            codes.SIGN_ON_AGAIN, f"batch {batch} open for {age} days", processing=SIGN_ON_AGAIN
        )
