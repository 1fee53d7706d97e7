"""The soak's table: what was sent, what the host did, and whether the books agree."""

from __future__ import annotations

from collections import Counter

from tools.soak.run import SoakResult

UNKNOWN_CODES = ("98",)  # an answer that says the outcome is not known (then reversed)
MAX_MISMATCHES_SHOWN = 10


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _counter(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "-"


def lines(result: SoakResult) -> list[str]:
    t = result.tally
    codes = t.purchases
    sent = sum(codes.values())
    not_codes = ("00", "no answer", "cut off at the end", *UNKNOWN_CODES)
    declined = Counter({c: n for c, n in codes.items() if c not in not_codes})
    cut = codes["cut off at the end"]
    unknown = codes["no answer"] + cut + sum(codes[c] for c in UNKNOWN_CODES)
    unknown_text = (
        f"{unknown} (no answer {codes['no answer']}, 98 {codes['98']}, "
        f"cut off by the end of the run {cut})"
    )
    fuzz_sent = Counter({k[5:]: v for k, v in t.fuzz.items() if k.startswith("sent ")})
    fuzz_outcome = Counter({k: v for k, v in t.fuzz.items() if not k.startswith("sent ")})
    rows = [
        ("fuzzed frames sent", f"{sum(fuzz_sent.values())} ({_counter(fuzz_sent)})"),
        ("  host's handling", _counter(fuzz_outcome)),
        ("idle flood connections", _counter(t.flood)),
        ("back-office requests", _counter(t.backoffice)),
        ("host deaths", f"{t.host_kills} killed by the soak, {t.host_own_deaths} on its own"),
        ("issuer deaths", f"{t.issuer_kills} killed by the soak, {t.issuer_own_deaths} on its own"),
        ("purchases sent", str(sent)),
        ("  approved", str(codes["00"])),
        ("  declined by code", _counter(declined)),
        ("  unknown outcome", unknown_text),
        ("  terminal reconnects", str(t.reconnects)),
        ("  answers refused by terminal", _counter(t.terminal_errors)),
        ("journal purchases by status", _counter(result.journal)),
        ("  reversed", str(result.journal["reversed"])),
        ("drain", _drain(result)),
        ("security events (journal)", _counter(result.security_events)),
        ("JOURNAL-VS-ISSUER MISMATCHES", str(len(result.mismatches))),
        ("POS p50/p99 quiet", _latency(t.latency_quiet)),
        ("POS p50/p99 under attack", _latency(t.latency_attack)),
        ("host RSS before/after", _rss(t.rss_kb)),
    ]
    out = [f"{name:32} {value}" for name, value in rows]
    for m in result.mismatches[:MAX_MISMATCHES_SHOWN]:
        out.append(f"  mismatch: {m.line()}")
    if len(result.mismatches) > MAX_MISMATCHES_SHOWN:
        out.append(f"  ... and {len(result.mismatches) - MAX_MISMATCHES_SHOWN} more")
    out.append(f"logs and data: {result.workdir}")
    return out


def _latency(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return f"{p50:.1f} ms / {p99:.1f} ms over {len(values)} answers"


def _drain(result: SoakResult) -> str:
    left = f"pending left {result.pending_left}, SAF left {result.saf_left}"
    return f"{result.drained_in:.1f} s; {left}"


def _rss(rss_kb: dict[str, int]) -> str:
    before, after = rss_kb.get("before", 0) / 1024, rss_kb.get("after", 0) / 1024
    return f"{before:.1f} MiB / {after:.1f} MiB (after: the last host process)"
