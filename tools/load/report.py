"""Load reports: text, JSON, a self-contained HTML page (inline SVG charts, no scripts) and a
PNG of the same charts for people who paste pictures into tickets."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from host.harness import local_time
from tools.load.run import LoadReport

# Labels of the mix kinds as a payments engineer says them.
KINDS = {
    "purchase_pin": "purchase with PIN",
    "purchase": "purchase without PIN",
    "balance": "balance inquiry",
    "?": "unknown",
}
OK_CODES = ("00", "echo")


def _ms(v: float | None) -> str:
    return "-" if v is None or v != v else f"{v:,.2f} ms"


def _tick(v: float) -> str:
    """An axis label without e-notation: 0.25, 3.2, 40, 1,300."""
    if v >= 100:
        return f"{float(f'{v:.2g}'):,.0f}"
    return f"{float(f'{v:.2g}'):g}"


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(codes.items())) or "none"


def text(r: LoadReport) -> str:
    s = r.summary()
    lat = s["latency_ms"]
    lines = [
        f"target {r.target}, {r.mode}, {r.terminals} terminals, {r.workers} worker process(es)",
        f"started {local_time(r.started * 1000) if r.started else '-'}",
        f"sent {r.sent:,}, completed {r.completed:,} in {r.elapsed:.2f} s: "
        f"{r.throughput:,.1f} per second",
        f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}",
        "response codes: " + _codes(s["response_codes"]),
        "errors: " + _codes(s["errors"]),
        f"load generator CPU: {r.generator_cpu_s:.2f} s",
    ]
    by_type = s["by_type"]
    if len(by_type) > 1:
        lines.append("by type:")
        for kind, t in by_type.items():
            lat_t = t["latency_ms"]
            lines.append(
                f"  {KINDS.get(kind, kind):22} {t['completed']:>8,}  p50 {_ms(lat_t['p50'])}  "
                f"p95 {_ms(lat_t['p95'])}  codes {_codes(t['response_codes'])}"
            )
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


# -- HTML ---------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse} td,th{text-align:left;padding:3px 12px;
border-bottom:1px solid #ddd;vertical-align:top} th{color:#555;font-weight:normal}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b71c1c;background:#fdecea;font-weight:bold;padding:0 4px;border-radius:3px}
.ok{color:#1a7f37} figure{margin:0.5em 0} figcaption{color:#555;font-size:0.9em}
"""


def _code_cells(codes: dict[str, int]) -> str:
    """Response codes with every answer other than 00 highlighted."""
    if not codes:
        return "none"
    parts = []
    for code, n in sorted(codes.items()):
        cls = "ok" if code in OK_CODES else "bad"
        parts.append(f"<span class='{cls}'>{html.escape(code)}: {n:,}</span>")
    return " ".join(parts)


def _summary_rows(r: LoadReport) -> list[tuple[str, str]]:
    s = r.summary()
    lat = s["latency_ms"]
    errors = s["errors"]
    error_text = (
        " ".join(f"<span class='bad'>{html.escape(k)}: {v:,}</span>" for k, v in errors.items())
        or "<span class='ok'>none</span>"
    )
    return [
        ("target", html.escape(r.target)),
        ("mode", html.escape(r.mode)),
        ("started", local_time(r.started * 1000) if r.started else "-"),
        ("terminals", f"{r.terminals} over {r.workers} worker process(es)"),
        ("duration", f"{r.duration:g} s planned, {r.elapsed:.2f} s measured"),
        ("sent / completed", f"{r.sent:,} / {r.completed:,}"),
        ("throughput", f"{r.throughput:,.1f} per second"),
        (
            "latency",
            f"p50 {_ms(lat['p50'])} · p95 {_ms(lat['p95'])} · p99 {_ms(lat['p99'])} "
            f"· max {_ms(lat['max'])}",
        ),
        ("response codes", _code_cells(s["response_codes"])),
        ("errors", error_text),
        ("generator CPU", f"{r.generator_cpu_s:.2f} s"),
    ]


def _by_type_table(r: LoadReport) -> str:
    rows = []
    for kind, t in r.by_type().items():
        lat = t["latency_ms"]
        rows.append(
            f"<tr><td>{html.escape(KINDS.get(kind, kind))}</td>"
            f"<td class='num'>{t['completed']:,}</td><td class='num'>{_ms(lat['p50'])}</td>"
            f"<td class='num'>{_ms(lat['p95'])}</td><td class='num'>{_ms(lat['p99'])}</td>"
            f"<td>{_code_cells(t['response_codes'])}</td></tr>"
        )
    return (
        "<table><tr><th>type</th><th>answers</th><th>p50</th><th>p95</th><th>p99</th>"
        "<th>response codes</th></tr>" + "".join(rows) + "</table>"
    )


