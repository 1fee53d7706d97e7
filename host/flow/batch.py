"""Batch settlement (0500, 60.3 201) and batch upload (0320, 60.3 201 / 202 / 207).

Settlement: the host computes its own totals of the terminal's batch from the journal (debits:
the approved rows of the registry's ``settles = "debit"`` types — purchases, completions,
completion advices, transfers; a voided or reversed one is no longer approved; credits:
approved refunds), compares them per card group with field 48, answers
1 (balanced) or 2 (not balanced, with the host's totals), closes the batch ('closed' when both
groups balance, else 'unbalanced') and opens the next batch as the terminal's current one.
A second 0500 for a batch that is closed already (the terminal did not get the 0510) is answered
again from the stored host totals, without closing or opening anything.

Batch upload: after a non-balanced settlement the terminal uploads its detail records; the host
stores each one (PAN masked) with whether it agrees with the journal, and answers in 48, per
record, one digit: 1 agrees, 2 does not (our layout: count n2 + one digit per record). The end
message (202, or 207 when only IC records were sent) closes the upload: when every uploaded
record agrees and together they are exactly the host's counted transactions, the batch is
reconciled ('closed': the host's totals stand); otherwise it stays out of balance and is
'flagged' for operations.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from codec import responses as codes
from codec import subfields, txntypes
from codec.dump import mask_pan
from codec.errors import CodecError
from codec.subfields import BatchRecord, SettlementTotals
from host.clock import journal_date
from host.flow.engine import Decline, Exchange
from host.flow.steps import card_pan, field60
from host.store.errors import NotFound
from host.store.records import Batch, BatchTotals, GroupTotals, Transaction

if TYPE_CHECKING:
    from host.app import Host

log = structlog.get_logger("poshost.settlement")

GROUPS = ("domestic", "foreign")
ORGANISATION = {"00": "domestic", "01": "foreign"}
# 60.1 of the original in a batch-upload record -> journal type
TYPE_CODES = txntypes.BY_TYPE_CODE


@attrs.frozen
class OpenBatch:
    """What the host last read of a terminal's current batch: its number, the business date
    it was opened on, its status."""

    batch: str
    opened_on: dt.date
    status: str


@attrs.define
class BatchCache:
    """Each terminal's current batch as the business-day check last read it, so a purchase
    does not pay a database read to learn its batch is open; settling or closing a batch
    forgets the terminal's entry."""

    _batches: dict[str, OpenBatch] = attrs.field(factory=dict)

    def get(self, tid: str) -> OpenBatch | None:
        return self._batches.get(tid)

    def put(self, tid: str, batch: OpenBatch) -> None:
        self._batches[tid] = batch

    def forget(self, tid: str) -> None:
        self._batches.pop(tid, None)


def next_batch(batch: str) -> str:
    return f"{int(batch) % 999999 + 1:06d}"


def _batch_of(ex: Exchange) -> str:
    try:
        return field60(ex).batch
    except ValueError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 60: {exc}") from exc


def _group_totals(totals: BatchTotals | dict[str, Any], group: str) -> GroupTotals:
    if isinstance(totals, BatchTotals):
        found: GroupTotals = getattr(totals, group)
        return found
    return GroupTotals(**(totals or {}).get(group, {}))


def _compare(
    host_totals: BatchTotals | dict[str, Any], terminal: tuple[SettlementTotals, SettlementTotals]
) -> list[tuple[bool, SettlementTotals]]:
    """Per group: (balanced, the 48 block to answer with)."""
    out = []
    for group, theirs in zip(GROUPS, terminal, strict=True):
        ours = _group_totals(host_totals, group)
        balanced = (
            ours.debit_amount == theirs.debit_amount
            and ours.debit_count == theirs.debit_count
            and ours.credit_amount == theirs.credit_amount
            and ours.credit_count == theirs.credit_count
        )
        block = SettlementTotals(
            ours.debit_amount, ours.debit_count, ours.credit_amount, ours.credit_count,
            "1" if balanced else "2",
        )  # fmt: skip
        out.append((balanced, block))
    return out


def _terminal_dict(
    terminal: tuple[SettlementTotals, SettlementTotals],
) -> dict[str, dict[str, int]]:
    return {
        group: {
            "debit_amount": t.debit_amount,
            "debit_count": t.debit_count,
            "credit_amount": t.credit_amount,
            "credit_count": t.credit_count,
        }
        for group, t in zip(GROUPS, terminal, strict=True)
    }


