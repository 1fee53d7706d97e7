"""``poshost load``: N emulated terminals against a host, a transaction mix, a rate, a duration.

poshost load --terminals 3 --rate 200 --duration 10     # LT000001..LT000003, added if missing
poshost load provision --count 50                       # on a remote host's machine, once
poshost load --terminals 50 --rate 2000 --duration 30 --workers 2 --html var/load.html

The load terminals are its own (never the demo terminals the emulator and certify use). Before
a run it adds the missing ones to the journal of the host the root --config describes.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click

from host.harness import Unreachable
from specs import demo_estate
from tools.load import report
from tools.load.engine import LoadConfig, LoadError, TerminalSpec, parse_mix
from tools.load.provision import specs as load_specs

DEFAULT_STATE = Path("var/load_state.json")


def demo_terminals() -> list[TerminalSpec]:
    return [
        TerminalSpec(t["tid"], t["mid"], t["tmk_clear_test_key"], t["key_mode"])
        for t in demo_estate()["terminals"]
        if t["key_mode"] != "dukpt"
    ]


def choose_terminals(count: int, prefix: str | None, stans: dict[str, int]) -> list[TerminalSpec]:
    """Load terminals of its own (LT000001..), never the demo terminals the emulator and
    certify use: sharing a TID means sharing its keys and STANs, and every tool then sees the
    others' sign-ons as wrong MACs and their STANs as duplicates (94)."""
    pool = load_specs(count, prefix or "LT")
    out = []
    for spec in pool[:count]:
        out.append(
            TerminalSpec(spec.tid, spec.mid, spec.tmk, spec.key_mode, stans.get(spec.tid, 0))
        )
    return out


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1:8583", show_default=True, help="HOST:PORT.")
@click.option("--terminals", "count", type=int, default=3, show_default=True)
@click.option("--prefix", default="LT", show_default=True, help="TID prefix of the load terminals.")
@click.option("--no-provision", is_flag=True,
              help="Do not add missing load terminals to the host's journal first (a remote "
              "host: run `poshost load provision` on its machine).")  # fmt: skip
@click.option("--rate", type=float, default=0.0, help="Requests/s in total (0: max speed).")
@click.option("--duration", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option(
    "--mix",
    default="purchase_pin=100",
    show_default=True,
    help="Weights of purchase_pin, purchase, balance, qr (pay by code; needs wallet-sim).",
)
@click.option(
    "--wallet-control",
    default="127.0.0.1:8591",
    show_default=True,
    help="wallet-sim's control HOST:PORT: the QR mix's payment codes come from it.",
)
@click.option("--wallet-user", default="load", show_default=True,
              help="The wallet-sim user whose codes the QR mix pays with.")  # fmt: skip
@click.option("--amount", type=int, default=1, show_default=True, help="Fen per purchase.")
@click.option("--pan", default="6222020000000001", show_default=True)
@click.option("--pin", default="1234", show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Generator processes.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write JSON here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Report page; a PNG of its charts is written beside it.")  # fmt: skip
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE,
    show_default=True,
    help="The terminals' STAN counters (a host refuses a STAN twice in a batch).",
)
@click.option("--quiet", is_flag=True, help="No live progress display.")
@click.option("--connect-timeout", type=click.FloatRange(min=0.1), default=5.0,
              show_default=True, help="Seconds to reach the host (else exit 4).")  # fmt: skip
@click.pass_context
def load(ctx, host, count, prefix, no_provision, rate, duration, mix, wallet_control, wallet_user,
         amount, pan, pin, workers, json_path, html_path, state_path: Path, quiet,
         connect_timeout) -> None:  # fmt: skip
    """Drive a host with emulated terminals; report throughput, latency and response codes."""
    if ctx.invoked_subcommand is not None:
        return
    address, _, port = host.rpartition(":")
    stans = json.loads(state_path.read_text()) if state_path.exists() else {}
    try:
        config = LoadConfig(
            host=address or "127.0.0.1",
            port=int(port),
            terminals=tuple(choose_terminals(count, prefix, stans)),
            duration=duration,
            rate=rate,
            mix=parse_mix(mix),
            pan=pan,
            pin=pin,
            amount=amount,
        )
        if any(kind == "qr" for kind, _ in config.mix):
            config = with_payment_codes(config, wallet_control, wallet_user)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    probe(config.host, config.port, connect_timeout)
    if not no_provision:
        added = provision_local(count, prefix)
        if added:
            click.echo(f"added {added} load terminal(s) to the host's estate", err=True)
    try:
        result = run_with_progress(config, workers, quiet)
    except LoadError as exc:
        raise click.ClickException(str(exc)) from exc
    stans.update(result.stans)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(stans))
    click.echo(report.text(result))
    for path in (json_path, html_path):
        if path:  # a run is not lost for want of its output directory
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if json_path:
        Path(json_path).write_text(report.as_json(result))
    if html_path:
        png = Path(html_path).with_suffix(".png")
        Path(html_path).write_text(report.html_page(result, png.name))
        report.write_png(result, png)
        click.echo(f"report: {html_path}  picture: {png}")


