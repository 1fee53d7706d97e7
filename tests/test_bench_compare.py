"""`make bench` says how long it runs and compares with the previous var/bench/bench.json."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_host.py"


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_host", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(per_s: float, p99: float, cpu: float) -> dict:
    return {"throughput_per_s": per_s, "latency_ms": {"p99": p99}, "server_cpu_us_per_msg": cpu}


def test_default_run_is_announced_as_a_few_minutes():
    """Three to four minutes: the host, the thread writer, the network HSM, echo and floors."""
    minutes = bench_module().planned_seconds(8.0, [1000.0, 2000.0]) / 60
    assert 3.0 <= minutes <= 4.5


def test_comparison_with_the_previous_run(tmp_path):
    b = bench_module()
    previous = {"host full speed": row(1000, 5.0, 300), "_when": "2026-11-30"}
    current = {"host full speed": row(1100, 4.0, 280), "echo full speed": row(9000, 1.0, 50)}
    (line,) = b.compare(previous, current)  # echo has no previous row: not compared
    assert "1,100/s (+10%)" in line and "p99 4.00 ms (-20%)" in line and "(-7%)" in line
    assert b.compare({}, current) == []
    assert b.load_previous(tmp_path / "missing.json") == {}
    (tmp_path / "broken.json").write_text("{")
    assert b.load_previous(tmp_path / "broken.json") == {}
