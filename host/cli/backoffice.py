"""``poshost backoffice``: serve the read-only back-office HTTP API (host/backoffice) on its own,
with the throttles of the ``[backoffice]`` settings and a security monitor on the journal."""

from __future__ import annotations

import contextlib
import functools
import signal

import click

from host.cli.common import journal_option, journal_url, require_existing


@click.command()
@journal_option
@click.option("--listen", default="127.0.0.1:8580", show_default=True, help="HOST:PORT.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML file.")
def backoffice(url: str | None, listen: str, config_path: str | None) -> None:
    """Serve the back-office query API (HTTP + JSON, per-merchant bearer tokens)."""
    import trio

    from host.backoffice.api import serve_backoffice
    from host.config import ConfigError, config_file, load_settings
    from host.logs import configure
    from host.security import SecurityMonitor
    from host.store import open_store

    try:
        office = load_settings(config_file(config_path)).backoffice
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    url = journal_url(url, config_path)
    require_existing(url)
    configure("auto", "info")

    async def main() -> None:
        async with open_store(url) as store, trio.open_nursery() as nursery:
            monitor = SecurityMonitor(store)
            await nursery.start(monitor.run)
            nursery.start_soon(
                functools.partial(
                    serve_backoffice, store, listen, monitor=monitor,
                    fail_burst=office.fail_burst,
                    fail_refill_seconds=office.fail_refill_seconds,
                )
            )  # fmt: skip
            # SIGINT or SIGTERM: stop serving; the monitor journals its last counts on the way out
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
