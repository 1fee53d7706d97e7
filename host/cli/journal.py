"""``poshost journal``: query the transaction journal (masked: the journal holds no clear PAN)."""

from __future__ import annotations

import json
from typing import Any

import click

from host.cli.common import (
    journal_option,
    opened,
    print_json,
    print_table,
    store_context,
    when,
)
from host.cli.inputs import yyyymmdd
from host.formatting import format_amount, plain, signed_amount
from host.store.records import TXN_STATUSES


@click.group()
@journal_option
@click.pass_context
def journal(ctx: click.Context, url: str | None) -> None:
    """Query the transaction journal."""
    ctx.obj = store_context(url, must_exist=True)


@journal.command("list")
@click.option("--tid", help="Terminal id.")
@click.option("--mid", help="Merchant id.")
@click.option("--date", "business_date", callback=yyyymmdd, help="Business date YYYYMMDD.")
@click.option("--status", type=click.Choice(TXN_STATUSES), help="Transaction status.")
@click.option("--rrn", help="Retrieval reference number.")
@click.option("--type", "txn_type", help="Transaction type, e.g. purchase.")
@click.option("--batch", help="Batch number.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool, **filters: Any) -> None:
    """List journal rows, newest first."""
    with opened(ctx) as store:
        rows = store.list_transactions(**filters)
    if as_json:
        print_json([t.to_dict() for t in rows])
        return
    print_table(
        ["ID", "REQUESTED", "TID", "BATCH", "STAN", "TYPE", "AMOUNT", "PAN", "RC", "STATUS"],
        [
            [
                t.id,
                when(t.requested_at),
                t.tid,
                t.batch,
                t.stan,
                t.txn_type,
                format_amount(signed_amount(t.amount, t.txn_type), t.currency),
                t.pan_masked,
                t.response_code,
                t.status,
            ]
            for t in rows
        ],
    )


@journal.command("show")
@click.argument("txn_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def show(ctx: click.Context, txn_id: int, as_json: bool) -> None:
    """Show one journal row, its reversal and the rows that refer to it."""
    with opened(ctx) as store:
        txn = store.get_transaction(txn_id)
        reversal = store.get_reversal(txn_id)
        related = store.find_by_original(txn_id)
    data = txn.to_dict()
    data["reversal"] = None if reversal is None else {
        "id": reversal.id, "reason": reversal.reason, "created_at": reversal.created_at
    }  # fmt: skip
    data["referred_by"] = [
        {"id": r.id, "txn_type": r.txn_type, "status": r.status} for r in related
    ]
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key.endswith("_at") and isinstance(value, int):
            value = f"{when(value)} ({value})"
        elif key == "amount" and isinstance(value, int):
            value = f"{format_amount(value, data.get('currency'))} ({value})"
        elif key in ("extra", "reversal", "referred_by") and value:
            value = json.dumps(value, sort_keys=True)
        click.echo(f"{key:16} {plain(value)}")
