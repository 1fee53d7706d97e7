"""Steps that find and check the original a void, refund, pre-authorization cancel, completion
or completion void refers to, and the advice step that makes a repeated 0220 idempotent.

Each ``find_*`` step fills ``ex.original`` (``host.flow.engine.OriginalLink``) for the shared
steps, and names the original to the issuer:

* ``row``: the original's journal row;
* ``guard``: the limit ``journal_request`` enforces against the original's other children in
  the same database transaction as the insert (a second void, a refund beyond the original);
* ``marks``: what ``journal_outcome`` marks the original when approved ('voided');
* ``ex.issuer.extra``: field 90 naming the original for the issuer (docs/issuer-contract.md).

Response codes (README "Transactions"): 12 already voided / cancelled / completed, 22 original
too old (refund age, pre-authorization expiry), 25 original not found (or not approved, or
outside the terminal's current batch for voids), 61 refunds beyond the original amount,
64 amount or card differs from the original.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import structlog

from codec import responses as codes
from codec import txntypes
from codec.issuer import original_data
from codec.subfields import Field61
from codec.txntypes import UnknownTransaction, identify_original
from host.clock import journal_date, parse_date, settlement_mmdd
from host.flow.engine import ChildGuard, Decline, Exchange
from host.flow.steps import (
    card_fingerprint,
    card_pan,
    field60,
    insert_transaction,
    moment,
    new_transaction,
)
from host.issuer.protocol import original_f7
from host.store.errors import DuplicateTransaction

if TYPE_CHECKING:
    from host.app import Host
    from host.store.records import Transaction

log = structlog.get_logger("poshost.originals")

SALES = txntypes.DEBITS  # what a refund may name
PREAUTH_ENDS = txntypes.PREAUTH_ENDS
ACTIVE = ("pending", "approved", "timeout")
FINAL = ("approved", "declined")


def _field61(ex: Exchange) -> Field61 | None:
    raw = ex.request.get(61)
    if not raw:
        return None
    try:
        return Field61.parse(str(raw))
    except ValueError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 61: {exc}") from exc


def _date_matches(original: Transaction, mmdd: str) -> bool:
    """61.3 is the original's date as the terminal printed it (field 13 of its response): the
    business date, or the calendar day before it for a sale made after cut-over."""
    if not mmdd:
        return True
    day = parse_date(original.business_date)
    return mmdd in (settlement_mmdd(day), settlement_mmdd(day - dt.timedelta(days=1)))


def _same_card(host: Host, ex: Exchange, original: Transaction) -> None:
    card_pan(host, ex)  # 14 without a usable card, whether or not the original has one
    if original.pan_fingerprint and card_fingerprint(host, ex) != original.pan_fingerprint:
        raise Decline(codes.ORIGINAL_AMOUNT_MISMATCH, "card differs from the original's")


def _names_original(ex: Exchange, original: Transaction) -> None:
    """37 / 38 of the request, when sent, must be the original's RRN / auth code."""
    rrn = str(ex.request.get(37, "")).strip()
    if rrn and rrn != (original.rrn or ""):
        raise Decline(codes.ORIGINAL_NOT_FOUND, "37 names another transaction")
    auth = str(ex.request.get(38, "")).strip()
    if auth and auth != (original.auth_code or ""):
        raise Decline(codes.ORIGINAL_NOT_FOUND, "38 is not the original's authorization code")


def _request_amount(ex: Exchange) -> int:
    return int(str(ex.request.get(4, "0") or "0"))


def _name_for_issuer(host: Host, ex: Exchange, original: Transaction) -> None:
    ex.issuer.extra = {
        90: original_data(original.mti, original.stan, original_f7(original), host.acquirer_id)
    }


def _age_days(host: Host, original: Transaction) -> int:
    return (host.business_date() - parse_date(original.business_date)).days


async def _in_current_batch(host: Host, ex: Exchange, types: tuple[str, ...]) -> Transaction:
    """The original named by 61 (batch, STAN) in the terminal's current batch; else, for a
    till of a master/secondary group, a sale of another till of the group still in its open
    batch, named by 37 (its RRN) and 61 (its till's batch and STAN) as its slip prints them.
    Whether this terminal may void that one is ``host.merchant.tills.check_till_policy``'s to
    say (a step of the flow table)."""
    f61 = _field61(ex)
    if f61 is None:
        raise Decline(codes.ORIGINAL_NOT_FOUND, "no field 61")
    batch = ex.terminal.current_batch
    rrn = str(ex.request.get(37, "")).strip()
    rows: list[Transaction] = []
    if f61.batch == batch:
        rows = [
            r
            for r in await host.store.find_in_batch(ex.terminal.tid, batch, f61.stan)
            if r.txn_type in types and _date_matches(r, f61.date)
        ]
    if rows and rrn and all(r.rrn != rrn for r in rows):
        # batches and STANs are each till's own: this till's sale with that STAN is not the
        # one whose RRN the slip shows; another till's may be
        rows = []
    if not rows:
        rows = [
            r
            for r in await _open_sales_of_other_tills(host, ex, types)
            if r.batch == f61.batch and r.stan == f61.stan and _date_matches(r, f61.date)
        ]
    if not rows and f61.batch != batch:
        raise Decline(
            codes.ORIGINAL_NOT_FOUND, f"original batch {f61.batch} is not the open batch {batch}"
        )
    if not rows:
        raise Decline(
            codes.ORIGINAL_NOT_FOUND, f"no {'/'.join(types)} with STAN {f61.stan} in batch {batch}"
        )
    return rows[0]


