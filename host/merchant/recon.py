"""Reconciliation files and the check that every total in them comes from the journal.

Three CSV files per business date (UTF-8, comma-separated, one header line, ``\\n`` line ends;
amounts twice: ``*_fen`` integer minor units, and the same amount formatted ``12.34``):

``<date>_<mid>_transactions.csv`` — the rows a merchant's settlement counts, journal order:
    business_date,mid,tid,batch,stan,rrn,auth_code,txn_type,sign,card_group,pan_masked,
    amount_fen,amount,requested_at_utc
    (sign D = debit: purchase, completion, completion advice; C = credit: refund)

``<date>_<mid>_settlement.csv`` — the merchant's settlement record, one line:
    business_date,mid,cycle,payout_date,debit_count,debit_amount_fen,credit_count,
    credit_amount_fen,gross_fen,fee_rate_pct,fee_fen,net_fen,carried_in_fen,payout_fen,
    carried_out_fen,status,gross,fee,net,payout

``<date>_acquirer_totals.csv`` — one line per merchant, then a ``TOTAL`` line:
    business_date,mid,journal_debit_count,journal_debit_amount_fen,journal_credit_count,
    journal_credit_amount_fen,journal_gross_fen,batches,batches_open,in_closed_batches_fen,
    settled_gross_fen,fee_fen,net_fen,payout_fen,carried_out_fen,difference_fen
    (journal_* recomputed from the journal; batches: distinct terminal batches holding the
    counted rows, of which still open; in_closed_batches_fen: net amount of the counted rows
    in batches the terminals have settled; settled_*: from the settlement record;
    difference_fen = journal gross - settled gross, 0 when everything ties)

``check()`` recomputes every figure from the journal and reports each difference with the
settlement records and, given a directory, with the files in it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

from codec import txntypes
from host.store.errors import NotFound
from host.store.merchant_records import DayTotals, fee_for, yuan

DEBITS = txntypes.DEBITS

DETAIL_HEADER = [
    "business_date",
    "mid",
    "tid",
    "batch",
    "stan",
    "rrn",
    "auth_code",
    "txn_type",
    "sign",
    "card_group",
    "pan_masked",
    "amount_fen",
    "amount",
    "requested_at_utc",
]
SUMMARY_HEADER = [
    "business_date",
    "mid",
    "cycle",
    "payout_date",
    "debit_count",
    "debit_amount_fen",
    "credit_count",
    "credit_amount_fen",
    "gross_fen",
    "fee_rate_pct",
    "fee_fen",
    "net_fen",
    "carried_in_fen",
    "payout_fen",
    "carried_out_fen",
    "status",
    "gross",
    "fee",
    "net",
    "payout",
]
ACQUIRER_HEADER = [
    "business_date",
    "mid",
    "journal_debit_count",
    "journal_debit_amount_fen",
    "journal_credit_count",
    "journal_credit_amount_fen",
    "journal_gross_fen",
    "batches",
    "batches_open",
    "in_closed_batches_fen",
    "settled_gross_fen",
    "fee_fen",
    "net_fen",
    "payout_fen",
    "carried_out_fen",
    "difference_fen",
]


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def detail_csv(rows: list[Any]) -> str:
    out = []
    for t in rows:
        sign = "D" if t.txn_type in DEBITS else "C"
        out.append(
            [t.business_date, t.mid, t.tid, t.batch, t.stan, t.rrn or "", t.auth_code or "",
             t.txn_type, sign, t.card_group, t.pan_masked or "", t.amount, yuan(t.amount),
             _utc(t.requested_at)]
        )  # fmt: skip
    return _csv(DETAIL_HEADER, out)


def summary_csv(records: list[Any]) -> str:
    out = []
    for r in records:
        out.append([r.business_date, r.mid, r.cycle, r.payout_date, r.debit_count,
                    r.debit_amount, r.credit_count, r.credit_amount, r.gross, r.fee_rate, r.fee,
                    r.net, r.carried_in, r.payout, r.carried_out, r.status, yuan(r.gross),
                    yuan(r.fee), yuan(r.net), yuan(r.payout)])  # fmt: skip
    return _csv(SUMMARY_HEADER, out)


def acquirer_rows(store, business_date: str) -> list[list[Any]]:
    """The acquirer totals, recomputed (a SyncStore)."""
    journal = store.merchant_day_totals(business_date)
    records = {r.mid: r for r in store.list_merchant_settlements(business_date=business_date)}
    rows, total = [], [0] * 14
    for mid in sorted(set(journal) | set(records)):
        j = journal.get(mid, DayTotals())
        r = records.get(mid)
        batches: dict[tuple[str, str], str] = {}
        in_closed = 0
        for t in store.counted_transactions(mid, business_date):
            key = (t.tid, t.batch)
            if key not in batches:
                try:
                    batches[key] = store.get_batch(t.tid, t.batch).status
                except NotFound:
                    batches[key] = "open"
            if batches[key] != "open":
                in_closed += t.amount if t.txn_type in DEBITS else -t.amount
        values = [j.debit_count, j.debit_amount, j.credit_count, j.credit_amount, j.gross,
                  len(batches), sum(1 for s in batches.values() if s == "open"), in_closed,
                  r.gross if r else 0, r.fee if r else 0, r.net if r else 0,
                  r.payout if r else 0, r.carried_out if r else 0,
                  j.gross - (r.gross if r else 0)]  # fmt: skip
        total = [a + b for a, b in zip(total, values, strict=True)]
        rows.append([business_date, mid, *values])
    rows.append([business_date, "TOTAL", *total])
    return rows


def acquirer_csv(store, business_date: str) -> str:
    return _csv(ACQUIRER_HEADER, acquirer_rows(store, business_date))


def file_names(business_date: str, mid: str | None = None) -> dict[str, str]:
    if mid is None:
        return {"acquirer": f"{business_date}_acquirer_totals.csv"}
    return {
        "transactions": f"{business_date}_{mid}_transactions.csv",
        "settlement": f"{business_date}_{mid}_settlement.csv",
    }


def write_files(store, business_date: str, directory: Path) -> list[Path]:
    """Every file of a business date into ``directory`` (written whole, then renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        path = directory / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)

    for record in store.list_merchant_settlements(business_date=business_date):
        names = file_names(business_date, record.mid)
        rows = store.counted_transactions(record.mid, business_date)
        put(names["transactions"], detail_csv(rows))
        put(names["settlement"], summary_csv([record]))
    put(file_names(business_date)["acquirer"], acquirer_csv(store, business_date))
    return written


