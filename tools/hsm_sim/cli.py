"""`poshost hsm-sim`: run the network HSM simulator."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
import trio

from host.harness import ConfigError, parse_address


@click.command("hsm-sim")
@click.option("--listen", default="127.0.0.1:1500", show_default=True, help="HOST:PORT to serve.")
@click.option("--lmk-file", type=click.Path(exists=True, dir_okay=False),
              help="File holding the LMK in hex: the host's <data.dir>/lmk.hex.")  # fmt: skip
@click.option("--lmk", envvar="HSM_SIM_LMK", help="The LMK in hex (or $HSM_SIM_LMK).")
def hsm_sim(listen: str, lmk_file: str | None, lmk: str | None) -> None:
    """A payShield-style network HSM on loopback holding the host's LMK (docs/hsm.md)."""
    from host.harness import configure_logs
    from tools.hsm_sim.server import HsmSim, serve_hsm, sim_hsm

    if bool(lmk_file) == bool(lmk):
        raise click.UsageError("give the LMK with exactly one of --lmk-file or --lmk")
    text = Path(lmk_file).read_text().strip() if lmk_file else str(lmk)
    try:
        address, port = parse_address(listen)
        soft = sim_hsm(text)
    except (ConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    configure_logs("auto", "info")
    click.echo(f"hsm-sim LMK check value {soft.lmk_check_value}", err=True)
    try:
        trio.run(functools.partial(serve_hsm, HsmSim(soft), address, port))
    except KeyboardInterrupt:
        sys.exit(0)
