"""Runs a load across worker processes and turns the raw results into a report."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable

import attrs
import trio

from tools.load.engine import LoadConfig, LoadError, WorkerResult, first_cause, run_worker


@attrs.define
class LoadReport:
    target: str
    mode: str  # "open loop at N/s" or "closed loop"
    terminals: int
    workers: int
    duration: float
    sent: int
    completed: int
    elapsed: float
    codes: dict[str, int]
    errors: dict[str, int]
    latencies_ms: list[float] = attrs.field(repr=False)
    generator_cpu_s: float = 0.0
    stans: dict[str, int] = attrs.field(factory=dict, repr=False)
    samples: list[tuple[float, float, str, str]] = attrs.field(factory=list, repr=False)
    started: float = 0.0  # wall clock (epoch seconds) of the first scheduled send

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: float) -> float:
        return _pick(self.latencies_ms, p)

    def by_type(self) -> dict[str, dict]:
        """Per mix kind: answers, response codes and latency percentiles (ms)."""
        groups: dict[str, list[tuple[float, str]]] = {}
        for _, latency, kind, code in self.samples:
            groups.setdefault(kind, []).append((latency * 1000, code))
        out = {}
        for kind, rows in sorted(groups.items()):
            lat = sorted(x for x, _ in rows)
            out[kind] = {
                "completed": len(rows),
                "response_codes": dict(sorted(Counter(c for _, c in rows).items())),
                "latency_ms": {f"p{p}": round(_pick(lat, p), 3) for p in (50, 95, 99)},
            }
        return out

    def timeline(self, step: float = 1.0) -> list[dict]:
        """Per ``step`` seconds since the start: answers per second and answers other than 00
        by the time they arrived (a host falling behind shows as a dip, then a tail), and p50
        and p95 latency (ms) of the requests sent in that second (when the slowdown began)."""
        answered: dict[int, list[str]] = {}
        sent: dict[int, list[float]] = {}
        for at, latency, _, code in self.samples:
            answered.setdefault(max(0, int((at + latency) // step)), []).append(code)
            sent.setdefault(max(0, int(at // step)), []).append(latency * 1000)
        rows = []
        for i in range(max([*answered, *sent], default=-1) + 1):
            codes = answered.get(i, [])
            lat = sorted(sent.get(i, []))
            rows.append(
                {
                    "t_s": round(i * step, 3),
                    "per_s": round(len(codes) / step, 1),
                    "not_00": sum(1 for c in codes if c not in ("00", "echo")),
                    "p50_ms": round(_pick(lat, 50), 3) if lat else None,
                    "p95_ms": round(_pick(lat, 95), 3) if lat else None,
                }
            )
        return rows

    def summary(self) -> dict:
        return {
            "target": self.target,
            "mode": self.mode,
            "terminals": self.terminals,
            "workers": self.workers,
            "duration_s": self.duration,
            "sent": self.sent,
            "completed": self.completed,
            "throughput_per_s": round(self.throughput, 1),
            "latency_ms": {
                "p50": round(self.percentile(50), 3),
                "p95": round(self.percentile(95), 3),
                "p99": round(self.percentile(99), 3),
                "max": round(self.latencies_ms[-1], 3) if self.latencies_ms else None,
            },
            "response_codes": dict(sorted(self.codes.items())),
            "errors": dict(sorted(self.errors.items())),
            "generator_cpu_s": round(self.generator_cpu_s, 3),
            "started": round(self.started, 3),
            "by_type": self.by_type(),
            "timeline": self.timeline(),
        }


def _pick(sorted_ms: list[float], p: float) -> float:
    """The nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[k]


