"""Load reports: text, JSON, and a self-contained HTML page with an SVG latency histogram."""

from __future__ import annotations

import html
import json
import math

from tools.load.run import LoadReport


def text(r: LoadReport) -> str:
    s = r.summary()
    lat = s["latency_ms"]
    lines = [
        f"target {r.target}, {r.mode}, {r.terminals} terminals, {r.workers} worker process(es)",
        f"sent {r.sent}, completed {r.completed} in {r.elapsed:.2f} s: "
        f"{r.throughput:,.1f} per second",
        f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}",
        "response codes: "
        + (", ".join(f"{k}: {v}" for k, v in s["response_codes"].items()) or "none"),
        "errors: " + (", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "none"),
        f"load generator CPU: {r.generator_cpu_s:.2f} s",
    ]
    return "\n".join(lines)


def as_json(r: LoadReport) -> str:
    return json.dumps(r.summary(), indent=2)


def histogram(latencies_ms: list[float], buckets_per_decade: int = 10):
    """Log-spaced buckets from 0.1 ms: [(low_ms, high_ms, count)] over the occupied range."""
    if not latencies_ms:
        return []
    counts: dict[int, int] = {}
    for x in latencies_ms:
        i = math.floor(math.log10(max(x, 0.1) / 0.1) * buckets_per_decade)
        counts[i] = counts.get(i, 0) + 1
    lo, hi = min(counts), max(counts)

    def edge(i: int) -> float:
        return 0.1 * 10 ** (i / buckets_per_decade)

    return [(edge(i), edge(i + 1), counts.get(i, 0)) for i in range(lo, hi + 1)]


def html_page(r: LoadReport) -> str:
    """One file, no scripts or external assets: summary table + SVG histogram."""
    e = html.escape
    s = r.summary()
    bars = histogram(r.latencies_ms)
    width, height, pad = 900, 320, 50
    peak = max((c for _, _, c in bars), default=1) or 1
    bw = (width - 2 * pad) / max(len(bars), 1)
    svg = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 60}' "
        f"role='img' aria-label='latency histogram'>",
        f"<line x1='{pad}' y1='{height}' x2='{width - pad}' y2='{height}' stroke='#444'/>",
    ]
    for i, (lo, hi, c) in enumerate(bars):
        h = (height - 20) * c / peak
        x = pad + i * bw
        svg.append(
            f"<rect x='{x:.1f}' y='{height - h:.1f}' width='{max(bw - 1, 1):.1f}' "
            f"height='{h:.1f}' fill='#3b82f6'><title>{lo:.2f}-{hi:.2f} ms: {c}</title></rect>"
        )
        if i % max(1, len(bars) // 10) == 0:
            svg.append(f"<text x='{x:.1f}' y='{height + 15}' font-size='10'>{lo:.2g}</text>")
    marks = [("p50", r.percentile(50)), ("p99", r.percentile(99))]
    for name, v in marks:
        if bars and v == v:  # not NaN
            i = math.log10(max(v, 0.1) / 0.1) * 10 - math.floor(
                math.log10(max(bars[0][0], 0.1) / 0.1) * 10 + 1e-9
            )
            x = pad + i * bw
            svg.append(
                f"<line x1='{x:.1f}' y1='10' x2='{x:.1f}' y2='{height}' stroke='#c62828' "
                f"stroke-dasharray='4'/><text x='{x + 3:.1f}' y='20' font-size='11' "
                f"fill='#c62828'>{name} {v:.2f} ms</text>"
            )
    svg.append(
        f"<text x='{width / 2 - 120}' y='{height + 40}' font-size='12'>latency, ms (log "
        f"scale, 10 buckets per decade)</text></svg>"
    )
    rows = "".join(
        f"<tr><th>{e(str(k))}</th><td>{e(json.dumps(v))}</td></tr>" for k, v in s.items()
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'/><title>poshost load report</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}td,th{text-align:left;"
        "padding:2px 10px;border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>poshost load report</h1><p>{e(r.mode)} against {e(r.target)}</p>"
        f"<table>{rows}</table><h2>Latency histogram</h2>{''.join(svg)}</body></html>"
    )
