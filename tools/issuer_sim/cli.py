"""``poshost issuer-sim``: run the issuer simulator, reset its state, manage its cards."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import attrs
import click

from tools.issuer_sim.cards import Card, append_card, load_cards, mask_pan
from tools.issuer_sim.config import KEY_LENGTHS, SimConfig, check_key, positive_seconds


def _config(config_path: str | None, overrides: dict) -> SimConfig:
    config = SimConfig.load(config_path)
    changes = {k: v for k, v in overrides.items() if v is not None}
    failure = {}
    for key in ("latency", "drop_rate", "disconnect_rate"):
        if key in changes:
            failure[key] = changes.pop(key)
    for key in ("state", "cards", "rules", "script", "record"):
        if key in changes:
            changes[key] = Path(changes[key])
    keys = {name: changes.pop(name) for name in KEY_LENGTHS if name in changes}
    try:
        if keys:
            given = {name: check_key(name, value) for name, value in keys.items()}
            changes["keys"] = {**config.keys, **given}
        if "frame_timeout" in changes:
            changes["frame_timeout"] = positive_seconds(changes["frame_timeout"])
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    if failure:
        try:
            changes["failure"] = config.failure.updated(failure)
        except ValueError as e:
            raise click.BadParameter(str(e)) from e
    return attrs.evolve(config, **changes)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Simulator TOML config (default: specs/issuer_sim/demo.toml, TEST ONLY keys).",
)
state_option = click.option(
    "--state", type=click.Path(dir_okay=False), help="SQLite state file (default from config)."
)


@click.group(invoke_without_command=True)
@config_option
@click.option(
    "--listen", help="HOST:PORT to accept acquirer connections on (default 127.0.0.1:9583)."
)
@state_option
@click.option("--cards", type=click.Path(dir_okay=False), help="Card database (TOML).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False), help="Rules file (TOML).")
@click.option(
    "--script", type=click.Path(exists=True, dir_okay=False), help="Python hook: on_request()."
)
@click.option("--control", help="HOST:PORT of the HTTP control endpoint, e.g. 127.0.0.1:8089.")
@click.option("--record", type=click.Path(dir_okay=False), help="Append exchanges as JSON lines.")
@click.option("--latency", help="fixed:MS | uniform:LO-HI | normal:MEAN,p99=MS")
@click.option("--drop-rate", type=float, help="Share of requests never answered (0..1).")
@click.option("--disconnect-rate", type=float, help="Share of requests that close the link.")
@click.option("--seed", type=int, help="Seed for latency, drops and rule probabilities.")
@click.option(
    "--frame-timeout", type=float, help="Seconds a half-sent frame may wait (default 10)."
)
@click.option("--zpk", envvar="ISSUER_SIM_ZPK", help="Zone PIN key, hex (or $ISSUER_SIM_ZPK).")
@click.option("--zmk", envvar="ISSUER_SIM_ZMK", help="Zone master key, hex (or $ISSUER_SIM_ZMK).")
@click.option("--pvk", envvar="ISSUER_SIM_PVK", help="PIN verification key, hex ($ISSUER_SIM_PVK).")
@click.option("--lmk", envvar="ISSUER_SIM_LMK", help="SoftHSM master key, hex ($ISSUER_SIM_LMK).")
@click.pass_context
def issuer_sim(ctx: click.Context, config_path, **overrides) -> None:
    """Run the issuer simulator (ISO 8583 issuer dialect) until Ctrl-C."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["state"] = overrides.get("state")
    ctx.obj["cards"] = overrides.get("cards")
    if ctx.invoked_subcommand is not None:
        return
    import contextlib
    import signal

    import trio

    from host.harness import configure_logs
    from tools.issuer_sim.server import Simulator

    # `serve --issuer-sim` relays these lines and says which format its own lines use.
    configure_logs(os.environ.get("POSHOST_SIM_LOG_FORMAT", "auto"), "info")
    config = _config(config_path, overrides)
    try:
        sim = Simulator(config)
    except (OSError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(
        f"issuer simulator on {config.listen}; state {config.state}; cards {config.cards}"
        + (f"; control http://{config.control}" if config.control else ""),
        err=True,
    )

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sim.serve)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
                async for signum in signals:
                    if signum == signal.SIGHUP:  # reload the rules; a bad file keeps the old
                        with contextlib.suppress(ValueError):
                            sim.reload_rules()
                        continue
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(run)
    except* KeyboardInterrupt:  # Ctrl-C: inside the nursery it arrives in an exception group
        pass
    click.echo("stopped", err=True)