async def _open_sales_of_other_tills(
    host: Host, ex: Exchange, types: tuple[str, ...]
) -> list[Transaction]:
    """Rows of ``types`` named by the RRN in 37 that another till of the requesting terminal's
    group (its master and the master's secondaries, docs/tills.md) journalled, still in that
    till's open batch: a void undoes a sale before its batch is settled, wherever it is
    voided. Empty for a terminal alone in its group."""
    rrn = str(ex.request.get(37, "")).strip()
    if not rrn:
        return []
    me = ex.terminal
    group = me.master_tid or me.tid
    rows = []
    for row in await host.store.find_by_rrn(rrn):
        if row.tid == me.tid or row.mid != me.mid or row.txn_type not in types:
            continue
        if row.rolls_up_to != group:
            continue
        # read, not the estate cache: that till may have settled a moment ago elsewhere
        till = await host.store.get_terminal(row.tid)
        if row.batch == till.current_batch:
            rows.append(row)
    return rows


# -- void of purchase, completion void -----------------------------------------------------


async def _find_for_void(host: Host, ex: Exchange, types: tuple[str, ...]) -> None:
    original = await _in_current_batch(host, ex, types)
    qr = original.txn_type in txntypes.QR_SALES
    _names_original(ex, original)
    if original.status == "voided":
        raise Decline(codes.INVALID_TRANSACTION, "original already voided")
    if original.status != "approved":
        raise Decline(codes.ORIGINAL_NOT_FOUND, f"original is {original.status}")
    if _request_amount(ex) != original.amount:
        raise Decline(codes.ORIGINAL_AMOUNT_MISMATCH, "amount differs from the original's")
    ex.original.row = original
    if original.tid != ex.terminal.tid:
        # To the issuer a void undoes the sale at the terminal that made it: 90 names the
        # sale by that terminal's STAN and 7 (docs/tills.md)
        ex.issuer.tid = original.tid
    ex.original.guard = ChildGuard((ex.txn.name, "refund"), codes.INVALID_TRANSACTION)
    ex.original.marks = "voided"
    if qr:  # no card: the wallet refunds the customer who paid (docs/qr.md)
        ex.channel = "qr"
        return
    _same_card(host, ex, original)
    _name_for_issuer(host, ex, original)


async def find_purchase_to_void(host: Host, ex: Exchange) -> None:
    await _find_for_void(host, ex, ("purchase", *txntypes.QR_SALES))


async def find_completion_to_void(host: Host, ex: Exchange) -> None:
    await _find_for_void(host, ex, ("completion",))


# -- refund ------------------------------------------------------------------------------------


async def find_sale_to_refund(host: Host, ex: Exchange) -> None:
    """37 names the original by RRN (any batch of the merchant, settled or not), 61.3 its date.
    Partial refunds add up to at most the original amount."""
    rrn = str(ex.request.get(37, "")).strip()
    if not rrn:
        raise Decline(codes.ORIGINAL_NOT_FOUND, "no original RRN in 37")
    f61 = _field61(ex)
    rows: list[Transaction] = [
        r
        for r in await host.store.find_by_rrn(rrn)
        if r.mid == ex.terminal.mid
        and r.txn_type in SALES
        and (f61 is None or _date_matches(r, f61.date))
    ]
    if not rows:
        raise Decline(codes.ORIGINAL_NOT_FOUND, "no sale of this merchant with that RRN and date")
    original = rows[-1]
    if original.status == "voided":
        raise Decline(codes.INVALID_TRANSACTION, "original was voided")
    if original.status != "approved":
        raise Decline(codes.ORIGINAL_NOT_FOUND, f"original is {original.status}")
    max_age = host.settings.flows.refund_max_age_days
    if _age_days(host, original) > max_age:
        raise Decline(codes.RELATED_TRANSACTION_ERROR, f"original older than {max_age} days")
    if original.txn_type in txntypes.QR_SALES:
        ex.channel = "qr"
    else:
        _same_card(host, ex, original)
    ex.original.row = original
    ex.original.guard = ChildGuard(("refund",), codes.AMOUNT_LIMIT, max_amount=original.amount)


# -- pre-authorization cancel, completion, completion advice ------------------------------------


