"""`poshost serve`: run the acquiring host."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys

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
def serve(config_path: str | None, print_config: bool, demo: bool, with_sim: bool) -> None:
    """Run the host: terminals connect over TCP; authorizations go to the issuer links."""
    try:
        settings = load_settings(config_file(config_path))
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
    from host.runtime import run_host

    sim = None
    if with_sim:
        # the simulator listens where the demo link points, so the two always meet
        address = settings["links"].get("sim", {}).get("address", "127.0.0.1:9583")
        sim = subprocess.Popen(
            [sys.executable, "-c", "from host.cli import main; main()", "issuer-sim",
             "--listen", address],
            preexec_fn=_die_with_parent,
        )  # fmt: skip
    try:
        trio.run(lambda: run_host(settings, demo=demo, handle_signals=True))
    except KeyboardInterrupt:
        pass
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(timeout=10)


def _die_with_parent() -> None:
    """Runs in the simulator's child before exec: on Linux it gets SIGTERM when serve dies, even
    by SIGKILL, instead of holding its port for the next `make run`."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
