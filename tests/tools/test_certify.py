"""The certification harness: suites load and validate, a failing expectation fails its case
and says why, the reports are well formed, and the bundled suite passes where the host serves
the flow."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import attrs
import pytest
import trio
from click.testing import CliRunner

from host.flows import FLOWS
from tests.host.harness import free_port
from tools.certify import report
from tools.certify.cli import certify
from tools.certify.runner import Runner
from tools.certify.stack import local_stack
from tools.certify.suite import SEND_KINDS, SuiteError, load, parse


def run(tmp_path, suites):
    async def main():
        async with local_stack(tmp_path) as stack:
            runner = Runner("127.0.0.1", stack.port, sim=stack.sim, timeout=5)
            flows = set(stack.running.host.flows)
            return [await runner.run_suite(s) for s in suites], flows

    return trio.run(main)


MINI = {
    "suite": {"name": "mini", "description": "harness self-test"},
    "case": [
        {
            "id": "echo.ok",
            "step": [{"send": "echo", "expect": {"code": "00"}}],
        },
        {
            "id": "echo.wrong_expectation",
            "title": "expects 05 from an echo <b>&",
            "step": [{"send": "echo", "expect": {"code": "05", "present": [62]}}],
        },
        {
            "id": "purchase.issuer_effect",
            "step": [
                {
                    "send": "purchase",
                    "pan": "6222020000000001",
                    "amount": 321,
                    "expect": {
                        "code": "00",
                        "mac": True,
                        "issuer": {"pan": "6222020000000001", "delta": -321},
                    },
                },
                {
                    "send": "purchase",
                    "pan": "6222020000000001",
                    "amount": 5,
                    "expect": {"code": "00", "issuer": {"pan": "6222020000000001", "delta": 0}},
                },
            ],
        },
    ],
}


def test_failing_expectations_fail_the_case_and_say_why_and_reports_are_well_formed(tmp_path):
    (result,), _ = run(tmp_path, [parse(MINI)])
    ok, wrong, effect = result.cases
    assert ok.status == "passed" and all(c.ok for c in ok.checks)
    assert wrong.status == "failed"
    reasons = {(c.name, c.detail) for c in wrong.failures}
    assert ("39 = 05", "got 00") in reasons and ("field 62 present", "") in reasons
    assert effect.status == "failed"  # the second purchase moved the balance by 5, not 0
    assert [c.detail for c in effect.failures] == ["moved -5"]
    text = report.console([result])
    assert "FAIL echo.wrong_expectation" in text and "expected 39 = 05, got 00" in text
    assert "1 passed, 2 failed, 0 errors" in text

    root = ET.fromstring(report.junit([result]))
    (suite,) = root.findall("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["echo.ok"].find("failure") is None
    assert "39 = 05" in cases["echo.wrong_expectation"].find("failure").get("message")

    page = report.html_report([result])
    ET.fromstring(page.removeprefix("<!DOCTYPE html>"))  # well-formed markup, escaped text
    assert "expects 05 from an echo &lt;b&gt;&amp;" in page
    assert "<script" not in page and "http" not in page  # self-contained


def test_suite_files_are_validated():
    with pytest.raises(SuiteError, match="unknown key"):
        parse({"case": [{"id": "x", "step": [{"send": "echo", "colour": 1}]}]})
    with pytest.raises(SuiteError, match="send must be"):
        parse({"case": [{"id": "x", "step": [{"send": "teleport"}]}]})
    with pytest.raises(SuiteError, match="earlier step"):
        parse({"case": [{"id": "x", "step": [{"send": "void", "original": 1}]}]})
    with pytest.raises(SuiteError, match="unknown expectation"):
        parse({"case": [{"id": "x", "step": [{"send": "echo", "expect": {"vibe": 1}}]}]})


def test_bundled_suite_covers_the_issue():
    suite = load("core")
    sends = {s.send for c in suite.cases for s in c.steps}
    qr = {s.send for c in load("qr").cases for s in c.steps}
    # every transaction type, management message, reversal and raw; QR types in the QR suite
    assert sends | qr == SEND_KINDS
    ids = {c.id for c in suite.cases}
    for needed in ("sign_on.mode_001", "sign_on.mode_003", "sign_on.mode_004",
                   "security.bad_mac", "security.wrong_pin", "security.duplicate_stan",
                   "void.unknown_original", "void.amount_mismatch", "refund.unknown_original",
                   "reversal.of_approved", "reversal.of_declined", "reversal.of_unknown",
                   "settlement.balanced", "settlement.unbalanced_with_upload", "session.echo",
                   "session.unknown_terminal", "session.wrong_batch", "frame.short_length",
                   "frame.oversize_length", "frame.bad_bcd_field", "frame.bad_bcd_mti",
                   "frame.undefined_field_in_bitmap"):  # fmt: skip
        assert needed in ids


MANAGEMENT = {"sign_on", "sign_off", "echo", "raw", "reversal"}


def test_bundled_suite_passes_wherever_the_host_serves_the_flows(tmp_path):
    """Cases that only use flows the host serves must pass; the others wait for their flows
    (they fail with 40 until then, and are not weakened to pass)."""
    suite = load("core")
    served = set(FLOWS) | MANAGEMENT
    runnable = [c for c in suite.cases if {s.send for s in c.steps} <= served]
    assert len(runnable) >= 25
    (result,), _ = run(tmp_path, [attrs.evolve(suite, cases=tuple(runnable))])
    for case in result.cases:
        assert case.status == "passed", (case.case.id, report.console([result]))


def test_cli_writes_junit_and_html_and_exits_3_on_failure(tmp_path, monkeypatch):
    suite = tmp_path / "mini.toml"
    suite.write_text(
        '[suite]\nname = "mini"\n[[case]]\nid = "echo.bad"\n[[case.step]]\nsend = "echo"\n'
        'expect = { code = "05" }\n'
    )
    r = CliRunner().invoke(certify, [str(suite), "--out", str(tmp_path / "out")])
    assert r.exit_code == 3, r.output
    assert "0 passed, 1 failed" in r.output
    ET.parse(tmp_path / "out" / "junit.xml")
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_against_a_host_that_is_down_says_so_once_and_exits_4(tmp_path):
    port = free_port()  # nothing listens there any more
    r = CliRunner().invoke(certify, ["core", "--host", f"127.0.0.1:{port}", "--out",
                                     str(tmp_path / "out")])  # fmt: skip
    assert r.exit_code == 4, r.output
    assert r.stdout == ""
    assert r.stderr.count("cannot reach the host") == 1 and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "out" / "report.html").exists()


def test_cli_report_names_the_target_hides_passes_on_demand_and_masks_raw_hex(tmp_path):
    suite = tmp_path / "mini.toml"
    suite.write_text(
        '[suite]\nname = "mini"\n[[case]]\nid = "echo.ok"\n[[case.step]]\nsend = "echo"\n'
        '[[case]]\nid = "buy.bad"\n[[case.step]]\nsend = "sign_on"\n[[case.step]]\n'
        'send = "purchase"\npan = "6222020000000001"\namount = 5\nexpect = { code = "05" }\n'
    )
    r = CliRunner().invoke(certify, [str(suite), "--out", str(tmp_path / "out")])
    assert r.exit_code == 3, r.output  # a failed check (host/exitcodes.py)
    # stdout is the summary only: the host's and simulator's logs went to stderr, warnings up
    lines = r.stdout.splitlines()
    assert lines[0].startswith("target    poshost ") and "started by this run" in lines[0]
    assert not any("[info" in line or '"event"' in line for line in lines), r.stdout
    assert "[info" not in r.stderr
    page = (tmp_path / "out" / "report.html").read_text()
    assert "started by this run" in page and "demo estate" in page and "commit" in page
    assert "show failures only" in page and "case-passed" in page and "case-failed" in page
    assert "raw frames (hex, PAN/PIN/keys masked)" in page and "622202******0001" in page
    assert "6222020000000001" not in page

    r = CliRunner().invoke(certify, [str(suite), "--out", str(tmp_path / "f"), "--failures-only"])
    page = (tmp_path / "f" / "report.html").read_text()
    assert "buy.bad" in page and "echo.ok" not in page and "1 passed cases left out" in page


def test_cli_against_a_running_host_reports_skipped_issuer_checks_once(tmp_path):
    from tools.certify.stack import ThreadedStack

    suite = tmp_path / "mini.toml"
    suite.write_text(
        '[suite]\nname = "mini"\n'
        + "".join(
            f'[[case]]\nid = "buy.{i}"\n[[case.step]]\nsend = "sign_on"\n[[case.step]]\n'
            'send = "purchase"\npan = "6222020000000001"\namount = 5\n'
            'expect = { code = "00", issuer = { pan = "6222020000000001", delta = -5 } }\n'
            for i in range(3)
        )
    )
    with ThreadedStack(tmp_path / "stack") as stack:
        r = CliRunner().invoke(
            certify,
            [
                str(suite),
                "--host",
                stack.address,
                "--out",
                str(tmp_path / "out"),
                "--demo-terminals",
            ],
        )
    assert r.exit_code == 0, r.output
    # The host under test runs in this process (another thread) and may still log a
    # connection's close after the command has put logging back: leave its lines out.
    report_lines = [line for line in r.stdout.splitlines() if " [debug " not in line]
    assert "\n".join(report_lines).count("skipped") == 1, r.stdout
    assert "3 issuer-side check(s) in 3 case(s) skipped: no simulator attached" in r.stdout
    assert "not started by this run" in r.stdout
