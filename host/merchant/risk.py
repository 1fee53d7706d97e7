"""Risk limits: per-transaction minimum and maximum, the merchant's daily and monthly sales,
per-card velocity (count and amount in a sliding window) and the refund-to-sales ratio.

Where a limit comes from (each level overrides the one before, field by field):
``[risk]`` defaults in the config  <-  ``[risk.mcc."5411"]`` in the config  <-  the MCC row of
``risk_limits`` (``poshost estate limits set --mcc``)  <-  the merchant row (``--mid``).
A limit of 0 (or absent) is off.

Response codes: below the minimum 13; above the maximum, over the daily or monthly total, over
the card's amount in the window, over the refund ratio 61; over the card's count in the window
65. Every decline is a ``risk_events`` row and one ``risk_declined`` log line (masked PAN).

The hot path. A purchase must not pay several database round trips for its limits, so the
engine keeps running totals in memory:

* limit rows per merchant: read once (one query for both rows), kept ``ttl`` seconds;
* merchant totals (day, month, month's refunds): seeded by ONE aggregate query over the
  journal per merchant, re-seeded every ``reseed`` seconds; in between, this process adds its
  own approvals and its in-flight reservations. A check reserves the amount before the issuer
  is asked and releases it when the answer is not an approval, so concurrent requests cannot
  both slip under a limit;
* per-card velocity: a window of (time, amount) per PAN fingerprint in memory, seeded once per
  process from the journal (one query over the last window).

So a purchase costs no database access for its limits except after a TTL expiry. The price:
with several host processes sharing one PostgreSQL journal, each sees the others' sales only
at its next re-seed (totals) and never in its card windows (velocity); voids and reversals
lower the totals at the next re-seed. The re-seed errs on the safe side (an approval racing a
re-seed may be counted twice until the next one).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs
import structlog
import trio

from codec import responses as codes
from codec import txntypes
from codec.dump import mask_pan
from host.clock import journal_date
from host.config import RiskSettings
from host.flow.engine import Decline, Exchange
from host.flow.steps import card_fingerprint, card_pan, moment

if TYPE_CHECKING:
    from host.app import Host
    from host.store.merchant_records import RiskLimitRow
    from host.store.records import Merchant

log = structlog.get_logger("poshost.risk")

DEBITS = txntypes.DEBITS  # count in the day's and month's sales
VELOCITY_TYPES = txntypes.VELOCITY
CHECKED = txntypes.RISK_CHECKED


@attrs.frozen
class Limits:
    min_amount: int = 0
    max_amount: int = 0
    daily_amount: int = 0
    monthly_amount: int = 0
    velocity_count: int = 0
    velocity_amount: int = 0
    velocity_window: int = 3600
    refund_ratio_pct: int = 0


def configured_limits(risk: RiskSettings, mcc: str) -> dict[str, int]:
    """``[risk]`` overridden by ``[risk.mcc."NNNN"]`` (limit names checked when read)."""
    return {**risk.limits(), **risk.mcc.get(mcc, {})}


def resolve_limits(risk: RiskSettings, mcc: str, rows: Iterable[RiskLimitRow]) -> Limits:
    values = configured_limits(risk, mcc)
    for scope in ("mcc", "merchant"):
        for row in rows:
            if row.scope == scope:
                values.update(row.values())
    return Limits(**values)


@attrs.define
class _Totals:
    base: dict[str, int]
    seeded: float
    committed: dict[str, int] = attrs.field(factory=lambda: {"day": 0, "month": 0, "refunds": 0})
    in_flight: dict[str, int] = attrs.field(factory=lambda: {"day": 0, "month": 0, "refunds": 0})

    def get(self, key: str) -> int:
        return self.base.get(key, 0) + self.committed[key] + self.in_flight[key]


@attrs.define
class RiskEngine:
    ttl: float = 5.0
    reseed: float = 30.0
    _limits: dict[str, tuple[Limits, float]] = attrs.field(factory=dict)
    _totals: dict[tuple[str, dt.date], _Totals] = attrs.field(factory=dict)
    _cards: dict[str, collections.deque[list[int]]] = attrs.field(factory=dict)
    _cards_seeded: bool = False
    _seed_lock: trio.Lock = attrs.field(factory=trio.Lock)

    async def limits(self, host: Host, merchant: Merchant) -> Limits:
        now = trio.current_time()
        hit = self._limits.get(merchant.mid)
        if hit is not None and hit[1] > now:
            return hit[0]
        rows = await host.store.get_risk_limit_rows(merchant.mid, merchant.mcc)
        limits = resolve_limits(host.settings.risk, merchant.mcc, rows)
        self._limits[merchant.mid] = (limits, now + self.ttl)
        return limits

    async def totals(self, host: Host, mid: str, date: dt.date) -> _Totals:
        key = (mid, date)
        now = trio.current_time()
        hit = self._totals.get(key)
        if hit is not None and hit.seeded + self.reseed > now:
            return hit
        async with self._seed_lock:
            hit = self._totals.get(key)
            if hit is not None and hit.seeded + self.reseed > now:
                return hit
            base = await host.store.merchant_risk_totals(
                mid, journal_date(date), journal_date(date.replace(day=1))
            )
            if hit is None:
                hit = _Totals(base, now)
                # a new business date starts with fresh totals; drop the old dates
                for old in [k for k in self._totals if k[0] == mid]:
                    del self._totals[old]
                self._totals[key] = hit
            else:
                hit.base, hit.seeded = base, now
                hit.committed = {"day": 0, "month": 0, "refunds": 0}
            return hit

    async def card_window(
        self, host: Host, fingerprint: str, now_ms: int, window_ms: int
    ) -> collections.deque[list[int]]:
        if not self._cards_seeded:
            async with self._seed_lock:
                if not self._cards_seeded:
                    for fp, at, amount in await host.store.recent_card_debits(now_ms - window_ms):
                        self._cards.setdefault(fp, collections.deque()).append([at, amount])
                    self._cards_seeded = True
        window = self._cards.setdefault(fingerprint, collections.deque())
        while window and window[0][0] < now_ms - window_ms:
            window.popleft()
        if len(self._cards) > 100_000:
            self._sweep(now_ms - window_ms)
            window = self._cards.setdefault(fingerprint, window)
        return window

    def _sweep(self, oldest_ms: int) -> None:
        for fp in list(self._cards):
            w = self._cards[fp]
            while w and w[0][0] < oldest_ms:
                w.popleft()
            if not w:
                del self._cards[fp]

    @classmethod
    def from_settings(cls, risk: RiskSettings) -> RiskEngine:
        return cls(ttl=risk.cache_ttl, reseed=risk.reseed)


@attrs.frozen
class RiskHold:
    """What ``check_limits`` reserved for one exchange, until ``release_limits`` commits it
    (approved) or gives it back: the amounts in the merchant's running totals, and the entry
    in the card's velocity window (with that window)."""

    totals: _Totals
    reserve: Mapping[str, int]
    entry: list[int] | None = None
    window: collections.deque[list[int]] | None = None


