"""Journal write benchmark: group commit through the writer thread vs. one commit per write on
the event-loop thread (the naive baseline), for SQLite and (when reachable) PostgreSQL.

Each simulated transaction is two awaited writes, as in the host: ``insert_pending`` (journal
the request) then ``record_outcome`` (journal the answer).

* closed loop: ``--concurrency`` tasks write back to back for ``--seconds``: throughput.
* open loop: transactions arrive at a fixed ``--rate`` per second; each write's latency is
  counted from when it was due (the arrival, or the end of the write before it), so a blocked
  event loop shows up as latency, as it would for a terminal.
* loop lag: how late a 1 ms timer fires while the load runs (the event loop's stalls).

    .venv/bin/python benchmarks/journal_bench.py [--seconds 3] [--concurrency 100] [--rate 1000]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

import attrs
import structlog
import trio

from host.store import NewTransaction, Store, SyncStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
_stans = itertools.count(1)


def new_txn() -> NewTransaction:
    n = next(_stans)
    return NewTransaction(
        tid=f"T{n % 500:07d}", mid="898340154110001", batch=f"{n // 1_000_000 + 1:06d}",
        stan=f"{n % 1_000_000:06d}", business_date="20261125", txn_type="purchase",
        mti="0200", amount=1234, pan_masked="622848******1234", pan_fingerprint="f" * 32,
    )  # fmt: skip


@attrs.define
class Result:
    backend: str
    mode: str
    load: str
    ops: int = 0
    commits: int = 0
    seconds: float = 0.0
    latencies: list[float] = attrs.Factory(list)
    lags: list[float] = attrs.Factory(list)

    def row(self) -> list[str]:
        lat = sorted(self.latencies)
        return [
            self.backend,
            self.mode,
            self.load,
            f"{self.ops / self.seconds:,.0f}",
            f"{self.commits / self.seconds:,.0f}",
            f"{self.ops / max(self.commits, 1):.1f}",
            f"{pct(lat, 50) * 1e3:.2f}",
            f"{pct(lat, 99) * 1e3:.2f}",
            f"{pct(sorted(self.lags), 99) * 1e3:.2f}",
        ]


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


# A "writer" is the pair of awaitable write functions one mode offers.
Write = Callable[..., Awaitable]


class GroupCommit:
    """The real thing: ``await store.<write>()`` through the writer thread."""

    name = "writer thread, group commit"

    def __init__(self, store: Store):
        self.store = store
        self._start = attrs.evolve(store.writer_stats)

    async def insert(self, txn):
        return await self.store.insert_pending(txn)

    async def outcome(self, txn_id):
        await self.store.record_outcome(txn_id, status="approved", response_code="00")

    def commits(self) -> int:
        return self.store.writer_stats.commits - self._start.commits


class OnLoop:
    """The baseline: each write is its own transaction, committed on the event-loop thread."""

    name = "baseline: commit per op on loop"

    def __init__(self, store: SyncStore):
        self.store = store
        self.count = 0

    async def insert(self, txn):
        self.count += 1
        return self.store.insert_pending(txn)

    async def outcome(self, txn_id):
        self.count += 1
        self.store.record_outcome(txn_id, status="approved", response_code="00")

    def commits(self) -> int:
        return self.count


async def measure_lag(lags: list[float], stop: trio.Event) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await trio.sleep(0.001)
        lags.append(max(0.0, time.perf_counter() - t - 0.001))


async def closed_loop(writer, result: Result, seconds: float, concurrency: int) -> None:
    deadline = time.perf_counter() + seconds

    async def worker():
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            txn_id = await writer.insert(new_txn())
            t1 = time.perf_counter()
            await writer.outcome(txn_id)
            t2 = time.perf_counter()
            result.latencies += [t1 - t0, t2 - t1]
            result.ops += 2
            await trio.sleep(0)  # let the others run (the baseline never yields otherwise)

    await run_with_lag(result, [worker] * concurrency)


async def open_loop(writer, result: Result, seconds: float, rate: float) -> None:
    async def one(due: float):
        txn_id = await writer.insert(new_txn())
        t1 = time.perf_counter()
        await writer.outcome(txn_id)
        t2 = time.perf_counter()
        result.latencies += [t1 - due, t2 - t1]
        result.ops += 2

    async def arrivals():
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(int(seconds * rate)):
                due = start + i / rate
                await trio.sleep(max(0.0, due - time.perf_counter()))
                nursery.start_soon(one, due)

    await run_with_lag(result, [arrivals])


async def run_with_lag(result: Result, tasks) -> None:
    stop = trio.Event()
    t0 = time.perf_counter()
    async with trio.open_nursery() as outer:
        outer.start_soon(measure_lag, result.lags, stop)
        async with trio.open_nursery() as nursery:
            for task in tasks:
                nursery.start_soon(task)
        stop.set()
    result.seconds = time.perf_counter() - t0


async def bench_backend(backend: str, url: str, args) -> list[Result]:
    results = []
    loads = [("closed", 0.0, f"closed, {args.concurrency} tasks")]
    loads += [("open", rate, f"open, {rate:g} txn/s") for rate in args.rate]
    for kind, rate, load in loads:
        # group commit
        async with await Store.open(url) as store:
            writer = GroupCommit(store)
            result = Result(backend, writer.name, load)
            if kind == "closed":
                await closed_loop(writer, result, args.seconds, args.concurrency)
            else:
                await open_loop(writer, result, args.seconds, rate)
            result.commits = writer.commits()
            results.append(result)
        # baseline
        with SyncStore.open(url) as sync_store:
            writer = OnLoop(sync_store)
            result = Result(backend, writer.name, load)
            if kind == "closed":
                await closed_loop(writer, result, args.seconds, args.concurrency)
            else:
                await open_loop(writer, result, args.seconds, rate)
            result.commits = writer.commits()
            results.append(result)
    return results


def pg_schema_url(base: str) -> tuple[str, Callable[[], None]] | None:
    try:
        import psycopg

        with psycopg.connect(base, connect_timeout=3, autocommit=True) as conn:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        print(f"PostgreSQL skipped: {base} unreachable ({exc})")
        return None

    def drop():
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return f"{base}?options=-csearch_path%3D{schema}", drop


def print_table(results: list[Result]) -> None:
    headers = [
        "backend", "mode", "load", "writes/s", "commits/s", "rows/commit",
        "p50 ms", "p99 ms", "loop lag p99 ms",
    ]  # fmt: skip
    rows = [headers] + [r.row() for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    for n, row in enumerate(rows):
        print("  ".join(v.rjust(w) if i >= 3 else v.ljust(w) for i, (v, w) in
                        enumerate(zip(row, widths, strict=True))))  # fmt: skip
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per run")
    parser.add_argument("--concurrency", type=int, default=100, help="closed-loop tasks")
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="open-loop arrival rate, txn/s (2 writes each); repeatable (default: 1000 and 3000)",
    )
    parser.add_argument("--pg", default=os.environ.get("POSHOST_BENCH_PG", PG_URL))
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--dir", default=None, help="where the SQLite file goes (default: tmp)")
    args = parser.parse_args()
    args.rate = args.rate or [1000.0, 3000.0]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    results = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        url = f"sqlite:///{os.path.abspath(tmp)}/bench.sqlite"
        results += trio.run(bench_backend, "sqlite", url, args)
    if not args.no_pg:
        pg = pg_schema_url(args.pg)
        if pg is not None:
            url, drop = pg
            try:
                results += trio.run(bench_backend, "postgresql", url, args)
            finally:
                drop()
    print()
    print_table(results)
    print(
        "\nwrites/s: awaited writes completed per second (each transaction is 2 writes);"
        " p50/p99: latency of one awaited write\n(open loop: from when it was due);"
        " loop lag: lateness of a 1 ms timer on the event loop during the run."
    )


if __name__ == "__main__":
    main()