async def _find_preauth(host: Host, ex: Exchange) -> Transaction:
    """By 61 (batch, STAN) when the terminal sends them, else by 38 (authorization code), on
    this terminal; 61.3 (date) must match when sent."""
    f61 = _field61(ex)
    auth = str(ex.request.get(38, "")).strip()
    tid = ex.terminal.tid
    rows: list[Transaction]
    if f61 is not None and f61.stan.strip("0"):
        rows = await host.store.find_in_batch(tid, f61.batch, f61.stan)
        rows = [r for r in rows if r.txn_type == "preauth"]
    elif auth:
        rows = await host.store.find_by_auth_code(tid, "preauth", auth)
    else:
        raise Decline(codes.ORIGINAL_NOT_FOUND, "neither 61 nor 38 names the pre-authorization")
    rows = [r for r in rows if f61 is None or _date_matches(r, f61.date)]
    if not rows:
        raise Decline(codes.ORIGINAL_NOT_FOUND, "pre-authorization not found")
    original = rows[0]
    _names_original(ex, original)
    return original


async def _open_preauth(host: Host, ex: Exchange) -> Transaction:
    original = await _find_preauth(host, ex)
    if original.status == "voided":
        raise Decline(codes.INVALID_TRANSACTION, "pre-authorization was cancelled")
    if original.status != "approved":
        raise Decline(codes.ORIGINAL_NOT_FOUND, f"pre-authorization is {original.status}")
    retry = ex.journal.retry_of
    children: list[Transaction] = [
        c
        for c in await host.store.find_by_original(original.id)
        if retry is None or c.id != retry.id
    ]
    if any(c.txn_type in txntypes.COMPLETING and c.status in (*ACTIVE, "voided") for c in children):
        raise Decline(codes.INVALID_TRANSACTION, "pre-authorization already completed")
    days = host.settings.flows.preauth_expiry_days
    if _age_days(host, original) > days:
        raise Decline(codes.RELATED_TRANSACTION_ERROR, f"pre-authorization expired ({days} days)")
    _same_card(host, ex, original)
    ex.original.row = original
    ex.original.guard = ChildGuard(
        PREAUTH_ENDS, codes.INVALID_TRANSACTION, statuses=(*ACTIVE, "voided")
    )
    _name_for_issuer(host, ex, original)
    return original


async def find_preauth_to_cancel(host: Host, ex: Exchange) -> None:
    original = await _open_preauth(host, ex)
    if _request_amount(ex) != original.amount:
        raise Decline(
            codes.ORIGINAL_AMOUNT_MISMATCH, "cancel amount differs from the pre-authorization"
        )
    ex.original.marks = "voided"


async def find_preauth_to_complete(host: Host, ex: Exchange) -> None:
    original = await _open_preauth(host, ex)
    tolerance = host.settings.flows.completion_tolerance_pct
    if _request_amount(ex) * 100 > original.amount * (100 + tolerance):
        raise Decline(
            codes.ORIGINAL_AMOUNT_MISMATCH, f"completion above the authorized amount + {tolerance}%"
        )


# -- advices -------------------------------------------------------------------------------


async def replay_advice(host: Host, ex: Exchange) -> None:
    """An advice (0220) is repeated by the terminal until it sees an answer, with the same
    STAN. A repeat of a finished advice gets the first answer again, with no second effect; a
    repeat of one whose outcome is unknown (issuer timeout) goes on, and ``journal_advice``
    sends it again under the same journal row and RRN, which the issuer deduplicates."""
    f60 = field60(ex)
    first: Transaction | None = await host.store.find_transaction(
        ex.terminal.tid, f60.batch, str(ex.request[11]), journal_date(host.business_date())
    )
    if first is None:
        return
    same = (
        first.txn_type == ex.txn.name
        and first.amount == _request_amount(ex)
        and (first.pan_fingerprint is None or first.pan_fingerprint == card_fingerprint(host, ex))
    )
    if not same:
        raise Decline(codes.DUPLICATE, "STAN reused for a different request")
    if first.status in ("approved", "declined", "voided"):
        ex.rrn, ex.auth_code = first.rrn, first.auth_code
        ex.business_date = parse_date(first.business_date)
        log.info("advice_repeated", tid=first.tid, stan=first.stan, code=first.response_code)
        raise Decline(first.response_code or "96", "advice repeated: first answer")
    ex.journal.retry_of = first


async def journal_advice(host: Host, ex: Exchange) -> None:
    """``journal_request`` for an advice; a retried one keeps its first row and RRN."""
    first = ex.journal.retry_of
    if first is not None:
        ex.journal.id = first.id
        ex.business_date = day = parse_date(first.business_date)
        ex.issuer.transmission = (first.extra or {}).get("f7") or ex.issuer.transmission
        ex.rrn = first.rrn or host.rrn_for(first.id, day)
        return
    txn = new_transaction(host, ex)
    try:
        journal_id = ex.journal.id = await insert_transaction(host, ex, txn)
    except DuplicateTransaction as exc:  # the same advice twice at once
        raise Decline(codes.DUPLICATE, "duplicate (terminal, batch, STAN, date)") from exc
    ex.rrn = host.rrn_for(journal_id, moment(host, ex).business_date)


# -- reversals -----------------------------------------------------------------------------


async def check_reversible(host: Host, ex: Exchange) -> None:
    """A 0400 must name a reversible type (3, 25, 60.1 of the original): refunds and
    completion advices cannot be reversed (12)."""
    try:
        ex.original.reverses = identify_original(ex.request).name
    except UnknownTransaction as exc:
        raise Decline(codes.INVALID_TRANSACTION, str(exc)) from exc
