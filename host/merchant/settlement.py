"""Merchant settlement: after cut-over, each merchant's settled transactions of a business date
become one settlement record.

* What counts: the journal's approved debits (the registry's ``settles = "debit"`` types:
  purchase, completion, completion advice, transfer, the QR sales) and credits (refund) of the
  business date — the same rule as batch totals. A voided or reversed
  sale is no longer 'approved' and does not count.
* gross = debits - credits; fees per payment channel (card, qr): a channel's fee = its gross
  x its rate / 100 rounded HALF UP to the fen, once per merchant, date and channel
  (``merchant_records.fee_for``); fee = the channels' fees added; net = gross - fee. Each
  channel's line (counts, amounts, rate, fee) is kept with the record.
* Cycle: T1 (default) pays on the next calendar day at ``fee_rate`` (cards) and
  ``qr_fee_rate`` (QR); D0 pays on the business date itself (funds advanced the same day) at
  ``d0_fee_rate`` and ``qr_d0_fee_rate``.
* Minimum payout: balance = net + what the previous record carried over; a balance below the
  merchant's ``min_payout`` (or not positive) is carried over to the next run instead of paid.
  Merchants with a carried balance get a record on each run date even without sales.
* Idempotent and restartable: each merchant's record is created in its own transaction with a
  unique (merchant, business date) key; an existing record is never recomputed. A run that
  crashed between merchants is simply run again: the records written stay as they are, the
  missing ones are written, and the result is the same as one uninterrupted run. Run dates in
  order (a record's carry-in is the latest earlier record's carry-out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import structlog

from host.clock import journal_date
from host.config import Settings
from host.merchant.operators import effective_terms

log = structlog.get_logger("poshost.merchant_settlement")


class SettlementRefused(ValueError):
    """The date cannot be settled yet (its business day is not over)."""


def payout_date(day: dt.date, cycle: str) -> dt.date:
    return day + dt.timedelta(days=1) if cycle == "T1" else day


def run_settlement(
    store: Any,
    settings: Settings,
    day: dt.date,
    *,
    today: dt.date | None = None,
    after_each: Callable[[Any], None] | None = None,
) -> list[Any]:
    """Settle every candidate merchant of ``business_date`` (a SyncStore); returns the records
    in merchant order. ``today`` is the current business date: a date not before it is
    refused (cut-over first). ``after_each`` is called after each merchant's record is durable
    (tests use it to crash a run in the middle)."""
    business_date = journal_date(day)
    if today is not None and day >= today:
        raise SettlementRefused(
            f"business date {business_date} is not closed yet (today is {journal_date(today)})"
        )
    records = []
    for mid in store.settlement_candidates(business_date):
        terms = effective_terms(settings.merchant, store.get_merchant_terms(mid))
        rate = terms.d0_fee_rate if terms.cycle == "D0" else terms.fee_rate
        record = store.settle_merchant(
            mid,
            business_date,
            cycle=terms.cycle,
            fee_rate=rate,
            min_payout=terms.min_payout,
            payout_date=journal_date(payout_date(day, terms.cycle)),
            channel_rates=terms.channel_rates(),
        )
        log.info("merchant_settled", mid=mid, business_date=business_date, cycle=record.cycle,
                 gross=record.gross, fee=record.fee, net=record.net, payout=record.payout,
                 carried_out=record.carried_out)  # fmt: skip
        records.append(record)
        if after_each is not None:
            after_each(record)
    return records
