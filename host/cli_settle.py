"""``poshost settle``: the settlement state of each terminal's batches.

``settle status`` shows, per terminal, its current batch, that batch's state and running totals
(computed from the journal as settlement would), and the latest closed batches with how they
ended: closed (balanced or reconciled by upload), unbalanced (waiting for an upload, or closed
by the host at its age limit) or flagged (still out of balance after upload: for operations).
"""

from __future__ import annotations

from typing import Any

import click

from host.cli_journal import iso, journal_option, opened, print_json, print_table
from host.store.errors import NotFound


@click.group()
@journal_option
@click.pass_context
def settle(ctx: click.Context, url: str) -> None:
    """Batch settlement: state of terminals' batches."""
    ctx.obj = {"url": url}


def _totals_text(totals: dict[str, Any] | None) -> str:
    if not totals:
        return ""
    parts = []
    for group in ("domestic", "foreign"):
        t = totals.get(group) or {}
        if any(t.values()):
            parts.append(
                f"{group[:3]} D{t['debit_count']}/{t['debit_amount']}"
                f" C{t['credit_count']}/{t['credit_amount']}"
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
        ["TID", "BATCH", "STATUS", "OPENED", "CLOSED (UTC)", "HOST TOTALS", "TERMINAL TOTALS"],
        [
            [
                d["tid"],
                d["batch"],
                d["status"],
                d["business_date"],
                iso(d["closed_at"]),
                _totals_text(d["host_totals"]),
                _totals_text(d["terminal_totals"]),
            ]
            for d in data
        ],
    )
