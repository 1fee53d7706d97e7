"""``poshost estate limits`` and ``poshost estate terms``: risk limits per MCC or merchant, and
a merchant's settlement and operator terms (registered on the estate group)."""

from __future__ import annotations

import click

from host.cli_estate import MCC, MID, estate
from host.cli_journal import opened, print_json, print_table
from host.config import ConfigError, load_settings
from host.risk import resolve_limits
from host.store.merchant_records import LIMIT_FIELDS


def _limit_options(fn):
    for name in reversed(LIMIT_FIELDS):
        opt = "--" + name.replace("_", "-")
        fn = click.option(opt, name, type=click.IntRange(0), help=f"{name} (0 = off).")(fn)
    return fn


@estate.group()
def limits() -> None:
    """Risk limits: per merchant category (--mcc) or per merchant (--mid). Amounts in fen."""


@limits.command("set")
@click.option("--mcc", callback=MCC, help="Set the limits of this merchant category.")
@click.option("--mid", callback=MID, help="Set the limits of this merchant.")
@_limit_options
@click.pass_context
def limits_set(ctx: click.Context, mcc: str | None, mid: str | None, **values) -> None:
    """Set limits (only the ones given change); e.g. --mid M --monthly-amount 30000000."""
    if (mcc is None) == (mid is None):
        raise click.UsageError("give exactly one of --mcc, --mid")
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one limit")
    with opened(ctx) as store:
        if mid:
            store.get_merchant(mid)
        store.set_risk_limits("mcc" if mcc else "merchant", mcc or mid, given)
    click.echo(f"limits of {'MCC ' + mcc if mcc else 'merchant ' + mid} set")


@limits.command("clear")
@click.option("--mcc", callback=MCC)
@click.option("--mid", callback=MID)
@click.pass_context
def limits_clear(ctx: click.Context, mcc: str | None, mid: str | None) -> None:
    """Remove an override row (its limits are inherited again)."""
    if (mcc is None) == (mid is None):
        raise click.UsageError("give exactly one of --mcc, --mid")
    with opened(ctx) as store:
        store.delete_risk_limits("mcc" if mcc else "merchant", mcc or mid)
    click.echo("limits cleared")


@limits.command("show")
@click.option("--mid", callback=MID, help="The limits in force for this merchant.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Host config.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def limits_show(ctx: click.Context, mid: str | None, config_path, as_json: bool) -> None:
    """Override rows, or (with --mid) the effective limits of one merchant."""
    with opened(ctx) as store:
        if mid:
            merchant = store.get_merchant(mid)
            rows = store.get_risk_limit_rows(mid, merchant.mcc)
        else:
            rows = store.list_risk_limits()
    if mid:
        try:
            settings = load_settings(config_path)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        import attrs

        effective = attrs.asdict(resolve_limits(settings, merchant.mcc, rows))
        if as_json:
            print_json(effective)
            return
        print_table(["LIMIT", "VALUE"], [[k, v or "off"] for k, v in effective.items()])
        return
    data = [{"scope": r.scope, "key": r.key, **r.values()} for r in rows]
    if as_json:
        print_json(data)
        return
    headers = ["scope", "key", *LIMIT_FIELDS]
    print_table([h.upper() for h in headers], [[d.get(h) for h in headers] for d in data])
