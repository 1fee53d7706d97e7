"""``poshost backoffice``: serve the read-only back-office HTTP API (host/backoffice)."""

from __future__ import annotations

import contextlib

import click

from host.cli_journal import journal_option


@click.command()
@journal_option
@click.option("--listen", default="127.0.0.1:8580", show_default=True, help="HOST:PORT.")
def backoffice(url: str, listen: str) -> None:
    """Serve the back-office query API (HTTP + JSON, per-merchant bearer tokens)."""
    import trio

    from host.backoffice.api import serve_backoffice
    from host.logs import configure
    from host.store import open_store

    configure("auto", "info")

    async def main() -> None:
        async with open_store(url) as store:
            await serve_backoffice(store, listen)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
