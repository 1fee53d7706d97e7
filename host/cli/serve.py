"""`poshost serve`: run the acquiring host."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading

import click
import trio

from host import logs
from host.config import ConfigError, config_file, load_settings


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML file.")
@click.option("--print-config", is_flag=True, help="Show the effective settings and exit.")
@click.option("--demo", is_flag=True, help="Load the demo estate (specs/demo_estate.toml).")
@click.option(
    "--issuer-sim",
    "with_sim",
    is_flag=True,
    help="Also start the bundled issuer simulator (its own process) for the demo link.",
)
@click.option(
    "--wallet-sim",
    "with_wallet",
    is_flag=True,
    help="Also start wallet-sim (its own process) and a wallet link to it for QR payments.",
)
@click.option(
    "--trace",
    is_flag=True,
    help="Masked request/response dumps on every exchange's log line (log.dumps = all), not "
    "only on declines: for certification runs.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Host processes sharing the port and the journal writer (server.workers, default 1).",
)
def serve(
    config_path: str | None,
    print_config: bool,
    demo: bool,
    with_sim: bool,
    with_wallet: bool,
    trace: bool,
    workers: int | None,
) -> None:
    """Run the host: terminals connect over TCP; authorizations go to the issuer links."""
    try:
        config = config_file(config_path)
        overrides: dict = {"log.dumps": "all"} if trace else {}
        if workers is not None:
            overrides["server.workers"] = workers
        settings = load_settings(config, overrides=overrides)
        if with_wallet:
            overrides.update(wallet_overrides(settings))
            settings = load_settings(config, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if print_config:
        for key, value, source in settings.describe_masked():
            shown = value if value == "<set>" else json.dumps(value)
            click.echo(f"{key:32} = {shown:40} # {source}")
        return
    # Everything the host creates (journal, its WAL, LMK, recon files) is the owner's alone.
    os.umask(0o077)
    logs.configure(settings.log.format, settings.log.level)

    sims = []
    if with_sim:
        sims.append(_start_simulator(settings))
    if with_wallet:
        sims.append(_start_wallet_sim(settings))
    try:
        if settings.server.workers > 1:
            from host.cli.workers import run_workers

            config = os.path.abspath(config) if config else None
            run_workers(settings, config=config, overrides=overrides, demo=demo, banner=banner)
        else:
            trio.run(_run, settings, demo)
    except KeyboardInterrupt:
        pass
    except BaseExceptionGroup as group:
        why = _startup_error(group)
        if why is None:
            raise
        raise click.ClickException(why) from None
    finally:
        # The host has closed its links by now: the simulators go last, so Ctrl-C does not
        # show up as a spurious link_closed_by_peer.
        for sim in sims:
            sim.terminate()
            sim.wait(timeout=10)


def _startup_error(group: BaseExceptionGroup) -> str | None:
    """The message of a StartupError in the group the host's nurseries raised, if any."""
    from host.runtime import StartupError

    found = group.subgroup(StartupError)
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return str(found) if found is not None else None


async def _run(settings, demo: bool) -> None:
    from host.runtime import run_host

    async with trio.open_nursery() as nursery:
        running = await nursery.start(
            lambda task_status: run_host(
                settings, demo=demo, handle_signals=True, task_status=task_status
            )
        )
        logs.write_line(banner(settings, running.port, demo))


def banner(settings, port: int, demo: bool) -> str:
    """What to try next, once the host listens: the first commands of the README."""
    lines = [f"poshost is listening on port {port}; journal {settings.journal_url}."]
    if demo:
        lines += [
            "Try this next, in another shell:",
            "  poshost terminal --profile demo:12345678 sign-on",
            "  poshost terminal purchase --amount 1000 --pan 6222020000000001 --expiry 3012 "
            "--pin 1234",
            "  poshost journal list",
        ]
        if settings.qr.link:
            lines += [
                "  poshost terminal qr-pay --amount 1000"
                " --code $(poshost wallet-sim code --user alice)",
                "  poshost terminal qr-order --amount 880"
                "   # then: poshost wallet-sim pay <QR content> --user bob",
            ]
        lines.append("Stop with Ctrl-C.")
    return "\n".join(lines)


WALLET_GATEWAY = "127.0.0.1:8590"
WALLET_CONTROL = "127.0.0.1:8591"
WALLET_NOTIFY = "127.0.0.1:8592"


def wallet_overrides(settings) -> dict:
    """`--wallet-sim`: a wallet link to the bundled simulator, unless the config has one, and QR
    payments through it (docs/qr.md). The simulator keeps its state and key pair in the data
    directory, next to the host's, so the two find each other's public keys."""
    from codec.wallet import DEMO_APP_ID

    values: dict = {}
    name = settings.qr.link or "wallet"
    if name not in settings.links:
        values[f"links.{name}"] = {
            "address": WALLET_GATEWAY,
            "protocol": "wallet",
            "app_id": DEMO_APP_ID,
            "platform_key": str(settings.data_dir / "wallet-sim" / "platform_public.pem"),
        }
    values["qr.link"] = name
    if not settings.qr.notify_listen:
        values["qr.notify_listen"] = WALLET_NOTIFY
    return values


def _start_wallet_sim(settings) -> subprocess.Popen:
    """wallet-sim in its own process group, state and keys under <data dir>/wallet-sim/, the
    host's public key read from the data dir (written there on the host's first start)."""
    from host.issuer.wallet_link import acquirer_key_paths

    link = settings.links[settings.qr.link]
    _, acquirer_public = acquirer_key_paths(settings.data_dir, link.key_file or None)
    folder = settings.data_dir / "wallet-sim"
    args = [
        "wallet-sim",
        "--listen",
        link.address,
        "--control",
        WALLET_CONTROL,
        "--state",
        str(folder / "state.sqlite"),
        "--key-dir",
        str(folder),
        "--acquirer-key",
        str(acquirer_public),
        "--app-id",
        link.app_id,
    ]
    return _child(args, "wallet-sim | ", settings)  # fmt: skip


def _start_simulator(settings) -> subprocess.Popen:
    """The bundled issuer simulator in its own process group (Ctrl-C reaches serve only, which
    stops the host first), its lines relayed whole and marked ``issuer-sim |``."""
    # the simulator listens where the demo link points, so the two always meet
    sim_link = settings.links.get("sim")
    address = sim_link.address if sim_link is not None else "127.0.0.1:9583"
    return _child(["issuer-sim", "--listen", address], "issuer-sim | ", settings)


def _child(args: list[str], mark: str, settings) -> subprocess.Popen:
    env = dict(os.environ)
    env["POSHOST_SIM_LOG_FORMAT"] = logs.resolved_format(settings.log.format)
    sim = subprocess.Popen(
        [sys.executable, "-c", "from host.cli import main; main()", *args],
        preexec_fn=_own_group_and_die_with_parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    threading.Thread(target=_relay, args=(sim.stdout, mark), daemon=True).start()
    return sim


def _relay(pipe, mark: str) -> None:
    for raw in iter(pipe.readline, b""):
        logs.write_line(mark + raw.decode(errors="replace"))


def _own_group_and_die_with_parent() -> None:
    os.setpgrp()
    _die_with_parent()


def _die_with_parent() -> None:
    """Runs in the simulator's child before exec: on Linux it gets SIGTERM when serve dies, even
    by SIGKILL, instead of holding its port for the next `make run`."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
