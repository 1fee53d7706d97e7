"""Tie the day's QR totals to the wallet's own daily bill (docs/qr.md, "The daily bill").

The wallet lists every payment and refund of its calendar day, keyed on our order numbers
(``out_trade_no`` of a sale, ``out_request_no`` of a void or refund; both begin with the
business date and end with the journal id, ``codec.wallet.order_number``). ``check`` takes the
bills that cover a business date (its first hour may be on the wallet's previous day, around
cut-over) and compares, order by order:

* every QR sale the journal says was paid (approved, or voided afterwards) is paid in the bill,
  with the same amount; a sale the journal reversed or declined is, if paid at all, refunded
  in full by its cancel; a payment for an order the journal does not know is reported;
* every approved QR void or refund of the date is a refund in the bill with the same amount,
  and every refund in the bill is one of them (or a cancel).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs

from codec import txntypes
from codec import wallet as w
from codec.errors import CodecError
from host.clock import journal_date

CANCEL = "cancel-"  # the request number the wallet gives the refund a cancel made


class BillError(ValueError):
    """A bill file that cannot be read; the message names the file and the line."""


@attrs.frozen
class BillRow:
    type: str  # pay | refund
    out_trade_no: str
    out_request_no: str
    amount: int


@attrs.frozen
class Bill:
    path: str
    day: str
    rows: tuple[BillRow, ...]


def read_bill(path: Path) -> Bill:
    text = Path(path).read_text(encoding="utf-8")
    day = ""
    body = []
    totals: dict[str, tuple[int, int]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# date,"):
            day = line.split(",", 1)[1].strip()
        elif line.startswith("# total "):
            kind, count, amount = line[len("# total ") :].split(",")
            try:
                totals[kind] = (int(count), w.fen(amount))
            except (ValueError, CodecError) as exc:
                raise BillError(f"{path}:{n}: bad total line") from exc
        elif not line.startswith("#") and line.strip():
            body.append(line)
    rows = []
    for n, rec in enumerate(csv.DictReader(io.StringIO("\n".join(body))), 2):
        try:
            rows.append(BillRow(rec["type"], rec["out_trade_no"], rec["out_request_no"] or "",
                                w.fen(rec["amount"], "amount")))  # fmt: skip
        except (KeyError, CodecError) as exc:
            raise BillError(f"{path}: record {n - 1}: {exc}") from exc
    for kind, (count, amount) in totals.items():
        mine = [r.amount for r in rows if r.type == kind]
        if (len(mine), sum(mine)) != (count, amount):
            raise BillError(f"{path}: the {kind} total line does not add up to its records")
    if not day:
        raise BillError(f"{path}: no '# date,' line: not a wallet daily bill")
    return Bill(str(path), day, tuple(rows))


def _date_of(order: str) -> str | None:
    try:
        return w.parse_order_number(order)[0]
    except CodecError:
        return None


def check(store: Any, day: dt.date, bills: list[Bill]) -> tuple[list[str], dict[str, Any]]:
    """(problems, totals) of the business date's QR rows against the bills."""
    business_date = journal_date(day)  # as the journal and the order numbers write it
    pays: dict[str, int] = defaultdict(int)
    refunds: dict[str, int] = {}
    cancels: dict[str, int] = defaultdict(int)
    for bill in bills:
        for r in bill.rows:
            if r.type == "pay" and _date_of(r.out_trade_no) == business_date:
                pays[r.out_trade_no] += r.amount
            elif r.type == "refund" and r.out_request_no.startswith(CANCEL):
                if _date_of(r.out_trade_no) == business_date:
                    cancels[r.out_trade_no] += r.amount
            elif r.type == "refund" and _date_of(r.out_request_no) == business_date:
                refunds[r.out_request_no] = refunds.get(r.out_request_no, 0) + r.amount
    rows = store.list_transactions(business_date=business_date, limit=1_000_000)
    problems: list[str] = []
    sales = {w.order_number(r.business_date, r.id): r for r in rows
             if r.txn_type in txntypes.QR_SALES}  # fmt: skip
    sale_ids = {r.id for r in sales.values()}
    totals = {"sales": [0, 0], "refunds": [0, 0], "bill_pays": [0, 0], "bill_refunds": [0, 0]}
    for order, row in sales.items():
        paid = pays.pop(order, 0)
        back = cancels.pop(order, 0)
        if row.status in ("approved", "voided"):
            totals["sales"][0] += 1
            totals["sales"][1] += row.amount
            if paid != row.amount:
                problems.append(f"QR sale {row.rrn} ({order}): journal {row.status} "
                                f"{row.amount}, wallet paid {paid}")  # fmt: skip
        elif row.status == "pending" and paid:
            problems.append(
                f"QR order {row.rrn} ({order}): paid {paid} at the wallet, still "
                "pending in the journal (the order watch or a query settles it)"
            )
        elif paid and paid != back:
            problems.append(f"QR sale {row.rrn} ({order}): journal {row.status}, wallet paid "
                            f"{paid} and gave back {back}")  # fmt: skip
    for order, amount in pays.items():
        problems.append(f"wallet payment {order} of {amount}: no QR sale with that order number")
    for order, amount in cancels.items():
        problems.append(f"wallet cancel refund {order} of {amount}: no QR sale that day")
    for row in rows:
        if row.txn_type not in txntypes.UNDOING + txntypes.CREDITS or row.original_id is None:
            continue
        if row.original_id not in sale_ids and not _of_qr_sale(store, row):
            continue  # a card void or refund
        order = w.order_number(row.business_date, row.id)
        got = refunds.pop(order, None)
        if row.status == "approved":
            totals["refunds"][0] += 1
            totals["refunds"][1] += row.amount
            if got != row.amount:
                problems.append(f"QR {row.txn_type} {row.rrn} ({order}): journal approved "
                                f"{row.amount}, wallet refunded {got or 0}")  # fmt: skip
        elif got and row.status != "timeout":
            problems.append(f"QR {row.txn_type} {row.rrn} ({order}): journal {row.status}, "
                            f"wallet refunded {got}")  # fmt: skip
    for order, amount in refunds.items():
        problems.append(f"wallet refund {order} of {amount}: no QR void or refund with that number")
    cancelled = {r.out_trade_no for bill in bills for r in bill.rows
                 if r.type == "refund" and r.out_request_no.startswith(CANCEL)}  # fmt: skip
    for bill in bills:  # the bill's own totals, cancelled payments left out as the journal does
        for r in bill.rows:
            kind = "bill_pays" if r.type == "pay" else "bill_refunds"
            number = r.out_trade_no if r.type == "pay" else r.out_request_no
            if number.startswith(CANCEL) or (r.type == "pay" and number in cancelled):
                continue
            if _date_of(number) == business_date:
                totals[kind][0] += 1
                totals[kind][1] += r.amount
    return problems, totals


def _of_qr_sale(store, row) -> bool:
    """A void or refund of an earlier day's QR sale."""
    return store.get_transaction(row.original_id).txn_type in txntypes.QR_SALES