def _histogram_svg(r: LoadReport) -> str:
    bars = histogram(r.latencies_ms)
    width, height, pad = 900, 300, 50
    peak = max((c for _, _, c in bars), default=1) or 1
    bw = (width - 2 * pad) / max(len(bars), 1)
    svg = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 50}' "
        f"role='img' aria-label='latency histogram'>",
        f"<line x1='{pad}' y1='{height}' x2='{width - pad}' y2='{height}' stroke='#444'/>",
    ]
    for i, (lo, hi, c) in enumerate(bars):
        h = (height - 30) * c / peak
        x = pad + i * bw
        svg.append(
            f"<rect x='{x:.1f}' y='{height - h:.1f}' width='{max(bw - 1, 1):.1f}' "
            f"height='{h:.1f}' fill='#3b82f6'><title>{lo:.2f}-{hi:.2f} ms: {c}</title></rect>"
        )
        if i % max(1, math.ceil(len(bars) / 8)) == 0:
            svg.append(f"<text x='{x:.1f}' y='{height + 15}' font-size='10'>{_tick(lo)}</text>")
    first = math.floor(math.log10(max(bars[0][0], 0.1) / 0.1) * 10 + 1e-9) if bars else 0
    marks = [("p50", r.percentile(50), "#2e7d32"), ("p95", r.percentile(95), "#ef6c00"),
             ("p99", r.percentile(99), "#c62828")]  # fmt: skip
    for n, (name, v, colour) in enumerate(marks):
        if bars and v == v:  # not NaN
            x = pad + (math.log10(max(v, 0.1) / 0.1) * 10 - first) * bw
            # labels of lines near the right edge go on their left, so none is cut off
            anchor, dx = ("end", -3) if x > width - 160 else ("start", 3)
            svg.append(
                f"<line x1='{x:.1f}' y1='10' x2='{x:.1f}' y2='{height}' stroke='{colour}' "
                f"stroke-dasharray='4'/><text x='{x + dx:.1f}' y='{14 + 13 * n}' "
                f"text-anchor='{anchor}' font-size='11' fill='{colour}'>{name} {_ms(v)}</text>"
            )
    svg.append(
        f"<text x='{width / 2 - 120}' y='{height + 38}' font-size='12'>latency, ms (log "
        f"scale, 10 buckets per decade)</text></svg>"
    )
    return "".join(svg)


def _line_svg(points: list[list[tuple[float, float]]], labels, colours, unit: str) -> str:
    """A small line chart of one or more series over the run's seconds."""
    width, height, pad = 900, 220, 55
    xs = [x for series in points for x, _ in series]
    ys = [y for series in points for _, y in series]
    if not xs:
        return "<p>no answers</p>"
    x_max = max(xs) or 1.0
    y_max = (max(ys) or 1.0) * 1.1

    def px(x: float, y: float) -> str:
        return (
            f"{pad + (width - 2 * pad) * x / x_max:.1f},"
            f"{height - 20 - (height - 40) * y / y_max:.1f}"
        )

    svg = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 20}' "
        f"role='img' aria-label='{html.escape(unit)} over time'>",
        f"<line x1='{pad}' y1='{height - 20}' x2='{width - pad}' y2='{height - 20}' "
        f"stroke='#444'/><line x1='{pad}' y1='20' x2='{pad}' y2='{height - 20}' stroke='#444'/>",
        f"<text x='5' y='25' font-size='10'>{_tick(y_max)}</text>",
        f"<text x='5' y='{height - 20}' font-size='10'>0</text>",
        f"<text x='{width - pad - 20}' y='{height + 2}' font-size='10'>{x_max:g} s</text>",
        f"<text x='{pad}' y='{height + 2}' font-size='10'>0 s</text>",
    ]
    for n, (series, label, colour) in enumerate(zip(points, labels, colours, strict=True)):
        path = " ".join(px(x, y) for x, y in series)
        svg.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{path}'/>")
        svg.append(
            f"<text x='{pad + 10 + 150 * n}' y='14' font-size='11' fill='{colour}'>"
            f"{html.escape(label)}</text>"
        )
    svg.append("</svg>")
    return "".join(svg)


