"""A terminal that sends what is not a request (a response MTI such as 0210, 0810, 0830, or an
MTI of no class at all such as 9999) gets its connection closed: no flow runs, no journal row is
written, nothing goes to the issuer, and the attempt is a counted security event. Today's
other traffic is not disturbed.

And the flow engine's abort guarantee: a step that fails with an unexpected exception (a bug)
ends in 96 with the row journalled, not a ``pending`` row and a "30 format error"."""

import pytest
import trio

from codec import terminal as terminal_codec
from host.flow.engine import Flow
from host.flows import FLOWS
from tests.host.harness import demo_device, sim_and_host, terminal
from tools.issuer_sim.testing import PIN, RICH


@pytest.mark.parametrize("mti", ["0210", "0810", "0830", "0410", "9999"])
def test_a_response_mti_from_a_signed_on_terminal_runs_nothing(tmp_path, mti):
    async def main():
        async with sim_and_host(tmp_path) as (sim, running):
            device = demo_device()
            async with terminal(running, device) as client:
                before = sim.stats["requests"]
                rows_before = await running.host.store.list_transactions(limit=100)
                req = device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
                # MACed with the terminal's real MAK: only the MTI is wrong
                payload = terminal_codec.encode_with_mac(req.with_mti(mti).without(64), device.mac)
                await client.send_raw(device.envelope(payload).to_frame())
                assert await client.receive_body() is None  # closed, not answered
                rows = await running.host.store.list_transactions(limit=100)
                assert len(rows) == len(rows_before)
                assert sim.stats["requests"] == before
                assert running.host.security.counts["not_a_request"] == 1
            # the same terminal carries on, on a new connection
            async with terminal(running, device) as client:
                req = device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
                resp, _ = await client.exchange(req)
                assert resp[39] == "00"

    trio.run(main)


def test_a_failing_step_is_96_and_journalled(tmp_path):
    async def explode(host, ex):
        raise RuntimeError("a bug in a step")

    async def main():
        async with sim_and_host(tmp_path) as (sim, running):
            purchase = FLOWS["purchase"]
            # the bug sits after the journal write and before the issuer
            steps = list(purchase.steps)
            steps.insert(steps.index(next(s for s in steps if s.__name__ == "authorize")),
                         explode)  # fmt: skip
            running.host.flows = {**FLOWS, "purchase": Flow("purchase", tuple(steps),
                                                            purchase.always)}  # fmt: skip
            device = demo_device()
            async with terminal(running, device) as client:
                before = sim.stats["requests"]
                req = device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
                resp, _ = await client.exchange(req)
            assert resp[39] == "96"
            (row,) = await running.host.store.list_transactions(limit=10)
            assert (row.status, row.response_code) == ("declined", "96")
            assert sim.stats["requests"] == before

    trio.run(main)
