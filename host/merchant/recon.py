"""Reconciliation files and the check that every total in them comes from the journal.

Three CSV files per business date (UTF-8, comma-separated, one header line, ``\\n`` line ends;
amounts twice: ``*_fen`` integer minor units, and the same amount formatted ``12.34``):

``<date>_<mid>_transactions.csv`` — the rows a merchant's settlement counts, journal order:
    business_date,mid,tid,batch,stan,rrn,auth_code,txn_type,sign,card_group,pan_masked,
    amount_fen,amount,requested_at_utc,channel
    (sign D = a ``settles = "debit"`` type of the registry: purchase, completion, completion
    advice, transfer, the QR sales; C = credit: refund;
    channel: card or qr, how the customer paid)

``<date>_<mid>_channels.csv`` — the settlement record's line per payment channel:
    business_date,mid,channel,debit_count,debit_amount_fen,credit_count,credit_amount_fen,
    gross_fen,fee_rate_pct,fee_fen,gross,fee
    (each channel's fee at its own rate; the settlement record's fee is their sum)

``<date>_<mid>_settlement.csv`` — the merchant's settlement record, one line:
    business_date,mid,cycle,payout_date,debit_count,debit_amount_fen,credit_count,
    credit_amount_fen,gross_fen,fee_rate_pct,fee_fen,net_fen,carried_in_fen,payout_fen,
    carried_out_fen,status,gross,fee,net,payout

``<date>_<mid>_tills.csv`` — the merchant's counted rows per terminal, rolled up under masters
(docs/tills.md): for each master (a terminal that was no one's secondary is the master of its
own group), one ``till`` line per terminal of the group, then its ``master`` line (the sum, tid
empty); last a ``total`` line, which is the settlement record's debits and credits:
    business_date,mid,master_tid,tid,line,debit_count,debit_amount_fen,credit_count,
    credit_amount_fen,gross_fen,gross

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
from host.clock import journal_date, parse_date
from host.merchant import tills
from host.merchant.tills import TillGroup
from host.store.errors import NotFound
from host.store.merchant_records import ChannelSettlement, DayTotals, fee_for, yuan

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
    "channel",
]
CHANNELS_HEADER = [
    "business_date",
    "mid",
    "channel",
    "debit_count",
    "debit_amount_fen",
    "credit_count",
    "credit_amount_fen",
    "gross_fen",
    "fee_rate_pct",
    "fee_fen",
    "gross",
    "fee",
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


TILLS_HEADER = [
    "business_date",
    "mid",
    "master_tid",
    "tid",
    "line",
    "debit_count",
    "debit_amount_fen",
    "credit_count",
    "credit_amount_fen",
    "gross_fen",
    "gross",
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
             _utc(t.requested_at), t.channel]
        )  # fmt: skip
    return _csv(DETAIL_HEADER, out)


def channels_csv(record: Any) -> str:
    """The record's per-channel lines; a record from before channels is one card line."""
    out = []
    for c in channel_lines(record):
        out.append([record.business_date, record.mid, c.channel, c.debit_count, c.debit_amount,
                    c.credit_count, c.credit_amount, c.gross, c.fee_rate, c.fee, yuan(c.gross),
                    yuan(c.fee)])  # fmt: skip
    return _csv(CHANNELS_HEADER, out)


def channel_lines(record: Any) -> tuple[Any, ...]:
    if record.channels or not record.debit_count + record.credit_count:
        return record.channels
    return (
        ChannelSettlement(
            channel="card", debit_count=record.debit_count, debit_amount=record.debit_amount,
            credit_count=record.credit_count, credit_amount=record.credit_amount,
            gross=record.gross, fee_rate=record.fee_rate, fee=record.fee,
        ),
    )  # fmt: skip


def summary_csv(records: list[Any]) -> str:
    out = []
    for r in records:
        out.append([r.business_date, r.mid, r.cycle, r.payout_date, r.debit_count,
                    r.debit_amount, r.credit_count, r.credit_amount, r.gross, r.fee_rate, r.fee,
                    r.net, r.carried_in, r.payout, r.carried_out, r.status, yuan(r.gross),
                    yuan(r.fee), yuan(r.net), yuan(r.payout)])  # fmt: skip
    return _csv(SUMMARY_HEADER, out)


def tills_rows(groups: list[TillGroup], business_date: str, mid: str) -> list[list[Any]]:
    """The lines of the tills file from the day's groups (``tills.roll_up``) of one merchant."""

    def line(master: str, tid: str, kind: str, t) -> list[Any]:
        gross = t.debit_amount - t.credit_amount
        return [business_date, mid, master, tid, kind, t.debit_count, t.debit_amount,
                t.credit_count, t.credit_amount, gross, yuan(gross)]  # fmt: skip

    out = []
    for group in groups:
        out.extend(line(group.master, t.tid, "till", t) for t in group.tills)
        out.append(line(group.master, "", "master", group.totals))
    out.append(line("", "", "total", tills.add_up(g.totals for g in groups)))
    return out


def tills_csv(groups: list[TillGroup], business_date: str, mid: str) -> str:
    return _csv(TILLS_HEADER, tills_rows(groups, business_date, mid))


def till_groups(store, business_date: str, mid: str) -> list[TillGroup]:
    return tills.roll_up(store.till_day_totals(business_date, mid))