def with_payment_codes(config: LoadConfig, control: str, user: str) -> LoadConfig:
    """Each terminal gets the one-time codes its QR share of an open-loop run needs, issued by
    wallet-sim up front (so issuing them is not measured)."""
    import math

    import attrs
    import httpx

    if config.rate <= 0:
        raise ValueError("a QR mix needs --rate (codes are issued before the run)")
    total = sum(w for _, w in config.mix)
    share = sum(w for k, w in config.mix if k == "qr") / total
    per_terminal = math.ceil(config.rate * config.duration * share / len(config.terminals)) + 2
    terminals = []
    for spec in config.terminals:
        try:
            resp = httpx.post(
                f"http://{control}/users/{user}/codes",
                json={"count": per_terminal, "ttl": config.duration + 120},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            why = f"cannot reach wallet-sim's control endpoint at {control}: {exc}"
            raise Unreachable(why) from exc
        if resp.status_code != 200:
            raise ValueError(f"wallet-sim refused codes for {user!r}: {resp.text.strip()}")
        terminals.append(attrs.evolve(spec, codes=tuple(resp.json()["codes"])))
    return attrs.evolve(config, terminals=tuple(terminals))


def provision_local(count: int, prefix: str) -> int:
    """Add the missing load terminals to the journal of the host this config describes (the
    root --config / POSHOST_CONFIG). A query never creates a journal: none there, say so."""
    from host.harness import configured_host_with_journal
    from tools.load.provision import provision as do_provision

    settings = configured_host_with_journal(
        "for a host on another machine run `poshost load provision` there and add "
        "--no-provision here"
    )
    return do_provision(settings, count, prefix)


def probe(host: str, port: int, timeout: float) -> None:
    """Fail in one line (exit 4) when nothing listens, before any worker process starts."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach the host at {host}:{port}: {reason}") from exc


def run_with_progress(config: LoadConfig, workers: int, quiet: bool):
    from tools.load.run import run_processes

    if quiet:
        return run_processes(config, workers)
    from rich.live import Live
    from rich.text import Text

    expected = config.rate * config.duration if config.rate else None
    with Live(Text("signing on..."), refresh_per_second=4, transient=True) as live:

        def progress(done: int, elapsed: float) -> None:
            rate = done / elapsed if elapsed > 0 else 0.0
            goal = f"/{expected:,.0f}" if expected else ""
            live.update(
                Text(f"{elapsed:5.1f}s  completed {done:,}{goal}  ~{rate:,.0f}/s", style="bold")
            )

        return run_processes(config, workers, progress)


@load.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Host TOML.")
@click.option("--count", type=int, default=50, show_default=True)
@click.option("--prefix", default="LT", show_default=True)
def provision(config_path, count: int, prefix: str) -> None:
    """Add load terminals (PREFIX000001...) to the host's estate, with a TEST TMK."""
    from host.harness import config_file, load_settings
    from tools.load.provision import provision as do_provision

    added = do_provision(load_settings(config_file(config_path)), count, prefix)
    click.echo(f"{added} terminal(s) added; {count} load terminals available ({prefix}000001..)")
