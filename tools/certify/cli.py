"""``poshost certify [--host H:P] [SUITE...]``: run certification suites, write JUnit + HTML.

Without --host, a host and the issuer simulator are started in this process on loopback (fresh
data directory, demo estate), and issuer-side expectations are checked against the simulator.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
import trio

from host.exitcodes import DECLINED
from tools.certify import report
from tools.certify.provision import own_terminals
from tools.certify.runner import Runner, SuiteResult
from tools.certify.suite import SuiteError, available, load


async def run_suites(suites, host: str | None, data_dir: Path, timeout: float, stans, tids=None):
    if host:
        address, _, port = host.rpartition(":")
        runner = Runner(address or "127.0.0.1", int(port), timeout=timeout, stans=stans, tids=tids)
        return [await runner.run_suite(s) for s in suites]
    from tools.certify.stack import local_stack

    async with local_stack(data_dir) as stack:
        runner = Runner("127.0.0.1", stack.port, sim=stack.sim, timeout=timeout, stans=stans)
        return [await runner.run_suite(s) for s in suites]


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
def certify(suites, host, out: Path, timeout: float, list_only: bool, demo_terminals) -> None:
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
    out.mkdir(parents=True, exist_ok=True)
    # The terminals' STAN counters persist across runs: a host rejects a reused STAN (94).
    stan_file = out / "stans.json"
    stans = json.loads(stan_file.read_text()) if stan_file.exists() and host else {}
    tids = own_terminals(loaded) if host and not demo_terminals else None
    with tempfile.TemporaryDirectory(prefix="poshost-certify-") as tmp:
        results: list[SuiteResult] = trio.run(
            run_suites, loaded, host, Path(tmp), timeout, stans, tids
        )
    stan_file.write_text(json.dumps(stans))
    (out / "junit.xml").write_bytes(report.junit(results))
    (out / "report.html").write_text(report.html_report(results))
    click.echo(report.console(results))
    click.echo(f"JUnit: {out / 'junit.xml'}  HTML: {out / 'report.html'}")
    if any(r.count("failed") or r.count("error") for r in results):
        raise SystemExit(DECLINED)
