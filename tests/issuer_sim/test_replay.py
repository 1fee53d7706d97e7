"""Record a session, then replay it against a fresh simulator (the CLI path)."""

from __future__ import annotations

import attrs
import trio
from click.testing import CliRunner

from host.cli import main
from tools.issuer_sim.server import Simulator
from tools.issuer_sim.testing import (
    LOST,
    LOW,
    PIN,
    RICH,
    Builder,
    connect,
    original_data,
    run_sim,
)


def test_record_then_replay(tmp_path, config):
    record = tmp_path / "rec.jsonl"
    b = Builder()

    async def session(sim, port):
        async with await connect(port) as c:
            await c.request(b.network("301"))
            purchase = b.purchase(RICH, 1_000, pin=PIN)
            await c.request(purchase)
            await c.request(purchase)  # a repeat: same 11 and 41, the first answer again
            void = b.financial("0200", "200000", RICH, 1_000, extra={90: original_data(purchase)})
            await c.request(void)  # needs the purchase first: order matters
            await c.request(b.purchase(LOW, 5_000, pin=PIN))  # 51
            await c.request(b.purchase(LOST, 100))  # 41
            await c.request(b.purchase(RICH, 100, pin="9999"))  # 55

    run_sim(attrs.evolve(config, record=record), session)

    fresh = attrs.evolve(config, state=tmp_path / "fresh.sqlite")

    async def main_():
        sim = Simulator(fresh)
        async with trio.open_nursery() as n:
            port = await n.start(sim.serve)
            args = ["issuer-sim", "replay", str(record), "--to", f"127.0.0.1:{port}"]
            args += ["--pin", PIN, "--speed", "0", "--check"]
            result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, args))
            n.cancel_scope.cancel()
        return result, sim

    result, _ = trio.run(main_)
    assert result.exit_code == 0, result.output
    assert "replayed=7 same=7 different=0 skipped=0" in result.output
    lines = [line for line in result.output.splitlines() if "recorded" in line]
    stans = [line.split()[1] for line in lines]
    assert stans == sorted(stans)  # the recorded order
    assert "recorded 55    replayed 55" in result.output  # its own (wrong) PIN block
    assert RICH not in result.output
