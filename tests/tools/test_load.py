"""A short open-loop load run against a real host: the report's counts match the journal."""

from __future__ import annotations

import json
from collections import Counter

import trio

from tools.certify.stack import local_stack
from tools.load import report
from tools.load.cli import demo_terminals
from tools.load.engine import LoadConfig, parse_mix
from tools.load.provision import provision, specs
from tools.load.run import run_in_process


def test_short_open_loop_run_matches_the_journal(tmp_path):
    async def main():
        async with local_stack(tmp_path) as stack:
            host = stack.running.host
            provision(host.settings, 2)  # two load terminals next to the demo ones
            terminals = (*demo_terminals(), *specs(2))
            config = LoadConfig(
                "127.0.0.1", stack.port, terminals, duration=2.0, rate=150,
                mix=parse_mix("purchase_pin=70,purchase=20,balance=10"),
            )  # fmt: skip
            before = (await stack.sim.card(config.pan)).balance
            r = await run_in_process(config)
            rows = []
            for spec in terminals:
                rows += await host.store.list_transactions(tid=spec.tid, limit=10_000)
            after = (await stack.sim.card(config.pan)).balance
            return r, rows, before - after

    r, rows, debited = trio.run(main)
    assert r.sent == 300 and r.completed == 300 and not r.errors
    assert r.codes == {"00": 300}
    journal = Counter(row.txn_type for row in rows)
    assert journal == {"purchase": 270, "balance_inquiry": 30}
    assert Counter(row.response_code for row in rows) == {"00": 300}
    assert debited == 270  # 1 fen per purchase
    assert 100 < r.throughput < 200 and r.percentile(50) <= r.percentile(99)

    s = json.loads(report.as_json(r))
    assert s["completed"] == 300 and s["response_codes"] == {"00": 300}
    assert "p99" in report.text(r)
    page = report.html_page(r)
    assert page.count("<rect") >= 1 and "<script" not in page


def test_histogram_buckets_cover_every_sample():
    xs = [0.05, 0.2, 0.25, 1.0, 3.0, 3.1, 250.0]
    bars = report.histogram(xs)
    assert sum(c for _, _, c in bars) == len(xs)
    assert all(lo < hi for lo, hi, _ in bars)
