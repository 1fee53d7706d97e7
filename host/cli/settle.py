"""``poshost settle``: the settlement state of each terminal's batches.

``settle status`` shows, per terminal, its current batch, that batch's state and running totals
(computed from the journal as settlement would), and the latest closed batches with how they
ended: closed (balanced or reconciled by upload), unbalanced (waiting for an upload, or closed
by the host at its age limit) or flagged (still out of balance after upload: for operations).
``settle tills`` shows a date's settled rows per terminal, rolled up under masters
(docs/tills.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from host.cli.common import journal_option, opened, print_json, print_table, store_context, when
from host.clock import journal_date, parse_date
from host.formatting import business_date as day
from host.formatting import format_amount as money
from host.store.errors import NotFound


@click.group()
@journal_option
@click.pass_context
def settle(ctx: click.Context, url: str | None) -> None:
    """Batch settlement (status) and merchant settlement (run, show, files, check)."""
    ctx.obj = store_context(url, must_exist=True)


def _totals_text(totals: dict[str, Any] | None) -> str:
    if not totals:
        return ""
    parts = []
    for group in ("domestic", "foreign"):
        t = totals.get(group) or {}
        if any(t.values()):
            parts.append(
                f"{group[:3]} debits {t['debit_count']}/{money(t['debit_amount'])}"
                f" credits {t['credit_count']}/{money(t['credit_amount'])}"
            )
    return "; ".join(parts) or "empty"


@settle.command("status")
@click.option("--tid", help="Only this terminal.")
@click.option("--history", default=1, show_default=True, type=click.IntRange(0, 1000),
              help="Closed batches to show per terminal.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def status(ctx: click.Context, tid: str | None, history: int, as_json: bool) -> None:
    """Each terminal's current batch and its latest settled batches."""
    data = []
    with opened(ctx) as store:
        terminals = [store.get_terminal(tid)] if tid else store.list_terminals()
        for terminal in terminals:
            try:
                current = store.get_batch(terminal.tid, terminal.current_batch)
            except NotFound:
                current = None
            running = store.batch_totals(terminal.tid, terminal.current_batch).to_dict()
            data.append(
                {
                    "tid": terminal.tid,
                    "batch": terminal.current_batch,
                    "status": current.status if current else "open",
                    "business_date": current.business_date if current else None,
                    "opened_at": current.opened_at if current else None,
                    "closed_at": None,
                    "host_totals": running,
                    "terminal_totals": None,
                }
            )
            closed = [b for b in store.list_batches(tid=terminal.tid) if b.status != "open"]
            for b in sorted(closed, key=lambda b: b.batch, reverse=True)[:history]:
                data.append(
                    {
                        "tid": b.tid,
                        "batch": b.batch,
                        "status": b.status,
                        "business_date": b.business_date,
                        "opened_at": b.opened_at,
                        "closed_at": b.closed_at,
                        "host_totals": b.host_totals,
                        "terminal_totals": b.terminal_totals,
                    }
                )
    if as_json:
        print_json(data)
        return
    print_table(
        ["TID", "BATCH", "STATUS", "BUSINESS DATE", "CLOSED", "HOST TOTALS", "TERMINAL TOTALS"],
        [
            [
                d["tid"],
                d["batch"],
                d["status"],
                day(d["business_date"]),
                when(d["closed_at"]),
                _totals_text(d["host_totals"]),
                _totals_text(d["terminal_totals"]),
            ]
            for d in data
        ],
    )


# -- merchant settlement and reconciliation (host/merchant/settlement.py and recon.py) ---------


def _settings(config_path):
    from host.config import ConfigError, config_file, load_settings

    try:
        return load_settings(config_file(config_path))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    """A business date as YYYYMMDD on the command line, a date inside."""
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise click.BadParameter("a business date is YYYYMMDD") from exc


_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="Host config (terms)."
)


@settle.command("run")
@click.option("--date", "business_date", required=True, callback=_date, help="YYYYMMDD.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write recon files here.")
@click.option("--allow-open-day", is_flag=True, help="Settle a date not yet cut over (tests).")
@_config_option
@click.pass_context
def run(ctx, business_date, out_dir, allow_open_day, config_path) -> None:
    """Merchant settlement of one business date (idempotent: a re-run changes nothing)."""
    from pathlib import Path

    from host.clock import BusinessCalendar, SystemClock
    from host.merchant.recon import write_files
    from host.merchant.settlement import SettlementRefused, run_settlement

    settings = _settings(config_path)
    calendar = BusinessCalendar.from_settings(settings.acquirer.timezone, settings.acquirer.cutover)
    today = None if allow_open_day else calendar.business_date(SystemClock().now())
    with opened(ctx) as store:
        try:
            records = run_settlement(store, settings, business_date, today=today)
        except SettlementRefused as exc:
            raise click.ClickException(str(exc)) from exc
        paths = write_files(store, business_date, Path(out_dir)) if out_dir else []
    print_table(
        ["MID", "CYCLE", "PAYOUT DATE", "GROSS", "FEE", "NET", "CARRIED IN", "PAYOUT", "CARRIED"],
        [[r.mid, r.cycle, day(r.payout_date), money(r.gross), money(r.fee), money(r.net),
          money(r.carried_in), money(r.payout), money(r.carried_out)] for r in records],
    )  # fmt: skip
    for path in paths:
        click.echo(f"wrote {path}")


