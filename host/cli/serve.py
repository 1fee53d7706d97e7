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
    trace: bool,
    workers: int | None,
) -> None:
    """Run the host: terminals connect over TCP; authorizations go to the issuer links."""
    try:
        overrides: dict = {"log.dumps": "all"} if trace else {}
        if workers is not None:
            overrides["server.workers"] = workers
        config = config_file(config_path)
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
    logs.configure(settings.get("log.format"), settings.get("log.level"))

    sim = None
    if with_sim:
        sim = _start_simulator(settings)
    try:
        count = int(settings.get("server.workers"))
        if count > 1:
            from host.cli.workers import run_workers

            config = os.path.abspath(config) if config else None
            run_workers(settings, config=config, demo=demo, trace=trace, count=count, banner=banner)
        else:
            trio.run(_run, settings, demo)
    except KeyboardInterrupt:
        pass
    finally:
        if sim is not None:
            # The host has closed its issuer link by now: the simulator goes last, so Ctrl-C
            # does not show up as a spurious link_closed_by_peer.
            sim.terminate()
            sim.wait(timeout=10)


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
            "Stop with Ctrl-C.",
        ]
    return "\n".join(lines)


def _start_simulator(settings) -> subprocess.Popen:
    """The bundled issuer simulator in its own process group (Ctrl-C reaches serve only, which
    stops the host first), its lines relayed whole and marked ``issuer-sim |``."""
    # the simulator listens where the demo link points, so the two always meet
    address = settings["links"].get("sim", {}).get("address", "127.0.0.1:9583")
    env = dict(os.environ)
    env["POSHOST_SIM_LOG_FORMAT"] = logs.resolved_format(settings.get("log.format"))
    sim = subprocess.Popen(
        [sys.executable, "-c", "from host.cli import main; main()", "issuer-sim",
         "--listen", address],
        preexec_fn=_own_group_and_die_with_parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    threading.Thread(target=_relay, args=(sim.stdout,), daemon=True).start()
    return sim


def _relay(pipe) -> None:
    for raw in iter(pipe.readline, b""):
        logs.write_line("issuer-sim | " + raw.decode(errors="replace"))


def _own_group_and_die_with_parent() -> None:
    os.setpgrp()
    _die_with_parent()


def _die_with_parent() -> None:
    """Runs in the simulator's child before exec: on Linux it gets SIGTERM when serve dies, even
    by SIGKILL, instead of holding its port for the next `make run`."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
