"""Certification reports: a console summary, JUnit XML (for CI) and one self-contained HTML file
(inline CSS, no scripts, no external assets) to hand to a scheme or a terminal vendor."""

from __future__ import annotations

import datetime as dt
import html
import xml.etree.ElementTree as ET

from host.harness import local_time
from tools.certify.runner import CaseResult, SuiteResult


def _reason(case: CaseResult) -> str:
    if case.status == "error":
        return case.error
    return "; ".join(f"step {c.step}: expected {c.name}, {c.detail}" for c in case.failures)


def _skipped(results: list[SuiteResult]) -> tuple[int, int, str]:
    """(skipped checks, cases they are in, the first reason): reported once, not per case."""
    checks = [k for r in results for c in r.cases for k in c.checks if k.ok is None]
    cases = sum(1 for r in results for c in r.cases if any(k.ok is None for k in c.checks))
    return len(checks), cases, checks[0].detail if checks else ""


def _skip_note(results: list[SuiteResult]) -> str:
    n, cases, why = _skipped(results)
    if not n:
        return ""
    why = why.removeprefix("skipped: ")
    return f"{n} issuer-side check(s) in {cases} case(s) skipped: {why}"


def console(results: list[SuiteResult], about: list[tuple[str, str]] = ()) -> str:
    lines = [f"{k:9} {v}" for k, v in about]
    for r in results:
        lines.append(f"suite {r.suite.name} against {r.target} ({len(r.cases)} cases)")
        for c in r.cases:
            mark = {"passed": "PASS", "failed": "FAIL", "error": "ERR "}[c.status]
            lines.append(f"  {mark} {c.case.id:44} {c.case.title}")
            if c.status != "passed":
                lines.append(f"       {_reason(c)}")
    passed = sum(r.count("passed") for r in results)
    failed = sum(r.count("failed") for r in results)
    errors = sum(r.count("error") for r in results)
    if note := _skip_note(results):
        lines.append(note)
    lines.append(f"{passed} passed, {failed} failed, {errors} errors")
    return "\n".join(lines)


