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
from tools.load.run import LoadReport, run_in_process


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
    # the mix breaks down by type, and the timeline accounts for every answer
    assert {k: v["completed"] for k, v in s["by_type"].items()} == {
        "purchase_pin": 210, "purchase": 60, "balance": 30}  # fmt: skip
    assert all(v["response_codes"] == {"00": v["completed"]} for v in s["by_type"].values())
    assert sum(row["per_s"] for row in s["timeline"]) == 300 and len(s["timeline"]) >= 2
    assert "p99" in report.text(r) and "balance inquiry" in report.text(r)
    page = report.html_page(r)
    assert page.count("<rect") >= 1 and "<script" not in page
    assert "By transaction type" in page and "purchase with PIN" in page
    assert "Throughput over time" in page and "Latency over time" in page and "p95" in page
    assert "{" not in page.split("<table>")[1].split("</table>")[0]  # no raw JSON in cells


def test_histogram_buckets_cover_every_sample():
    xs = [0.05, 0.2, 0.25, 1.0, 3.0, 3.1, 250.0]
    bars = report.histogram(xs)
    assert sum(c for _, _, c in bars) == len(xs)
    assert all(lo < hi for lo, hi, _ in bars)


def _report(codes: dict[str, int]) -> LoadReport:
    samples, t = [], 0.0
    for code, n in codes.items():
        for i in range(n):
            samples.append((t, 0.002 + i * 1e-5, "purchase_pin" if i % 2 else "balance", code))
            t += 0.01
    lat = sorted(x[1] * 1000 for x in samples)
    return LoadReport("127.0.0.1:8583", "open loop at 100/s", 3, 1, 2.0, len(samples),
                      len(samples), t, codes, {"timeout": 2}, lat, 0.5, samples=samples,
                      started=1_800_000_000.0)  # fmt: skip


def test_report_highlights_codes_other_than_00_and_writes_a_png(tmp_path):
    r = _report({"00": 150, "51": 7})
    page = report.html_page(r, "load.png")
    assert "<span class='bad'>51: 7</span>" in page and "<span class='ok'>00: 150</span>" in page
    assert "<span class='bad'>timeout: 2</span>" in page
    assert "p95" in page and "load.png" in page
    assert "2027-" in page  # the start time in local time, with the year
    assert [row["not_00"] for row in r.timeline()] == [0, 7]  # the 51s arrived in second 1
    png = tmp_path / "load.png"
    report.write_png(r, png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (900, 900)