async def settle(host: Host, ex: Exchange) -> None:
    tid = ex.terminal.tid
    batch = _batch_of(ex)
    try:
        terminal = subfields.parse_field48_settlement(str(ex.request.get(48, "")))
    except CodecError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 48: {exc}") from exc
    ex.business_date = today = host.business_date()
    if batch != ex.terminal.current_batch:
        await _settle_again(host, ex, batch, terminal)
        return
    host_totals = await host.store.batch_totals(tid, batch)
    results = _compare(host_totals, terminal)
    balanced = all(ok for ok, _ in results)
    status = "closed" if balanced else "unbalanced"
    following = next_batch(batch)
    await host.store.settle_batch(
        tid,
        batch,
        next_batch=following,
        business_date=journal_date(today),
        status=status,
        host_totals=host_totals,
        terminal_totals=_terminal_dict(terminal),
    )
    host.estate.forget_terminal(tid)
    forget_batch(host, tid)
    log.info("batch_settled", tid=tid, batch=batch, status=status, next_batch=following,
             host_totals=host_totals.to_dict())  # fmt: skip
    ex.code = "00"
    ex.response_fields[48] = subfields.format_field48_settlement(*(b for _, b in results))


async def _settle_again(
    host: Host, ex: Exchange, batch: str, terminal: tuple[SettlementTotals, SettlementTotals]
) -> None:
    """A 0500 for a batch that is not the terminal's open one: answered from the stored
    totals if that batch was closed already, else 77 (batch out of step)."""
    tid = ex.terminal.tid
    stored: Batch | None
    try:
        stored = await host.store.get_batch(tid, batch)
    except NotFound:
        stored = None
    if stored is None or stored.status == "open" or stored.host_totals is None:
        raise Decline(codes.SIGN_ON_AGAIN, f"batch {batch} is not open or settled on the host")
    results = _compare(stored.host_totals, terminal)
    if stored.status == "unbalanced" and all(ok for ok, _ in results):
        # e.g. a batch the host closed at its age limit, now settled by the terminal
        await host.store.close_batch(
            tid, batch, status="closed", host_totals=stored.host_totals,
            terminal_totals=_terminal_dict(terminal),
        )  # fmt: skip
    log.info("batch_settled_again", tid=tid, batch=batch, status=stored.status)
    ex.code = "00"
    ex.response_fields[48] = subfields.format_field48_settlement(*(b for _, b in results))


async def _batch_to_upload(host: Host, ex: Exchange) -> Batch:
    batch = _batch_of(ex)
    stored: Batch | None
    try:
        stored = await host.store.get_batch(ex.terminal.tid, batch)
    except NotFound:
        stored = None
    if stored is None or stored.status == "open":
        raise Decline(codes.SIGN_ON_AGAIN, f"batch {batch} has not been settled")
    return stored


async def batch_upload(host: Host, ex: Exchange) -> None:
    stored = await _batch_to_upload(host, ex)
    if stored.status != "unbalanced":
        raise Decline(
            codes.INVALID_TRANSACTION, f"batch {stored.batch} is {stored.status}: nothing to upload"
        )
    try:
        records = subfields.parse_batch_upload(str(ex.request.get(48, "")))
    except CodecError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 48: {exc}") from exc
    verdicts = [await _store_record(host, ex.terminal.tid, stored.batch, r) for r in records]
    ex.code = "00"
    ex.response_fields[48] = f"{len(records):02d}" + "".join(verdicts)


async def batch_upload_detail(host: Host, ex: Exchange) -> None:
    """A refund-detail 0320 (3 = 200000, 60.1 = 25, 60.3 = 000), as NewPOS-type terminals send
    one per refund: the record travels in the usual fields (2 or 35, 4, 11) instead of 48. It
    counts as one uploaded record, like a record of 48."""
    stored = await _batch_to_upload(host, ex)
    if stored.status != "unbalanced":
        raise Decline(
            codes.INVALID_TRANSACTION, f"batch {stored.batch} is {stored.status}: nothing to upload"
        )
    amount, stan = str(ex.request.get(4, "")), str(ex.request.get(11, ""))
    if not (amount.isdecimal() and stan.isdecimal()):
        raise Decline(codes.FORMAT_ERROR, "a detail record needs 4 and 11")
    record = subfields.BatchRecord(
        None, card_pan(host, ex), int(amount), stan, field60(ex).txn_type
    )
    await _store_record(host, ex.terminal.tid, stored.batch, record)
    ex.code = "00"


