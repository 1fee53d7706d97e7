"""``poshost certify [--host H:P] [SUITE...]``: run certification suites, write JUnit + HTML.

Without --host, a host and the issuer simulator are started in this process on loopback (fresh
data directory, demo estate), and issuer-side expectations are checked against the simulator.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
import structlog
import trio

from host.harness import DECLINED
from tools.certify import report, target
from tools.certify.provision import own_terminals
from tools.certify.runner import Runner, SuiteResult
from tools.certify.suite import SuiteError, available, load

# Exit status when the host under test cannot be reached at all (nothing was certified).
EXIT_UNREACHABLE = 4


async def run_suites(
    suites, host: str | None, data_dir: Path, timeout: float, stans, about, tids=None,
    wallet_control: str | None = None,
):  # fmt: skip
    if host:
        address, _, port = host.rpartition(":")
        about.extend(target.describe_remote(host))
        runner = Runner(address or "127.0.0.1", int(port), timeout=timeout, stans=stans, tids=tids,
                        wallet=wallet_control)  # fmt: skip
        return [await runner.run_suite(s) for s in suites]
    from tools.certify.stack import local_stack

    async with local_stack(data_dir) as stack:
        about.extend(target.describe_local(stack))
        runner = Runner("127.0.0.1", stack.port, sim=stack.sim, timeout=timeout, stans=stans,
                        wallet=stack.wallet_control)  # fmt: skip
        return [await runner.run_suite(s) for s in suites]


async def _reachable(host: str, timeout: float) -> str | None:
    """None when a TCP connection opens, else why not: one clear error instead of one
    connection error per case."""
    address, _, port = host.rpartition(":")
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(address or "127.0.0.1", int(port))
    except (OSError, trio.TooSlowError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    await stream.aclose()
    return None


@contextlib.contextmanager
def logs_to_stderr() -> Iterator[None]:
    """The host's and simulator's log lines are not the report: send them to stderr, warnings
    and up, so stdout carries only the summary; the previous logging setup comes back after."""
    saved = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)


@click.command()
@click.argument("suites", nargs=-1)
@click.option("--host", help="HOST:PORT of the host under test (default: start one here).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/certify"),
    show_default=True,
    help="Where junit.xml, report.html (and the STAN counters) go.",
)
@click.option("--timeout", type=float, default=15.0, show_default=True)
@click.option("--list", "list_only", is_flag=True, help="List the bundled suites and exit.")
@click.option("--demo-terminals", is_flag=True,
              help="With --host: use the demo terminals, not certify's own.")  # fmt: skip
@click.option("--failures-only", is_flag=True, help="The HTML report lists failed cases only.")
@click.option("--wallet-control", help="With --host: wallet-sim's control HOST:PORT (QR suite).")
def certify(
    suites, host, out: Path, timeout: float, list_only: bool, demo_terminals, failures_only: bool,
    wallet_control: str | None,
) -> None:  # fmt: skip
    """Run certification suites (default: all in specs/certification/)."""
    if list_only:
        for name in available():
            s = load(name)
            click.echo(f"{name:24} {len(s.cases):3} cases  {s.description}")
        return
    try:
        loaded = [load(name) for name in (suites or available())]
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from exc
    if host and (why := trio.run(_reachable, host, min(timeout, 5.0))) is not None:
        click.echo(f"Error: cannot reach the host at {host}: {why}; nothing was run.", err=True)
        raise SystemExit(EXIT_UNREACHABLE)
    out.mkdir(parents=True, exist_ok=True)
    # The terminals' STAN counters persist across runs: a host rejects a reused STAN (94).
    stan_file = out / "stans.json"
    stans = json.loads(stan_file.read_text()) if stan_file.exists() and host else {}
    tids = own_terminals(loaded) if host and not demo_terminals else None
    about: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="poshost-certify-") as tmp, logs_to_stderr():
        results: list[SuiteResult] = trio.run(
            run_suites, loaded, host, Path(tmp), timeout, stans, about, tids, wallet_control
        )
    stan_file.write_text(json.dumps(stans))
    (out / "junit.xml").write_bytes(report.junit(results))
    html = report.html_report(results, about, failures_only=failures_only)
    (out / "report.html").write_text(html)
    click.echo(report.console(results, about))
    click.echo(f"JUnit: {out / 'junit.xml'}  HTML: {out / 'report.html'}")
    if any(r.count("failed") or r.count("error") for r in results):
        raise SystemExit(DECLINED)