def acquirer_rows(store: Any, day: dt.date) -> list[list[Any]]:
    """The acquirer totals, recomputed (a SyncStore)."""
    business_date = journal_date(day)
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


def acquirer_csv(store: Any, day: dt.date) -> str:
    return _csv(ACQUIRER_HEADER, acquirer_rows(store, day))


def file_names(day: dt.date, mid: str | None = None) -> dict[str, str]:
    business_date = journal_date(day)
    if mid is None:
        return {"acquirer": f"{business_date}_acquirer_totals.csv"}
    return {
        "transactions": f"{business_date}_{mid}_transactions.csv",
        "settlement": f"{business_date}_{mid}_settlement.csv",
        "channels": f"{business_date}_{mid}_channels.csv",
        "tills": f"{business_date}_{mid}_tills.csv",
    }


def write_files(store: Any, day: dt.date, directory: Path) -> list[Path]:
    """Every file of a business date into ``directory`` (written whole, then renamed)."""
    business_date = journal_date(day)
    directory.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        path = directory / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)

    for record in store.list_merchant_settlements(business_date=business_date):
        names = file_names(day, record.mid)
        rows = store.counted_transactions(record.mid, business_date)
        put(names["transactions"], detail_csv(rows))
        put(names["settlement"], summary_csv([record]))
        put(names["channels"], channels_csv(record))
        groups = till_groups(store, business_date, record.mid)
        put(names["tills"], tills_csv(groups, business_date, record.mid))
    put(file_names(day)["acquirer"], acquirer_csv(store, day))
    return written


def check(store: Any, day: dt.date, directory: Path | None = None) -> list[str]:
    """Every difference between the journal and the settlement records (and the files in
    ``directory``, when given). An empty list means every fen ties."""
    business_date = journal_date(day)
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
        problems.extend(_check_channels(store, r))
        if r.net != r.gross - r.fee:
            problems.append(f"{mid}: net {r.net} != gross - fee")
        if r.payout + r.carried_out != r.net + r.carried_in:
            problems.append(f"{mid}: payout + carried out != net + carried in")
        groups = till_groups(store, business_date, mid)
        rolled = tills.add_up(g.totals for g in groups)
        if rolled != DayTotals(r.debit_count, r.debit_amount, r.credit_count, r.credit_amount):
            problems.append(f"{mid}: the tills add up to {rolled}, not to the record")
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
        path = directory / file_names(day)["acquirer"]
        if not path.exists():
            problems.append(f"missing {path.name}")
        else:
            expected = [[str(v) for v in row] for row in acquirer_rows(store, day)]
            with path.open(newline="", encoding="utf-8") as fh:
                got = list(csv.reader(fh))
            if got[:1] != [ACQUIRER_HEADER] or got[1:] != expected:
                problems.append(f"{path.name}: differs from the journal and the records")
    return problems


def _check_channels(store, r) -> list[str]:
    """Each channel's line against the journal and its rate; their sum against the record."""
    problems = []
    lines = channel_lines(r)
    if not r.channels:  # a record from before channels: all cards at fee_rate
        if r.fee != fee_for(r.gross, r.fee_rate):
            problems.append(
                f"{r.mid}: fee {r.fee} != {fee_for(r.gross, r.fee_rate)} at {r.fee_rate}%"
            )
        return problems
    journal = store.merchant_channel_totals(r.business_date, r.mid)
    for c in lines:
        j = journal.get(c.channel, DayTotals())
        for name in ("debit_count", "debit_amount", "credit_count", "credit_amount"):
            if getattr(j, name) != getattr(c, name):
                problems.append(
                    f"{r.mid} {c.channel}: {name} journal {getattr(j, name)} line "
                    f"{getattr(c, name)}"
                )
        if c.gross != c.debit_amount - c.credit_amount:
            problems.append(f"{r.mid} {c.channel}: gross {c.gross} != debits - credits")
        if c.fee != fee_for(c.gross, c.fee_rate):
            problems.append(
                f"{r.mid} {c.channel}: fee {c.fee} != {fee_for(c.gross, c.fee_rate)}"
                f" at {c.fee_rate}%"
            )
    for channel in sorted(set(journal) - {c.channel for c in lines}):
        problems.append(f"{r.mid}: journal has {channel} rows but the record no {channel} line")
    if r.fee != sum(c.fee for c in lines):
        problems.append(f"{r.mid}: fee {r.fee} != the channels' fees added")
    return problems


def _check_files(store, r, directory: Path) -> list[str]:
    problems = []
    names = file_names(parse_date(r.business_date), r.mid)
    detail, summary = directory / names["transactions"], directory / names["settlement"]
    channels = directory / names["channels"]
    for path in (detail, summary, channels):
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
    with channels.open(newline="", encoding="utf-8") as fh:
        got = list(csv.reader(fh))
    if got != list(csv.reader(io.StringIO(channels_csv(r)))):
        problems.append(f"{channels.name}: differs from the settlement record")
    till_file = directory / names["tills"]
    if not till_file.exists():
        problems.append(f"missing {till_file.name}")
    else:
        with till_file.open(newline="", encoding="utf-8") as fh:
            got = list(csv.reader(fh))
        groups = till_groups(store, r.business_date, r.mid)
        want = list(csv.reader(io.StringIO(tills_csv(groups, r.business_date, r.mid))))
        if got != want:
            problems.append(f"{till_file.name}: differs from the journal")
    return problems
