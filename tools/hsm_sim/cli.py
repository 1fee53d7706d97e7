"""`poshost hsm-sim`: run the network HSM simulator."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click
import trio

from host.harness import ConfigError, parse_address


@click.command("hsm-sim")
@click.option("--listen", default="127.0.0.1:1500", show_default=True, help="HOST:PORT to serve.")
@click.option("--lmk-file", type=click.Path(dir_okay=False),
              help="File holding the LMK in hex; a missing one gets a fresh random LMK "
                   "(mode 0600), as an HSM commissioned for the first time.")  # fmt: skip
@click.option("--lmk", envvar="HSM_SIM_LMK", help="The LMK in hex (or $HSM_SIM_LMK).")
@click.option("--test-keys", is_flag=True,
              help="Also wrap published clear TEST keys (command TK: the demo estate's TMKs "
                   "and BDKs, links.*.zpk_clear_test_key). Never for real keys.")  # fmt: skip
def hsm_sim(listen: str, lmk_file: str | None, lmk: str | None, test_keys: bool) -> None:
    """A payShield-style network HSM on loopback holding the LMK (docs/hsm.md)."""
    from host.harness import configure_logs
    from keys.hsm import SoftHSM
    from tools.hsm_sim.server import HsmSim, serve_hsm, sim_hsm, sim_test_key_hsm

    if bool(lmk_file) == bool(lmk):
        raise click.UsageError("give the LMK with exactly one of --lmk-file or --lmk")
    if lmk_file:
        path = Path(lmk_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(SoftHSM.generate_lmk(32).hex().upper() + "\n")
            click.echo(f"hsm-sim generated a new LMK into {path}", err=True)
        text = path.read_text().strip()
    else:
        text = str(lmk)
    try:
        address, port = parse_address(listen)
        soft = sim_hsm(text)
        extra = sim_test_key_hsm(text) if test_keys else None
    except (ConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    configure_logs("auto", "info")
    click.echo(f"hsm-sim LMK check value {soft.lmk_check_value}", err=True)
    if test_keys:
        click.echo("hsm-sim wraps clear TEST keys (--test-keys): never give it real keys", err=True)
    try:
        trio.run(functools.partial(serve_hsm, HsmSim(soft, extra), address, port))
    except KeyboardInterrupt:
        sys.exit(0)
