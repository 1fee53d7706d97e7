"""QR pay by the customer's code end to end: test terminal -> host (real socket, real journal)
-> wallet-sim (its own HTTP socket, its own SQLite state), signatures checked both ways."""

import trio

from codec import wallet as w
from tests.host.harness import demo_device, eventually, qr_stack, terminal

ALICE_BALANCE = 1_000_000


def run(tmp_path, body, **kw):
    async def main():
        async with qr_stack(tmp_path, **kw) as (wsim, _isim, running):
            await body(wsim, running)

    trio.run(main)


def pay_request(device, code, amount):
    return device.financial_request("qr_pay", amount=amount, extra={48: code})


def test_paid_at_once_debits_the_wallet_and_journals_a_masked_code(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        code = wsim.issue_code("alice")
        async with terminal(running, device) as client:
            resp, _ = await client.exchange(pay_request(device, code, 1_234))
        assert resp[39] == "00" and len(str(resp[38])) == 6 and str(resp[63]) == "QRC"
        assert wsim.ledger.user("alice").balance == ALICE_BALANCE - 1_234
        [row] = await running.host.store.list_transactions(tid=device.tid)
        assert (row.txn_type, row.status, row.amount, row.card_group) == (
            "qr_pay",
            "approved",
            1_234,
            "domestic",
        )
        assert row.pan_masked == w.mask_code(code) and code not in repr(row)
        assert row.extra["channel"] == "qr" and row.extra["trade_no"].endswith(str(resp[38]))
        trade = wsim.ledger.trade(w.order_number(row.business_date, row.id))
        assert trade["status"] == w.TRADE_SUCCESS and trade["code_masked"] == w.mask_code(code)

    run(tmp_path, body)


def test_user_paying_then_confirmed_is_approved(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        code = wsim.issue_code("alice")  # above alice's 500.00 the wallet asks the password

        async def confirm_later():
            await trio.sleep(0.5)
            assert wsim.confirm(user="alice") is not None

        async with terminal(running, device) as client, trio.open_nursery() as nursery:
            nursery.start_soon(confirm_later)
            resp, _ = await client.exchange(pay_request(device, code, 60_000))
        assert resp[39] == "00"
        assert wsim.ledger.user("alice").balance == ALICE_BALANCE - 60_000

    run(tmp_path, body)


def test_user_paying_past_the_deadline_is_cancelled_through_saf_and_answered_98(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        code = wsim.issue_code("alice")
        async with terminal(running, device) as client:
            resp, _ = await client.exchange(pay_request(device, code, 60_000))
        assert resp[39] == "98"
        [row] = await running.host.store.list_transactions(tid=device.tid)
        order = w.order_number(row.business_date, row.id)

        async def cancelled():
            trade = wsim.ledger.trade(order)
            return trade["status"] == w.TRADE_CLOSED and not (
                await running.host.store.saf_due(now=2**62)
            )

        await eventually(cancelled)
        assert (await running.host.store.get_transaction(row.id)).status == "reversed"
        # the user confirms too late: nothing is paid
        assert wsim.confirm(user="alice") is None
        assert wsim.ledger.user("alice").balance == ALICE_BALANCE

    run(tmp_path, body, qr={"pay_deadline": 1.0})


def test_expired_reused_and_unknown_codes_are_declined_without_a_debit(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            used = wsim.issue_code("alice")
            assert (await client.exchange(pay_request(device, used, 100)))[0][39] == "00"
            again, _ = await client.exchange(pay_request(device, used, 100))
            unknown, _ = await client.exchange(pay_request(device, "280000000000000000", 100))
            wsim.update_faults({"code_ttl": 0.1})
            stale = wsim.issue_code("alice")
            await trio.sleep(0.3)
            expired, _ = await client.exchange(pay_request(device, stale, 100))
            bad, _ = await client.exchange(pay_request(device, "1234", 100))
        assert (again[39], unknown[39], expired[39], bad[39]) == ("14", "14", "54", "14")
        assert wsim.ledger.user("alice").balance == ALICE_BALANCE - 100

    run(tmp_path, body)


def test_lost_answer_is_settled_by_query_never_paid_twice(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        wsim.update_faults({"drop_rate": 1.0})
        code = wsim.issue_code("alice")

        async def heal():
            await trio.sleep(0.5)
            wsim.update_faults({"drop_rate": 0.0})

        async with terminal(running, device) as client, trio.open_nursery() as nursery:
            nursery.start_soon(heal)
            resp, _ = await client.exchange(pay_request(device, code, 2_000))
        assert resp[39] == "00"  # the pay's answer was lost; a query found it paid
        assert wsim.ledger.user("alice").balance == ALICE_BALANCE - 2_000

    run(tmp_path, body)


def test_wallet_down_is_91_and_nothing_is_journalled_as_sent(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        link = running.host.links["wallet"]
        link._up = trio.Event()  # the probe saw the wallet down
        link.probe_interval = 60
        code = wsim.issue_code("alice")
        async with terminal(running, device) as client:
            resp, _ = await client.exchange(pay_request(device, code, 100))
        assert resp[39] == "91"
        assert wsim.ledger.user("alice").balance == ALICE_BALANCE

    run(tmp_path, body)


def test_terminal_reversal_of_a_qr_sale_refunds_the_customer(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        code = wsim.issue_code("alice")
        async with terminal(running, device) as client:
            req = pay_request(device, code, 3_000)
            resp, _ = await client.exchange(req)
            assert resp[39] == "00"
            rev, _ = await client.exchange(device.reversal_of(req.without(48), "98"))
        assert rev[39] == "00"

        async def refunded():
            return wsim.ledger.user("alice").balance == ALICE_BALANCE

        await eventually(refunded)
        [row] = await running.host.store.list_transactions(tid=device.tid)
        assert row.status == "reversed"

    run(tmp_path, body)