def junit(results: list[SuiteResult]) -> bytes:
    root = ET.Element("testsuites", name="poshost certification")
    for r in results:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=r.suite.name,
            tests=str(len(r.cases)),
            failures=str(r.count("failed")),
            errors=str(r.count("error")),
            skipped="0",
            time=f"{r.duration:.3f}",
            timestamp=r.started,
            hostname=r.target,
        )
        for c in r.cases:
            tc = ET.SubElement(
                suite,
                "testcase",
                classname=f"{r.suite.name}",
                name=c.case.id,
                time=f"{c.duration:.3f}",
            )
            details = "\n".join(
                f"step {k.step}: {'ok  ' if k.ok else 'SKIP' if k.ok is None else 'FAIL'} "
                f"{k.name} {k.detail}"
                for k in c.checks
            )
            if c.status == "failed":
                el = ET.SubElement(tc, "failure", message=_reason(c)[:500], type="expectation")
                el.text = details
            elif c.status == "error":
                el = ET.SubElement(tc, "error", message=c.error[:500], type="error")
                el.text = details
            out = ET.SubElement(tc, "system-out")
            out.text = c.case.title + "\n" + details + "\n\n" + _dumps(c)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _dumps(c: CaseResult) -> str:
    parts = []
    for s in c.steps:
        parts.append(f"== step {s.number} ({s.send}, {s.elapsed_ms} ms)")
        parts.append(s.request or "(raw frame)")
        parts.append(s.response or "(no response)")
    return "\n".join(parts)


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top} .passed{color:#1a7f37} .failed,.error{color:#c62828;
font-weight:bold} .skip{color:#888} pre{background:#f6f8fa;padding:8px;overflow-x:auto;
font-size:12px} details{margin:2px 0} .summary span{margin-right:2em;font-size:1.1em}
table.about{width:auto;margin-bottom:1em} table.about th{color:#555;font-weight:normal}
.toggle{margin:1em 0;padding:6px 10px;background:#f6f8fa;display:inline-block}
#failures-only:checked ~ section tr.case-passed{display:none}
#failures-only:checked ~ section .all-passed{display:block}
.all-passed{display:none;color:#1a7f37} .hex{color:#444}
"""


def _when(iso_text: str) -> str:
    try:
        return local_time(dt.datetime.fromisoformat(iso_text))
    except ValueError:
        return iso_text


def _case_row(c: CaseResult) -> str:
    e = html.escape
    checks = "".join(
        f"<li class='{'passed' if k.ok else 'skip' if k.ok is None else 'failed'}'>"
        f"step {k.step}: {e(k.name)} {e(k.detail)}</li>"
        for k in c.checks
    )
    steps = "".join(
        f"<details><summary>step {s.number}: {e(s.send)} → {e(str(s.code))} "
        f"({s.elapsed_ms} ms)</summary><pre>{e(s.request or '(raw frame)')}</pre>"
        f"<pre>{e(s.response or '(no response)')}</pre>"
        f"<details class='hex'><summary>raw frames (hex, PAN/PIN/keys masked)</summary>"
        f"<pre>sent\n{e(s.request_hex or '-')}</pre>"
        f"<pre>received\n{e(s.response_hex or '-')}</pre></details></details>"
        for s in c.steps
    )
    reason = f"<p class='failed'>{e(_reason(c))}</p>" if c.status != "passed" else ""
    return (
        f"<tr class='case-{c.status}'><td><b>{e(c.case.id)}</b><br/>{e(c.case.title)}</td>"
        f"<td class='{c.status}'>{c.status}</td>"
        f"<td>{reason}<details><summary>{len(c.checks)} checks</summary><ul>{checks}"
        f"</ul></details>{steps}</td></tr>"
    )


def html_report(
    results: list[SuiteResult],
    about: list[tuple[str, str]] = (),
    *,
    failures_only: bool = False,
) -> str:
    """One file, no scripts: what was certified (version, commit, configuration), the totals,
    then each case with its checks, masked dumps and, folded away, the masked raw hex. A
    checkbox (pure CSS) hides passed cases; ``failures_only`` leaves them out entirely."""
    e = html.escape
    passed = sum(r.count("passed") for r in results)
    failed = sum(r.count("failed") for r in results)
    errors = sum(r.count("error") for r in results)
    note = _skip_note(results)
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'/>",
        "<title>poshost certification report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>poshost certification report</h1>",
        "<table class='about'>"
        + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in about)
        + "</table>",
        f"<p class='summary'><span class='passed'>{passed} passed</span>"
        f"<span class='failed'>{failed} failed</span>"
        f"<span class='error'>{errors} errors</span></p>",
        f"<p class='skip'>{e(note)}</p>" if note else "",
    ]
    if failures_only:
        out.append(f"<p>Failed and erroneous cases only ({passed} passed cases left out).</p>")
    else:
        out.append(
            "<input type='checkbox' id='failures-only'/>"
            "<label class='toggle' for='failures-only'>show failures only</label>"
        )
    for r in results:
        shown = [c for c in r.cases if not (failures_only and c.status == "passed")]
        out.append(
            f"<section><h2>{e(r.suite.name)}</h2><p>{e(r.suite.description)}<br/>"
            f"{len(r.cases)} cases against {e(r.target)}, started {e(_when(r.started))}, "
            f"{r.duration:.1f} s</p>"
        )
        if r.count("passed") == len(r.cases):
            out.append("<p class='all-passed'>every case of this suite passed</p>")
        out.append("<table><tr><th>case</th><th>result</th><th>details</th></tr>")
        out.extend(_case_row(c) for c in shown)
        out.append("</table></section>")
    out.append("</body></html>")
    return "\n".join(out)
