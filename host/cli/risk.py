"""``poshost risk``: risk events (declines by a risk limit) and security events (refused or
suspicious attempts)."""

from __future__ import annotations

import click

from host.cli.common import journal_option, opened, print_json, print_table, store_context, when
from host.cli.inputs import yyyymmdd
from host.formatting import business_date as day
from host.formatting import format_amount as money


@click.group()
@journal_option
@click.pass_context
def risk(ctx: click.Context, url: str | None) -> None:
    """Risk limits: the events they raised."""
    ctx.obj = store_context(url, must_exist=True)


@risk.command("events")
@click.option("--mid", help="Only this merchant.")
@click.option("--tid", help="Only this terminal.")
@click.option("--date", "business_date", callback=yyyymmdd, help="Business date YYYYMMDD.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def events(ctx, mid, tid, business_date, limit, as_json) -> None:
    """List risk events, newest first (PANs masked)."""
    with opened(ctx) as store:
        rows = store.list_risk_events(mid=mid, tid=tid, business_date=business_date, limit=limit)
    if as_json:
        print_json([e.to_dict() for e in rows])
        return
    print_table(
        ["ID", "AT", "DATE", "MID", "TID", "TYPE", "AMOUNT", "RULE", "CODE", "PAN", "DETAIL"],
        [
            [e.id, when(e.created_at), day(e.business_date), e.mid, e.tid, e.txn_type,
             money(e.amount), e.rule, e.response_code, e.pan_masked, e.detail]
            for e in rows
        ],
    )  # fmt: skip


@risk.command("security-events")
@click.option("--kind", help="Only this kind (for example sign_on_refused, connection_limit).")
@click.option("--tid", help="Only this terminal.")
@click.option("--peer", help="Only this peer address.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def security_events(ctx, kind, tid, peer, limit, as_json) -> None:
    """List security events, newest first: refused or suspicious attempts, counted per kind,
    peer address and terminal over the host's flush interval."""
    with opened(ctx) as store:
        rows = store.list_security_events(kind=kind, tid=tid, peer=peer, limit=limit)
    if as_json:
        print_json([e.to_dict() for e in rows])
        return
    print_table(
        ["ID", "FIRST", "LAST", "KIND", "PEER", "TID", "COUNT", "DETAIL"],
        [
            [e.id, when(e.first_at), when(e.last_at), e.kind, e.peer, e.tid, e.count, e.detail]
            for e in rows
        ],
    )