async def _store_record(host: Host, tid: str, batch: str, record: BatchRecord) -> str:
    """Keep one uploaded record (PAN masked) with whether it agrees with the journal; the
    verdict digit for 48: 1 agrees, 2 does not."""
    agrees, host_id, voided_by = await _agrees(host, tid, batch, record)
    stored = {
        "organisation": record.organisation,
        "pan": mask_pan(record.pan),
        "amount": record.amount,
        "stan": record.stan,
        "type": record.original_type,
        "journal_id": host_id,
    }
    if voided_by:
        stored["voided_by"] = voided_by
    # the STAN keys the record: a repeated 0320 replaces, not adds
    await host.store.add_batch_upload_record(tid, batch, int(record.stan), stored, agrees)
    return "1" if agrees else "2"


async def _agrees(
    host: Host, tid: str, batch: str, record: BatchRecord
) -> tuple[bool, int | None, str | None]:
    """Whether an uploaded record is the journal's row, and which other till voided that row
    if one did: the till that made a sale still counts it when its master voided it, and the
    record agrees (the host knows of the void) without being counted (docs/tills.md)."""
    rows = [
        r
        for r in await host.store.find_in_batch(tid, batch, record.stan)
        if r.txn_type in txntypes.SETTLED
    ]
    if not rows:
        return False, None, None
    row = rows[0]
    voided_by = await _voided_by_another_till(host, row)
    agrees = (
        (row.status == "approved" or voided_by is not None)
        and row.txn_type == TYPE_CODES.get(record.original_type)
        and row.amount == record.amount
        # the NewPOS layout carries no organisation: the PAN (its fingerprint) decides alone
        and (record.organisation is None or row.card_group == ORGANISATION.get(record.organisation))
        and row.pan_fingerprint == host.fingerprint(record.pan)
    )
    return agrees, row.id, voided_by


async def _voided_by_another_till(host: Host, row: Transaction) -> str | None:
    """The TID of the other till whose approved void undid ``row``, if one did (a master
    voiding its secondary's sale): the till that made the sale still counts it."""
    if row.status != "voided":
        return None
    for child in await host.store.find_by_original(row.id):
        undoes_sale = child.txn_type in txntypes.UNDOING_SETTLED
        if undoes_sale and child.status == "approved" and child.tid != row.tid:
            return child.tid
    return None


async def batch_upload_end(host: Host, ex: Exchange) -> None:
    stored = await _batch_to_upload(host, ex)
    ex.code = "00"
    if stored.status != "unbalanced":
        return  # a repeated end message: the batch was decided already
    try:
        announced = subfields.parse_batch_end(str(ex.request.get(48, "")))
    except CodecError as exc:
        raise Decline(codes.FORMAT_ERROR, f"field 48: {exc}") from exc
    tid = ex.terminal.tid
    uploaded = await host.store.list_batch_upload_records(tid, stored.batch)
    counted = {
        r.id
        for r in await host.store.list_transactions(
            tid=tid, batch=stored.batch, status="approved", limit=100_000
        )
        if r.txn_type in txntypes.SETTLED
    }
    # a sale another till voided agrees but is not counted: it is not one of the host's rows
    matched = {
        u.record.get("journal_id") for u in uploaded if u.agrees and not u.record.get("voided_by")
    }
    reconciled = (
        announced == len(uploaded) and all(u.agrees for u in uploaded) and matched == counted
    )
    status = "closed" if reconciled else "flagged"
    await host.store.close_batch(
        tid, stored.batch, status=status, host_totals=stored.host_totals,
        terminal_totals=stored.terminal_totals,
    )  # fmt: skip
    log_fn = log.info if reconciled else log.warning
    log_fn("batch_uploaded", tid=tid, batch=stored.batch, status=status, announced=announced,
           uploaded=len(uploaded), agreeing=sum(u.agrees for u in uploaded),
           host_count=len(counted))  # fmt: skip


def forget_batch(host: Host, tid: str) -> None:
    host.batches.forget(tid)