def _sub_config(ctx: click.Context, config_path, state, cards=None) -> SimConfig:
    obj = ctx.find_object(dict) or {}
    return _config(
        config_path or obj.get("config_path"),
        {"state": state or obj.get("state"), "cards": cards or obj.get("cards")},
    )


@issuer_sim.command()
@config_option
@state_option
@click.pass_context
def reset(ctx: click.Context, config_path, state) -> None:
    """Reset balances, holds, PIN tries and the ledger to the card file."""
    from tools.issuer_sim.ledger import Ledger

    config = _sub_config(ctx, config_path, state)
    cards = load_cards(config.cards)
    ledger = Ledger(config.state)
    ledger.reset(cards)
    ledger.close()
    click.echo(f"{config.state}: reset to {len(cards)} cards from {config.cards}")


@issuer_sim.group()
def cards() -> None:
    """List or add cards."""


@cards.command("list")
@config_option
@state_option
@click.option("--file", "from_file", is_flag=True, help="Show the card file, not the live state.")
@click.pass_context
def list_cards(ctx: click.Context, config_path, state, from_file) -> None:
    """Cards with masked PANs; live balances from the state file when it exists."""
    config = _sub_config(ctx, config_path, state)
    rows = []
    if not from_file and Path(config.state).exists():
        from tools.issuer_sim.ledger import Ledger

        ledger = Ledger(config.state)
        labels = ledger.labels()
        for c in ledger.cards():
            rows.append(
                (c.pan, c.expiry, c.status, c.currency, c.balance, c.available, c.daily_limit,
                 f"{c.pin_tries}/{c.max_pin_tries}", labels.get(c.pan, ""))
            )  # fmt: skip
        ledger.close()
        source = str(config.state)
    else:
        for c in load_cards(config.cards):
            rows.append(
                (c.pan, c.expiry, c.status, c.currency, c.balance, c.balance, c.daily_limit,
                 f"{c.pin_tries}/{c.max_pin_tries}", c.label)
            )  # fmt: skip
        source = str(config.cards)
    click.echo(f"# {source}")
    head = ("PAN", "EXP", "STATUS", "CCY", "BALANCE", "AVAILABLE", "DAILY", "PIN", "LABEL")
    fmt = "{:<19} {:<4} {:<7} {:<3} {:>12} {:>12} {:>10} {:>4}  {}"
    click.echo(fmt.format(*head))
    for pan, *rest in rows:
        click.echo(fmt.format(mask_pan(pan), *rest))


