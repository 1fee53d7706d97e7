"""The `poshost` console script.

Subcommands are registered by dotted path and imported only when invoked, so `poshost --help`
stays fast and a subcommand's heavy imports (trio, crypto, databases) cost nothing elsewhere.
Each feature adds one line to ``SUBCOMMANDS``; the command object lives next to its feature.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "decode": "host.cli.codec:decode",
    "encode": "host.cli.codec:encode",
    "journal": "host.cli.journal:journal",
    "estate": "host.cli.estate_commands:estate",
    "serve": "host.cli.serve:serve",
    "settle": "host.cli.settle:settle",
    "issuer-sim": "tools.issuer_sim.cli:issuer_sim",
    "hsm-sim": "tools.hsm_sim.cli:hsm_sim",
    "keys": "host.cli.keys:keys",
    "terminal": "tools.terminal.cli:terminal",
    "risk": "host.cli.risk:risk",
    "backoffice": "host.cli.backoffice:backoffice",
    "certify": "tools.certify.cli:certify",
    "load": "tools.load.cli:load",
    "webhook-receiver": "tools.webhook_receiver.cli:webhook_receiver",
    "wallet-sim": "tools.wallet_sim.cli:wallet_sim",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented pattern)."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attr = self._lazy[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        """A configuration error that a subcommand meets late (a tool that provisions keys,
        say) is the same one-line error, exit 1, as one met at start, never a traceback."""
        from host.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(
    cls=LazyGroup, lazy=SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="POSHOST_CONFIG",
    show_envvar=True,
    help="The host's TOML config, for every subcommand (journal, data dir, LMK).",
)
@click.version_option(package_name="poshost")
def main(config_path: str | None) -> None:
    """poshost: an ISO 8583 acquiring host for POS terminals, and its peers.

    \b
    Exit codes: 0 done; 1 error; 2 usage error; 3 declined or a failed check;
    4 host or journal unreachable."""