@settle.command("show")
@click.option("--date", "business_date", callback=_date, help="YYYYMMDD.")
@click.option("--mid", help="Only this merchant.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (amounts in fen).")
@click.pass_context
def show(ctx, business_date, mid, as_json) -> None:
    """Merchant settlement records (amounts formatted; --json gives fen)."""

    with opened(ctx) as store:
        records = store.list_merchant_settlements(
            mid=mid, business_date=journal_date(business_date) if business_date else None
        )
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    print_table(
        ["DATE", "MID", "CYCLE", "PAYOUT DATE", "DEBITS", "CREDITS", "GROSS", "RATE %", "FEE",
         "NET", "CARRIED IN", "PAYOUT", "CARRIED", "STATUS"],
        [[day(r.business_date), r.mid, r.cycle, day(r.payout_date),
          f"{r.debit_count}/{money(r.debit_amount)}",
          f"{r.credit_count}/{money(r.credit_amount)}", money(r.gross), r.fee_rate, money(r.fee),
          money(r.net), money(r.carried_in), money(r.payout), money(r.carried_out), r.status]
         for r in records],
    )  # fmt: skip


@settle.command("tills")
@click.option("--date", "business_date", required=True, callback=_date, help="YYYYMMDD.")
@click.option("--mid", help="Only this merchant.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (amounts in fen).")
@click.pass_context
def tills_report(ctx, business_date, mid, as_json) -> None:
    """A date's settled rows per terminal, rolled up under masters (docs/tills.md): one line
    per till, a master line per group, a total per merchant (its settlement's debits and
    credits, settled or not yet)."""
    from host.merchant.tills import add_up, roll_up

    with opened(ctx) as store:
        groups = roll_up(store.till_day_totals(journal_date(business_date), mid))
    if as_json:
        print_json([
            {"mid": g.mid, "master": g.master,
             "tills": [{"tid": t.tid, "role": g.role(t), **_amounts(t)} for t in g.tills],
             "total": _amounts(g.totals)}
            for g in groups
        ])  # fmt: skip
        return
    rows = []
    for merchant in sorted({g.mid for g in groups}):
        mine = [g for g in groups if g.mid == merchant]
        for g in mine:
            rows += [[merchant, g.master, t.tid, g.role(t), *_cells(t)] for t in g.tills]
            rows.append([merchant, g.master, "", "MASTER", *_cells(g.totals)])
        rows.append([merchant, "", "", "TOTAL", *_cells(add_up(g.totals for g in mine))])
    print_table(["MID", "MASTER", "TID", "LINE", "DEBITS", "CREDITS", "GROSS"], rows)


def _amounts(t) -> dict[str, int]:
    return {"debit_count": t.debit_count, "debit_amount": t.debit_amount,
            "credit_count": t.credit_count, "credit_amount": t.credit_amount,
            "gross": t.debit_amount - t.credit_amount}  # fmt: skip


def _cells(t) -> list[str]:
    debits = f"{t.debit_count}/{money(t.debit_amount)}"
    credits = f"{t.credit_count}/{money(t.credit_amount)}"
    return [debits, credits, money(t.debit_amount - t.credit_amount)]


@settle.command("files")
@click.option("--date", "business_date", required=True, callback=_date, help="YYYYMMDD.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.pass_context
def files(ctx, business_date, out_dir) -> None:
    """(Re)write the reconciliation files of a settled business date."""
    from pathlib import Path

    from host.merchant.recon import write_files

    with opened(ctx) as store:
        for path in write_files(store, business_date, Path(out_dir)):
            click.echo(f"wrote {path}")


@settle.command("check")
@click.option("--date", "business_date", required=True, callback=_date, help="YYYYMMDD.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, exists=True),
              help="Also check the files in this directory.")  # fmt: skip
@click.option("--wallet-bill", "bills", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="The QR wallet's daily bill(s) covering the date: tie the QR totals to "
              "them (docs/qr.md). Give the day before's too when sales ran past midnight "
              "before cut-over.")  # fmt: skip
@click.pass_context
def check(ctx, business_date, directory, bills) -> None:
    """Recompute every total from the journal; report each difference (exit 1 if any)."""
    from pathlib import Path

    from host.merchant.recon import check as recon_check
    from host.merchant.wallet_bill import BillError, read_bill
    from host.merchant.wallet_bill import check as bill_check

    with opened(ctx) as store:
        problems = recon_check(store, business_date, Path(directory) if directory else None)
        if bills:
            try:
                read = [read_bill(Path(b)) for b in bills]
            except BillError as exc:
                raise click.ClickException(str(exc)) from exc
            qr_problems, totals = bill_check(store, business_date, read)
            problems += qr_problems
            click.echo(
                f"QR {journal_date(business_date)}: journal sales {totals['sales'][0]} / "
                f"{money(totals['sales'][1])}, refunds {totals['refunds'][0]} / "
                f"{money(totals['refunds'][1])}; wallet bill pays {totals['bill_pays'][0]} / "
                f"{money(totals['bill_pays'][1])}, refunds {totals['bill_refunds'][0]} / "
                f"{money(totals['bill_refunds'][1])}"
            )
    for line in problems:
        click.echo(line)
    if problems:
        raise SystemExit(1)
    click.echo(f"{journal_date(business_date)}: journal, settlement records and files agree")