def check(store, business_date: str, directory: Path | None = None) -> list[str]:
    """Every difference between the journal and the settlement records (and the files in
    ``directory``, when given). An empty list means every fen ties."""
    problems: list[str] = []
    journal = store.merchant_day_totals(business_date)
    records = {r.mid: r for r in store.list_merchant_settlements(business_date=business_date)}
    for mid in sorted(set(journal) - set(records)):
        problems.append(f"{mid}: journal has {journal[mid]} but no settlement record")
    for mid, r in sorted(records.items()):
        j = journal.get(mid, DayTotals())
        for name in ("debit_count", "debit_amount", "credit_count", "credit_amount"):
            if getattr(j, name) != getattr(r, name):
                problems.append(
                    f"{mid}: {name} journal {getattr(j, name)} record {getattr(r, name)}"
                )
        if r.gross != r.debit_amount - r.credit_amount:
            problems.append(f"{mid}: gross {r.gross} != debits - credits")
        if r.fee != fee_for(r.gross, r.fee_rate):
            problems.append(
                f"{mid}: fee {r.fee} != {fee_for(r.gross, r.fee_rate)} at {r.fee_rate}%"
            )
        if r.net != r.gross - r.fee:
            problems.append(f"{mid}: net {r.net} != gross - fee")
        if r.payout + r.carried_out != r.net + r.carried_in:
            problems.append(f"{mid}: payout + carried out != net + carried in")
        earlier = [
            p for p in store.list_merchant_settlements(mid=mid) if p.business_date < business_date
        ]
        expected_in = max(earlier, key=lambda p: p.business_date).carried_out if earlier else 0
        if r.carried_in != expected_in:
            problems.append(
                f"{mid}: carried in {r.carried_in}, previous record carried {expected_in}"
            )
        if directory is not None:
            problems.extend(_check_files(store, r, directory))
    if directory is not None:
        path = directory / file_names(business_date)["acquirer"]
        if not path.exists():
            problems.append(f"missing {path.name}")
        else:
            expected = [[str(v) for v in row] for row in acquirer_rows(store, business_date)]
            with path.open(newline="", encoding="utf-8") as fh:
                got = list(csv.reader(fh))
            if got[:1] != [ACQUIRER_HEADER] or got[1:] != expected:
                problems.append(f"{path.name}: differs from the journal and the records")
    return problems


def _check_files(store, r, directory: Path) -> list[str]:
    problems = []
    names = file_names(r.business_date, r.mid)
    detail, summary = directory / names["transactions"], directory / names["settlement"]
    for path in (detail, summary):
        if not path.exists():
            problems.append(f"missing {path.name}")
    if problems:
        return problems
    with detail.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    debits = [int(x["amount_fen"]) for x in rows if x["sign"] == "D"]
    credits = [int(x["amount_fen"]) for x in rows if x["sign"] == "C"]
    if (len(debits), sum(debits), len(credits), sum(credits)) != (
        r.debit_count,
        r.debit_amount,
        r.credit_count,
        r.credit_amount,
    ):
        problems.append(f"{detail.name}: totals differ from the settlement record")
    journal_ids = [
        (t.tid, t.stan, t.batch) for t in store.counted_transactions(r.mid, r.business_date)
    ]
    if [(x["tid"], x["stan"], x["batch"]) for x in rows] != journal_ids:
        problems.append(f"{detail.name}: rows differ from the journal")
    with summary.open(newline="", encoding="utf-8") as fh:
        got = list(csv.reader(fh))
    want = list(csv.reader(io.StringIO(summary_csv([r]))))
    if got != want:
        problems.append(f"{summary.name}: differs from the settlement record")
    return problems
