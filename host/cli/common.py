"""What every ``poshost`` command that opens the journal shares: the ``--journal`` option and
its resolution from the config, opening the store with a clean exit when it is unreachable,
and the table and JSON printers, so each command group states only its own options."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import structlog

from host.exitcodes import Unreachable
from host.formatting import local_time, plain
from host.store import StoreError, SyncStore
from host.store.db import Url

JOURNAL_OPTION_HELP = "Store URL: sqlite:///path/file.sqlite or postgresql://host:port/db."


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """CLI output is for people and pipes: unless the application configured structlog itself,
    send log lines to stderr, WARNING and up, for the duration of the command."""
    if structlog.is_configured():
        yield
        return
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    try:
        yield
    finally:
        structlog.reset_defaults()


def journal_option(fn):
    return click.option(
        "--journal",
        "url",
        default=None,
        help=JOURNAL_OPTION_HELP + " Default: journal.url of the config ($POSHOST_JOURNAL_URL), "
        "else <data.dir>/poshost.sqlite, the journal `serve` uses.",
    )(fn)


def journal_url(url: str | None, config_path: str | None = None) -> str:
    """The journal a store command opens: --journal, else the one `serve` would open with the
    same config and environment (one variable, POSHOST_JOURNAL_URL, for both)."""
    if os.environ.get("POSHOST_JOURNAL") and not os.environ.get("POSHOST_JOURNAL_URL"):
        raise click.UsageError(
            "POSHOST_JOURNAL is no longer read: set POSHOST_JOURNAL_URL (the one `serve` reads)"
        )
    if url:
        return url
    from host.config import ConfigError, config_file, load_settings

    try:
        return load_settings(config_file(config_path)).journal_url
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def store_context(url: str | None, *, must_exist: bool) -> dict[str, Any]:
    """The group's ctx.obj. ``must_exist``: a command that reads a journal never creates an
    empty one (it would answer "no rows" from the wrong folder instead of saying so)."""
    return {"url": journal_url(url), "must_exist": must_exist}


def require_existing(url: str) -> None:
    try:
        parsed = Url.parse(url)
    except StoreError as exc:
        raise click.BadParameter(str(exc), param_hint="'--journal'") from exc
    if parsed.backend == "sqlite" and not Path(parsed.target).exists():
        raise Unreachable(
            f"no journal at {parsed.target}: start the host once (make run), or point at its "
            "journal with `poshost --config FILE`, POSHOST_CONFIG or --journal"
        )


def configured_host_with_journal(advice: str) -> Any:
    """The settings of the host the root --config / POSHOST_CONFIG describes, whose journal must
    exist: a tool that adds terminals to it never creates one (``advice`` says what to do)."""
    from host.config import ConfigError, config_file, load_settings

    try:
        settings = load_settings(config_file())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        require_existing(settings.journal_url)
    except Unreachable as exc:
        raise Unreachable(f"{exc.message}; {advice}") from exc
    return settings


@contextlib.contextmanager
def opened(ctx: click.Context) -> Iterator[SyncStore]:
    """The store named by the group's --journal; store errors become clean CLI errors."""
    if ctx.obj.get("must_exist"):
        require_existing(ctx.obj["url"])
    try:
        with quiet_logs(), SyncStore.open(ctx.obj["url"]) as store:
            yield store
    except (StoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def when(ms: int | None) -> str:
    """Epoch milliseconds as local time with the year (the JSON output keeps the raw ms)."""
    return "" if ms is None else local_time(ms)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[("" if v is None else plain(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
