"""The QR certification suite (specs/certification/qr.toml) against a host and the real
wallet-sim, both on loopback sockets: every case the issue lists passes."""

import trio

from tools.certify import report
from tools.certify.runner import Runner
from tools.certify.stack import local_stack
from tools.certify.suite import load

LISTED = {  # issue 17: paid at once, user paying then confirmed / timeout, expired or reused
    # code, notification lost -> query completes, refund, void
    "qr.paid_at_once", "qr.user_paying_confirmed", "qr.user_paying_timeout_cancelled",
    "qr.expired_code", "qr.reused_code", "qr.notification_lost_query_completes",
    "qr.refund_partial", "qr.void",
}  # fmt: skip


def test_qr_suite_passes_against_wallet_sim(tmp_path):
    suite = load("qr")
    assert {c.id for c in suite.cases} >= LISTED

    async def main():
        async with local_stack(tmp_path) as stack:
            runner = Runner("127.0.0.1", stack.port, sim=stack.sim, timeout=8,
                            wallet=stack.wallet_control)  # fmt: skip
            return await runner.run_suite(suite)

    result = trio.run(main)
    for case in result.cases:
        assert case.status == "passed", (case.case.id, report.console([result]))
        assert all(c.ok is not None for c in case.checks), case.case.id  # nothing skipped


def test_qr_steps_without_a_wallet_are_errors_not_passes(tmp_path):
    suite = load("qr")

    async def main():
        async with local_stack(tmp_path) as stack:
            runner = Runner("127.0.0.1", stack.port, timeout=5)  # no wallet attached
            return await runner.run_case(suite, suite.cases[0])

    result = trio.run(main)
    assert result.status == "error" and "wallet-sim" in result.error