def html_page(r: LoadReport, png_name: str | None = None) -> str:
    """One file, no scripts or external assets: summary table, breakdown by type, throughput
    and latency over time, the latency histogram with p50/p95/p99 lines."""
    e = html.escape
    timeline = r.timeline()
    rate = [(row["t_s"], row["per_s"]) for row in timeline]
    p50 = [(row["t_s"], row["p50_ms"]) for row in timeline if row["p50_ms"] is not None]
    p95 = [(row["t_s"], row["p95_ms"]) for row in timeline if row["p95_ms"] is not None]
    bad = [(row["t_s"], row["not_00"]) for row in timeline]
    summary = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in _summary_rows(r))
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'/><title>poshost load report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>poshost load report</h1><p>{e(r.mode)} against {e(r.target)}</p>",
        f"<table>{summary}</table>",
    ]
    if len(r.by_type()) > 1:
        parts += ["<h2>By transaction type</h2>", _by_type_table(r)]
    parts += [
        "<h2>Throughput over time</h2><figure>",
        _line_svg(
            [rate, bad],
            ["answers per second", "answers other than 00"],
            ["#3b82f6", "#c62828"],
            "answers per second",
        ),
        "<figcaption>answers counted by the second they arrived</figcaption></figure>",
        "<h2>Latency over time</h2><figure>",
        _line_svg([p50, p95], ["p50 ms", "p95 ms"], ["#2e7d32", "#ef6c00"], "latency"),
        "<figcaption>of the requests sent in each second</figcaption>",
        "</figure><h2>Latency histogram</h2>",
        _histogram_svg(r),
    ]
    if png_name:
        parts.append(f"<p>The same charts as a picture: <code>{e(png_name)}</code></p>")
    parts.append("</body></html>")
    return "".join(parts)


# -- PNG ----------------------------------------------------------------------------------


def write_png(r: LoadReport, path: Path) -> None:
    """Summary line, throughput and latency over time and the histogram in one picture."""
    import matplotlib

    matplotlib.use("Agg")  # no display: this runs in terminals and CI
    from matplotlib import pyplot as plt

    timeline = r.timeline()
    t = [row["t_s"] for row in timeline]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 10), constrained_layout=True)
    s = r.summary()
    lat = s["latency_ms"]
    not_ok = {k: v for k, v in s["response_codes"].items() if k not in OK_CODES}
    fig.suptitle(
        f"poshost load: {r.mode} against {r.target}, {r.terminals} terminals\n"
        f"{r.completed:,} answers, {r.throughput:,.1f}/s, p50 {_ms(lat['p50'])}, "
        f"p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])}"
        + (f", not 00: {_codes(not_ok)}" if not_ok else ", all 00")
        + (f", errors: {_codes(s['errors'])}" if s["errors"] else ""),
        fontsize=11,
    )
    ax1.plot(t, [row["per_s"] for row in timeline], color="#3b82f6", label="answers/s")
    ax1.plot(t, [row["not_00"] for row in timeline], color="#c62828", label="not 00")
    ax1.set_title("throughput over time (answers by arrival second)")
    ax1.set_xlabel("s")
    ax1.legend(loc="lower right")
    rows = [row for row in timeline if row["p50_ms"] is not None]
    ax2.plot([row["t_s"] for row in rows], [row["p50_ms"] for row in rows], color="#2e7d32",
             label="p50")  # fmt: skip
    ax2.plot([row["t_s"] for row in rows], [row["p95_ms"] for row in rows], color="#ef6c00",
             label="p95")  # fmt: skip
    ax2.set_title("latency over time (ms, by send second)")
    ax2.set_xlabel("s")
    ax2.legend(loc="upper right")
    if r.latencies_ms:
        low = max(min(r.latencies_ms), 0.01)
        high = max(max(r.latencies_ms), low * 1.01)
        edges = [low * (high / low) ** (i / 40) for i in range(41)]
        ax3.hist(r.latencies_ms, bins=edges, color="#3b82f6")
        ax3.set_xscale("log")
        for name, colour in (("p50", "#2e7d32"), ("p95", "#ef6c00"), ("p99", "#c62828")):
            v = lat[name]
            ax3.axvline(v, color=colour, linestyle="--", label=f"{name} {v:.2f} ms")
        ax3.legend(loc="upper right")
    ax3.set_title("latency histogram (ms, log scale)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