def merge(config: LoadConfig, results: list[WorkerResult], workers: int, cpu: float):
    codes: Counter = Counter()
    errors: Counter = Counter()
    lat: list[float] = []
    stans: dict[str, int] = {}
    samples: list[tuple[float, float, str, str]] = []
    for r in results:
        samples.extend(r.samples)
        codes.update(r.codes)
        errors.update(r.errors)
        lat.extend(x * 1000 for x in r.latencies)
        stans.update(r.stans)
    lat.sort()
    samples.sort()
    elapsed = max((r.elapsed for r in results), default=0.0)
    mode = f"open loop at {config.rate:g}/s" if config.rate > 0 else "closed loop (max speed)"
    return LoadReport(
        target=f"{config.host}:{config.port}",
        mode=mode,
        terminals=len(config.terminals),
        workers=workers,
        duration=config.duration,
        sent=sum(r.sent for r in results),
        completed=sum(codes.values()),
        elapsed=elapsed,
        codes=dict(codes),
        errors=dict(errors),
        latencies_ms=lat,
        generator_cpu_s=cpu + sum(r.cpu for r in results),
        stans=stans,
        samples=samples,
        started=time.time() - elapsed,
    )


async def run_in_process(config: LoadConfig, on_progress=None) -> LoadReport:
    """One worker in the caller's Trio loop (tests, small runs)."""
    cpu0 = time.process_time()
    result = await run_worker(config, on_progress=on_progress)
    return merge(config, [result], 1, time.process_time() - cpu0 - result.cpu)


def _child(config: LoadConfig, rate_share: float, conn, counter) -> None:
    def progress(n: int) -> None:
        counter.value = n

    def start_at() -> float:
        return conn.recv()

    try:
        result = trio.run(
            lambda: run_worker(
                config,
                rate_share=rate_share,
                on_progress=progress,
                on_ready=lambda: conn.send("ready"),
                start_at_wall=start_at,
            )
        )
    except Exception as exc:  # told to the parent in one line, not as a traceback
        conn.send(("error", str(first_cause(exc))))
    else:
        conn.send(result)
    conn.close()


def _receive(conn, proc) -> object:
    """The worker's next message; a worker that died without a word is an error, not a hang."""
    while not conn.poll(0.25):
        if not proc.is_alive() and not conn.poll(0):
            raise LoadError(f"a load worker exited (code {proc.exitcode}) before reporting")
    try:
        msg = conn.recv()
    except EOFError as exc:
        raise LoadError("a load worker exited before reporting") from exc
    if isinstance(msg, tuple) and msg[0] == "error":
        raise LoadError(msg[1])
    return msg


def _stop(procs) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join(timeout=5)


def run_processes(
    config: LoadConfig, workers: int, on_progress: Callable[[int, float], None] | None = None
) -> LoadReport:
    """Split the terminals (and the rate) over ``workers`` processes; start them together."""
    cpu0 = time.process_time()
    workers = max(1, min(workers, len(config.terminals)))
    ctx = mp.get_context("spawn")
    procs, conns, counters = [], [], []
    share = config.rate / workers if config.rate > 0 else 0.0
    for i in range(workers):
        part = config.terminals[i::workers]
        parent, child = ctx.Pipe()
        counter = ctx.Value("q", 0, lock=False)
        p = ctx.Process(
            target=_child,
            args=(attrs.evolve(config, terminals=part), share, child, counter),
            daemon=True,
        )
        p.start()
        child.close()  # the worker holds its end: its death now reaches us as EOF
        procs.append(p)
        conns.append(parent)
        counters.append(counter)
    try:
        results = _drive(conns, procs, counters, on_progress)
    except BaseException:
        _stop(procs)
        raise
    for p in procs:
        p.join(timeout=10)
    cpu = time.process_time() - cpu0
    return merge(config, results, workers, cpu)


def _drive(conns, procs, counters, on_progress) -> list[WorkerResult]:
    """Wait until every worker signed on and built its frames, start them together, collect."""
    for c, p in zip(conns, procs, strict=True):
        if _receive(c, p) != "ready":
            raise LoadError("a load worker failed to start")
    start = time.time() + 0.3
    for c in conns:
        c.send(start)
    t0 = time.monotonic()
    results: list[WorkerResult] = []
    pending = dict(zip(conns, procs, strict=True))
    while pending:
        for c, p in list(pending.items()):
            if c.poll(0.25) or not p.is_alive():
                results.append(_receive(c, p))
                del pending[c]
        if on_progress is not None:
            on_progress(sum(x.value for x in counters), time.monotonic() - t0)
    return results
