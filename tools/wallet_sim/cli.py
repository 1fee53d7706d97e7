"""``poshost wallet-sim``: run the wallet platform simulator, and talk to a running one
(payment codes, password confirmations, paying a merchant's QR, faults, the daily bill)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import attrs
import click

from tools.wallet_sim.config import Faults, WalletSimConfig

DEFAULT_CONTROL = "127.0.0.1:8591"

control_option = click.option(
    "--control", "control_addr", envvar="WALLET_SIM_CONTROL", default=DEFAULT_CONTROL,
    show_default=True, help="HOST:PORT of the running simulator's control endpoint.",
)  # fmt: skip


@click.group(invoke_without_command=True)
@click.option("--listen", default="127.0.0.1:8590", show_default=True, help="Gateway HOST:PORT.")
@click.option("--control", default=DEFAULT_CONTROL, show_default=True,
              help="Control endpoint HOST:PORT ('' = none).")  # fmt: skip
@click.option("--state", type=click.Path(dir_okay=False), help="SQLite state file.")
@click.option("--users", type=click.Path(exists=True, dir_okay=False), help="Users (TOML).")
@click.option("--key-dir", type=click.Path(file_okay=False),
              help="Where the platform's key pair lives (made on first start).")  # fmt: skip
@click.option("--acquirer-key", type=click.Path(dir_okay=False),
              help="The acquirer's public key (PEM), for checking its signatures.")  # fmt: skip
@click.option("--app-id", help="The acquirer's application id.")
@click.option("--record", type=click.Path(dir_okay=False), help="Append exchanges as JSON lines.")
@click.option("--latency-ms", type=float, help="Added before each gateway answer.")
@click.option("--drop-rate", type=float, help="Share of answers lost (the effect stays).")
@click.option("--notify-loss", type=float, help="Share of notifications never delivered.")
@click.option("--code-ttl", type=float, help="Seconds a payment code is valid (default 60).")
@click.option("--seed", type=int, help="Seed for the injected faults.")
@click.pass_context
def wallet_sim(ctx: click.Context, listen, control, state, users, key_dir, acquirer_key, app_id,
               record, latency_ms, drop_rate, notify_loss, code_ttl, seed) -> None:  # fmt: skip
    """Run the wallet platform simulator until Ctrl-C (subcommands talk to a running one)."""
    if ctx.invoked_subcommand is not None:
        return
    import signal

    import trio

    from host.harness import configure_logs
    from tools.wallet_sim.server import WalletSim

    configure_logs(os.environ.get("POSHOST_SIM_LOG_FORMAT", "auto"), "info")
    changes = {"listen": listen, "control": control or None}
    for name, value in (("state", state), ("users", users), ("key_dir", key_dir),
                        ("acquirer_public_key", acquirer_key), ("record", record)):  # fmt: skip
        if value:
            changes[name] = Path(value)
    if app_id:
        changes["app_id"] = app_id
    if seed is not None:
        changes["seed"] = seed
    faults = {k: v for k, v in (("latency_ms", latency_ms), ("drop_rate", drop_rate),
                                 ("notify_loss", notify_loss), ("code_ttl", code_ttl))
              if v is not None}  # fmt: skip
    try:
        changes["faults"] = Faults().updated(faults)
        config = attrs.evolve(WalletSimConfig(), **changes)
        sim = WalletSim(config)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wallet-sim on {config.listen}; control {config.control}; state {config.state};"
               f" acquirer key {config.acquirer_public_key}", err=True)  # fmt: skip

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sim.serve)
            with trio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(run)
    except* KeyboardInterrupt:
        pass
    finally:
        sim.close()
    click.echo("stopped", err=True)


def _call(control_addr: str, method: str, path: str, data: dict | None = None):
    import httpx

    try:
        resp = httpx.request(method, f"http://{control_addr}{path}", json=data, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"cannot reach wallet-sim's control endpoint at {control_addr}: {exc}"
        ) from exc
    if resp.headers.get("content-type", "").startswith("text/csv"):
        return resp.status_code, resp.text
    return resp.status_code, resp.json()


@wallet_sim.command()
@click.option("--user", required=True, help="Whose wallet shows the code.")
@control_option
def code(user: str, control_addr: str) -> None:
    """Show a fresh one-time payment code (what the customer's phone shows; valid ~60 s)."""
    status, data = _call(control_addr, "POST", f"/users/{user}/code")
    if status != 200:
        raise click.ClickException(data.get("error", str(data)))
    click.echo(data["code"])


@wallet_sim.command()
@click.option("--user", help="The user typing the password (their oldest waiting payment).")
@click.option("--order", "out_trade_no", help="Or the acquirer's order number.")
@control_option
def confirm(user: str | None, out_trade_no: str | None, control_addr: str) -> None:
    """The user types the password: a payment waiting for it ("user paying") is paid."""
    if not user and not out_trade_no:
        raise click.UsageError("give --user or --order")
    status, data = _call(control_addr, "POST", "/confirm",
                         {"user": user, "out_trade_no": out_trade_no})  # fmt: skip
    if status != 200:
        raise click.ClickException(data.get("error", str(data)))
    click.echo(f"{data['out_trade_no']}: {data['status']}")


@wallet_sim.command()
@click.argument("qr")
@click.option("--user", required=True, help="The paying user.")
@control_option
def pay(qr: str, user: str, control_addr: str) -> None:
    """The user scans a merchant's QR (its content, as `terminal qr-order` printed it) and pays."""
    status, data = _call(control_addr, "POST", "/pay", {"qr": qr, "user": user})
    trade = data.get("trade") or {}
    click.echo(f"{data.get('result', data.get('error'))}: order {trade.get('out_trade_no', '-')}")
    if status != 200:
        sys.exit(3)


@wallet_sim.command()
@control_option
def users(control_addr: str) -> None:
    """Users and their balances (fen)."""
    _, data = _call(control_addr, "GET", "/users")
    for u in data:
        click.echo(f"{u['id']:<10} {u['balance']:>14} password above {u['password_threshold']}")


@wallet_sim.command()
@click.option("--set", "changes", multiple=True, help="NAME=VALUE, e.g. notify_loss=1.")
@control_option
def settings(changes: tuple[str, ...], control_addr: str) -> None:
    """Show or change the faults in force (latency_ms, drop_rate, notify_loss, code_ttl, ...)."""
    if changes:
        values = {}
        for item in changes:
            name, _, raw = item.partition("=")
            values[name.strip()] = json.loads(raw)
        status, data = _call(control_addr, "PUT", "/settings", values)
    else:
        status, data = _call(control_addr, "GET", "/settings")
    if status != 200:
        raise click.ClickException(data.get("error", str(data)))
    click.echo(json.dumps(data, indent=2))


@wallet_sim.command()
@click.option("--date", "day", required=True, help="The wallet's calendar day, YYYYMMDD.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the bill here.")
@control_option
def bill(day: str, out: str | None, control_addr: str) -> None:
    """The daily bill: every payment and refund of the day (CSV)."""
    status, data = _call(control_addr, "GET", f"/bill?date={day}")
    if status != 200:
        raise click.ClickException(data.get("error", str(data)))
    if out:
        Path(out).write_text(data)
        click.echo(f"wrote {out}")
    else:
        click.echo(data, nl=False)