async def _decline(host: Host, ex: Exchange, rule: str, code: str, detail: str) -> None:
    pan = ex.card.pan
    masked = mask_pan(pan) if pan else None
    amount = int(ex.request.get(4, "0") or 0)
    await host.store.add_risk_event(
        mid=ex.terminal.mid, tid=ex.terminal.tid,
        business_date=journal_date(host.business_date()), txn_type=ex.txn.name,
        amount=amount, rule=rule, response_code=code, detail=detail, pan_masked=masked,
    )  # fmt: skip
    log.warning("risk_declined", mid=ex.terminal.mid, tid=ex.terminal.tid, txn=ex.txn.name,
                amount=amount, rule=rule, code=code, detail=detail, pan=masked)  # fmt: skip
    raise Decline(code, f"risk limit {rule}: {detail}")


async def check_limits(host: Host, ex: Exchange) -> None:
    """After ``check_amount``: decline (13/61/65) what exceeds a limit, else reserve the amount
    in the running totals (released by ``release_limits`` unless approved)."""
    if ex.txn.name not in CHECKED or not host.settings.risk.enabled:
        return
    eng = host.risk
    card_pan(host, ex)  # 14 without a usable card; the masked PAN goes into risk events
    limits = await eng.limits(host, ex.merchant)
    amount = int(ex.request.get(4, "0") or 0)
    name = ex.txn.name
    if limits.min_amount and amount < limits.min_amount:
        await _decline(host, ex, "min_amount", codes.INVALID_AMOUNT,
                       f"{amount} < {limits.min_amount}")  # fmt: skip
    if limits.max_amount and amount > limits.max_amount:
        await _decline(host, ex, "max_amount", codes.AMOUNT_LIMIT,
                       f"{amount} > {limits.max_amount}")  # fmt: skip
    today = moment(host, ex).business_date
    totals = await eng.totals(host, ex.terminal.mid, today)
    reserve: dict[str, int] = {}
    if name in DEBITS:
        day, month = totals.get("day") + amount, totals.get("month") + amount
        if limits.daily_amount and day > limits.daily_amount:
            detail = f"{day} > {limits.daily_amount}"
            await _decline(host, ex, "daily_amount", codes.AMOUNT_LIMIT, detail)
        if limits.monthly_amount and month > limits.monthly_amount:
            detail = f"{month} > {limits.monthly_amount}"
            await _decline(host, ex, "monthly_amount", codes.AMOUNT_LIMIT, detail)
        reserve = {"day": amount, "month": amount}
    elif name == "refund":
        refunds = totals.get("refunds") + amount
        sales = totals.get("month")
        if limits.refund_ratio_pct and refunds * 100 > sales * limits.refund_ratio_pct:
            detail = f"refunds {refunds} > {limits.refund_ratio_pct}% of sales {sales}"
            await _decline(host, ex, "refund_ratio", codes.AMOUNT_LIMIT, detail)
        reserve = {"refunds": amount}
    entry: list[int] | None = None
    window: collections.deque[list[int]] | None = None
    if name in VELOCITY_TYPES and (limits.velocity_count or limits.velocity_amount):
        fingerprint = card_fingerprint(host, ex)
        now_ms = int(host.now().timestamp() * 1000)
        window = await eng.card_window(host, fingerprint, now_ms, limits.velocity_window * 1000)
        count = len(window) + 1
        total = sum(a for _, a in window) + amount
        if limits.velocity_count and count > limits.velocity_count:
            detail = f"{count} > {limits.velocity_count} in {limits.velocity_window}s"
            await _decline(host, ex, "velocity_count", codes.FREQUENCY_LIMIT, detail)
        if limits.velocity_amount and total > limits.velocity_amount:
            detail = f"{total} > {limits.velocity_amount} in {limits.velocity_window}s"
            await _decline(host, ex, "velocity_amount", codes.AMOUNT_LIMIT, detail)
        entry = [now_ms, amount]
        window.append(entry)
    for k, v in reserve.items():
        totals.in_flight[k] += v
    ex.risk = RiskHold(totals, reserve, entry, window)


async def release_limits(host: Host, ex: Exchange) -> None:
    """An ``always`` step: turn the reservation into a committed total when approved, else
    give it back (and drop the card-window entry)."""
    held, ex.risk = ex.risk, None
    if held is None:
        return
    for k, v in held.reserve.items():
        held.totals.in_flight[k] -= v
        if ex.approved:
            held.totals.committed[k] += v
    # An unknown outcome (timeout) keeps its place in the card's window: the issuer may have
    # approved it.
    undone = not ex.approved and ex.journal.failure != "timeout"
    if held.entry is not None and held.window is not None and undone:
        with contextlib.suppress(ValueError):
            held.window.remove(held.entry)
