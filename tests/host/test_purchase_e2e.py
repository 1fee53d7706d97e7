"""Purchases, balance inquiries and reversals end to end: test terminal -> host (real socket,
real SQLite journal) -> issuer simulator (its own socket, its own ledger)."""

import pytest
import trio

from codec.subfields import parse_field54
from tests.host.harness import demo_device, eventually, sim_and_host, terminal
from tools.issuer_sim.testing import FOREIGN, LOST, LOW, PIN, RICH

RICH_BALANCE = 10_000_000


@pytest.fixture(params=["soft", "network"])
def hsm_kind(request) -> str:
    """The host's HSM: in-process, or `poshost hsm-sim` on its own loopback socket."""
    return request.param


def run(tmp_path, body, **kw):
    async def main():
        async with sim_and_host(tmp_path, **kw) as (sim, running):
            await body(sim, running)

    trio.run(main)


def test_purchase_approved_debits_the_card_and_is_journalled(tmp_path, journal_url, hsm_kind):
    async def body(sim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            req = device.financial_request("purchase", pan=RICH, amount=12_345, pin=PIN)
            resp, _ = await client.exchange(req)  # checks the response MAC and echoes
        assert resp[39] == "00"
        assert len(str(resp[38])) == 6 and len(str(resp[37])) == 12
        assert resp[4] == req[4] and resp[63] == "CUP" and 15 in resp and 64 in resp
        assert (await sim.card(RICH)).balance == RICH_BALANCE - 12_345
        rows = await running.host.store.list_transactions(tid=device.tid)
        assert [(r.txn_type, r.status, r.amount, r.rrn) for r in rows] == [
            ("purchase", "approved", 12_345, resp[37])
        ]
        assert rows[0].pan_masked == "622202******0001"

    run(tmp_path, body, journal_url=journal_url, hsm=hsm_kind)


def test_declines_from_the_issuer_reach_the_terminal(tmp_path, hsm_kind):
    async def body(sim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            cases = [
                (RICH, 100, "9999", "55"),  # wrong PIN: the PIN block was translated to the ZPK
                (LOW, 99_999_999, PIN, "51"),
                (LOST, 100, PIN, "41"),
            ]
            for pan, amount, pin, code in cases:
                req = device.financial_request("purchase", pan=pan, amount=amount, pin=pin)
                resp, _ = await client.exchange(req)
                assert resp[39] == code, (pan, resp[39])
                assert 38 not in resp or code == "00"
        assert (await sim.card(RICH)).balance == RICH_BALANCE
        statuses = {r.status for r in await running.host.store.list_transactions()}
        assert statuses == {"declined"}

    run(tmp_path, body, hsm=hsm_kind)


def test_balance_inquiry_returns_54(tmp_path):
    async def body(sim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            resp, _ = await client.exchange(
                device.financial_request("balance_inquiry", pan=RICH, pin=PIN)
            )
        assert resp[39] == "00"
        balances = parse_field54(str(resp[54]))
        assert any(b.amount == RICH_BALANCE for b in balances)

    run(tmp_path, body)


def test_duplicate_stan_gets_94_without_a_second_debit(tmp_path, journal_url):
    async def body(sim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            req = device.financial_request("purchase", pan=RICH, amount=500, pin=PIN)
            first, _ = await client.exchange(req)
            again, _ = await client.exchange(req)
        assert (first[39], again[39]) == ("00", "94")
        assert (await sim.card(RICH)).balance == RICH_BALANCE - 500

    run(tmp_path, body, journal_url=journal_url)


def test_terminal_reversal_restores_the_balance_exactly_once(tmp_path, journal_url):
    async def body(sim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            req = device.financial_request("purchase", pan=RICH, amount=7_000, pin=PIN)
            resp, _ = await client.exchange(req)
            assert resp[39] == "00"
            for _ in range(2):  # a repeated reversal is acknowledged with no second effect
                rev, _ = await client.exchange(device.reversal_of(req))
                assert rev.mti == "0410" and rev[39] == "00"
            unknown = device.reversal_of(device.financial_request("purchase", pan=RICH, amount=1))
            rev, _ = await client.exchange(unknown)
            assert rev[39] == "00"

        async def restored():
            return (await sim.card(RICH)).balance == RICH_BALANCE

        await eventually(restored)
        rows = await running.host.store.list_transactions(tid=device.tid)
        assert [r.status for r in rows] == ["reversed"]
        await trio.sleep(0.3)
        assert (await sim.card(RICH)).balance == RICH_BALANCE

    run(tmp_path, body, journal_url=journal_url)


def test_no_route_gets_15(tmp_path):
    async def body(sim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            resp, _ = await client.exchange(
                device.financial_request("purchase", pan=FOREIGN, amount=100)
            )
        assert resp[39] == "15"

    run(tmp_path, body, routes=[{"prefix": "62", "link": "sim"}])


def test_issuer_timeout_gets_98_and_the_reversal_reaches_the_issuer(tmp_path):
    async def body(sim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            req = device.financial_request("purchase", pan=RICH, amount=4_200, pin=PIN)
            resp, _ = await client.exchange(req)
        assert resp[39] == "98"
        # The issuer approves late (after 0.8 s) and then receives the 0420 from the SAF queue.
        await trio.sleep(1.0)

        async def settled():
            due = await running.host.store.saf_due(now=2**62)
            return not due and (await sim.card(RICH)).balance == RICH_BALANCE

        await eventually(settled, timeout=10)
        rows = await running.host.store.list_transactions(tid=device.tid)
        assert [(r.status, r.response_code) for r in rows] == [("reversed", "98")]

    run(
        tmp_path,
        body,
        sim_overrides={"failure": {"latency": "fixed:800"}},
        **{"issuer.timeout": 0.3},
    )