@cards.command("add")
@click.argument("pan")
@click.option("--expiry", required=True, help="YYMM")
@click.option("--pin", help="Clear PIN: only its PVV is stored. Prompted when not given.")
@click.option(
    "--status", type=click.Choice(["active", "lost", "stolen", "blocked"]), default="active"
)
@click.option("--balance", type=int, default=0, help="Minor units.")
@click.option("--daily-limit", type=int, default=0, help="Minor units; 0 = none.")
@click.option("--currency", default="156")
@click.option("--max-pin-tries", type=int, default=3)
@click.option("--pvki", type=int, default=1)
@click.option("--label", default="")
@config_option
@state_option
@click.option(
    "--file",
    "card_file",
    type=click.Path(dir_okay=False),
    help="Also append the card to this card file of yours (never the shipped specs).",
)
@click.pass_context
def add_card(ctx: click.Context, pan, pin, config_path, state, card_file, **values) -> None:
    """Add a card to the simulator's state (seeded from the card file first when new), and to
    --file when given. The shipped specs/issuer_sim/cards.toml is never edited: the tests and
    every fresh clone rely on it. `reset` drops cards that live only in the state."""
    from tools.issuer_sim.ledger import Ledger
    from tools.issuer_sim.security import IssuerKeys

    config = _sub_config(ctx, config_path, state)
    named = card_file or (ctx.find_object(dict) or {}).get("cards")  # a file the user named
    if named and _is_shipped(Path(named)):
        raise click.BadParameter(
            "that is the shipped card file; name a file of your own", param_hint="'--file'"
        )
    if pin is None:
        pin = click.prompt("PIN", hide_input=True, confirmation_prompt=True)
    try:
        pvv = IssuerKeys(config.keys).generate_pvv(pan, pin, values["pvki"])
        card = Card(pan=pan, pvv=pvv, **values)
    except Exception as e:  # bad PAN/PIN/field: one message
        raise click.ClickException(str(e)) from e
    ledger = Ledger(config.state)
    try:
        if ledger.is_empty() and Path(config.cards).exists():  # as the simulator's first start
            ledger.reset(load_cards(config.cards))
        if ledger.card(pan) is not None:
            raise click.ClickException(f"card {mask_pan(pan)} already in {config.state}")
        if named:
            try:
                append_card(named, card)
            except ValueError as e:
                raise click.ClickException(str(e)) from e
        ledger.add_card(card)
    finally:
        ledger.close()
    where = f"{config.state}" + (f" and {named}" if named else "")
    click.echo(f"added {mask_pan(pan)} (PVV stored, PIN not kept) to {where}")


def _is_shipped(path: Path) -> bool:
    """The card file that ships with poshost (specs/issuer_sim/cards.toml)."""
    shipped = SimConfig().cards
    return path.resolve() == Path(shipped).resolve()


def _replay_zpk(zpk: str | None, config: SimConfig) -> str:
    if zpk is None:
        return config.keys["zpk"]
    try:
        return check_key("zpk", zpk)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e


@issuer_sim.command()
@click.argument("record_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "target", required=True, help="HOST:PORT of the issuer to replay against.")
@click.option("--pin", help="PIN to put in a fresh PIN block where the recorded request had one.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="0 = back to back.")
@click.option("--timeout", type=float, default=15.0, show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 when a replayed code differs.")
@config_option
@click.option("--cards", "card_file", type=click.Path(dir_okay=False), help="Resolves masked PANs.")
@click.option("--zpk", envvar="ISSUER_SIM_ZPK", help="ZPK for fresh PIN blocks (default: config).")
@click.pass_context
def replay(ctx, record_file, target, pin, speed, timeout, check, config_path, card_file, zpk):
    """Resend the requests of a --record file and compare the response codes."""
    import trio

    from tools.issuer_sim import replay as rp
    from tools.issuer_sim.config import parse_hostport

    config = _sub_config(ctx, config_path, None, card_file)
    host, port = parse_hostport(target)

    def show(r: rp.ReplayResult) -> None:
        mark = "  " if r.same else "!="
        line = f"{r.mti} {r.stan:>6} {r.pan:<19} recorded {r.recorded} {mark} replayed"
        click.echo(f"{line} {r.replayed}")

    results, skipped = trio.run(
        functools.partial(
            rp.replay,
            record_file,
            host,
            port,
            cards=load_cards(config.cards),
            zpk=bytes.fromhex(_replay_zpk(zpk, config)),
            pin=pin,
            speed=speed,
            timeout=timeout,
            report=show,
        )
    )
    totals = rp.summary(results, skipped)
    click.echo(" ".join(f"{k}={v}" for k, v in totals.items()))
    if check and totals["different"]:
        sys.exit(1)
