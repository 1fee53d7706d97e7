"""Certification reports: a console summary, JUnit XML (for CI) and one self-contained HTML file
(inline CSS, no scripts, no external assets) to hand to a scheme or a terminal vendor."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from tools.certify.runner import CaseResult, SuiteResult


def _reason(case: CaseResult) -> str:
    if case.status == "error":
        return case.error
    return "; ".join(f"step {c.step}: expected {c.name}, {c.detail}" for c in case.failures)


def console(results: list[SuiteResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"suite {r.suite.name} against {r.target} ({len(r.cases)} cases)")
        for c in r.cases:
            mark = {"passed": "PASS", "failed": "FAIL", "error": "ERR "}[c.status]
            lines.append(f"  {mark} {c.case.id:44} {c.case.title}")
            if c.status != "passed":
                lines.append(f"       {_reason(c)}")
            skipped = [k for k in c.checks if k.ok is None]
            if skipped:
                lines.append(f"       ({len(skipped)} check(s) skipped: {skipped[0].detail})")
    passed = sum(r.count("passed") for r in results)
    failed = sum(r.count("failed") for r in results)
    errors = sum(r.count("error") for r in results)
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
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top} .passed{color:#1a7f37} .failed,.error{color:#c62828;
font-weight:bold} .skip{color:#888} pre{background:#f6f8fa;padding:8px;overflow-x:auto;
font-size:12px} details{margin:2px 0} .summary span{margin-right:2em;font-size:1.1em}
"""


def html_report(results: list[SuiteResult]) -> str:
    e = html.escape
    passed = sum(r.count("passed") for r in results)
    failed = sum(r.count("failed") for r in results)
    errors = sum(r.count("error") for r in results)
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'/>",
        "<title>poshost certification report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>poshost certification report</h1>",
        f"<p class='summary'><span class='passed'>{passed} passed</span>"
        f"<span class='failed'>{failed} failed</span>"
        f"<span class='error'>{errors} errors</span></p>",
    ]
    for r in results:
        out.append(
            f"<h2>{e(r.suite.name)}</h2><p>{e(r.suite.description)}<br/>target {e(r.target)}, "
            f"started {e(r.started)}, {r.duration:.1f} s</p>"
        )
        out.append("<table><tr><th>case</th><th>result</th><th>details</th></tr>")
        for c in r.cases:
            checks = "".join(
                f"<li class='{'passed' if k.ok else 'skip' if k.ok is None else 'failed'}'>"
                f"step {k.step}: {e(k.name)} {e(k.detail)}</li>"
                for k in c.checks
            )
            steps = "".join(
                f"<details><summary>step {s.number}: {e(s.send)} → {e(str(s.code))} "
                f"({s.elapsed_ms} ms)</summary><pre>{e(s.request or '(raw frame)')}</pre>"
                f"<pre>{e(s.response or '(no response)')}</pre></details>"
                for s in c.steps
            )
            reason = f"<p class='failed'>{e(_reason(c))}</p>" if c.status != "passed" else ""
            out.append(
                f"<tr><td><b>{e(c.case.id)}</b><br/>{e(c.case.title)}</td>"
                f"<td class='{c.status}'>{c.status}</td>"
                f"<td>{reason}<details><summary>{len(c.checks)} checks</summary><ul>{checks}"
                f"</ul></details>{steps}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
