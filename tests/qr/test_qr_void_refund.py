"""Voids, refunds (also partial) and reversals of QR sales, through their usual rows, against
the real wallet-sim."""

import trio

from codec import subfields
from codec import wallet as w
from tests.host.harness import demo_device, eventually, qr_stack, terminal

ALICE = 1_000_000


def run(tmp_path, body, **kw):
    async def main():
        async with qr_stack(tmp_path, **kw) as (wsim, _isim, running):
            await body(wsim, running)

    trio.run(main)


async def qr_sale(wsim, client, device, amount):
    req = device.financial_request("qr_pay", amount=amount, extra={48: wsim.issue_code("alice")})
    resp, _ = await client.exchange(req)
    assert resp[39] == "00"
    return req, resp


def void_of(device, req, resp):
    original = subfields.Field61(device.batch, str(req[11]), str(resp[13]))
    return device.financial_request(
        "void", amount=int(req[4]), rrn=str(resp[37]), auth_code=str(resp[38]), original=original
    )


def refund_of(device, resp, amount):
    return device.financial_request(
        "refund", amount=amount, rrn=str(resp[37]),
        original=subfields.Field61("000000", "000000", str(resp[13])),
    )  # fmt: skip


def test_void_refunds_the_customer_and_a_second_void_is_refused(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            req, resp = await qr_sale(wsim, client, device, 4_000)
            void, _ = await client.exchange(void_of(device, req, resp))
            again, _ = await client.exchange(void_of(device, req, resp))
        assert (void[39], again[39]) == ("00", "12")
        assert wsim.ledger.user("alice").balance == ALICE
        rows = {r.txn_type: r for r in await running.host.store.list_transactions(tid=device.tid)}
        assert rows["qr_pay"].status == "voided" and rows["void"].status == "approved"

    run(tmp_path, body)


def test_partial_refunds_add_up_to_at_most_the_sale(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            _, resp = await qr_sale(wsim, client, device, 5_000)
            first, _ = await client.exchange(refund_of(device, resp, 2_000))
            second, _ = await client.exchange(refund_of(device, resp, 2_500))
            too_much, _ = await client.exchange(refund_of(device, resp, 1_000))
        assert (first[39], second[39], too_much[39]) == ("00", "00", "61")
        assert wsim.ledger.user("alice").balance == ALICE - 500
        [sale] = await running.host.store.find_by_rrn(str(resp[37]))
        trade = wsim.ledger.trade(w.order_number(sale.business_date, sale.id))
        assert trade["refunded"] == 4_500

    run(tmp_path, body)


def test_refund_with_lost_answer_is_carried_forward_never_twice(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            _, resp = await qr_sale(wsim, client, device, 3_000)
            wsim.update_faults({"drop_rate": 1.0})
            lost, _ = await client.exchange(refund_of(device, resp, 3_000))
            assert lost[39] == "98"
            wsim.update_faults({"drop_rate": 0.0})

            async def settled():
                rows = await running.host.store.list_transactions(tid=device.tid, txn_type="refund")
                return rows[0].status == "approved"

            await eventually(settled, timeout=15)
        assert wsim.ledger.user("alice").balance == ALICE  # refunded once, not once per try

    run(tmp_path, body, qr={"pay_deadline": 0.6}, **{"issuer.saf_interval": 0.2})


def test_reversal_of_a_qr_void_leaves_the_refund_standing(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            req, resp = await qr_sale(wsim, client, device, 1_000)
            void = void_of(device, req, resp)
            answer, _ = await client.exchange(void)
            assert answer[39] == "00"
            rev, _ = await client.exchange(device.reversal_of(void, "98"))
        assert rev[39] == "00"
        await trio.sleep(0.5)
        rows = {r.txn_type: r for r in await running.host.store.list_transactions(tid=device.tid)}
        assert rows["qr_pay"].status == "voided" and rows["void"].status == "approved"
        assert wsim.ledger.user("alice").balance == ALICE

    run(tmp_path, body)


def test_qr_sales_count_in_the_batch_totals(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            await qr_sale(wsim, client, device, 1_100)
            req, resp = await qr_sale(wsim, client, device, 900)
            await client.exchange(void_of(device, req, resp))
            await qr_sale(wsim, client, device, 200)
        totals = await running.host.store.batch_totals(device.tid, device.batch)
        assert (totals.domestic.debit_count, totals.domestic.debit_amount) == (2, 1_300)

        async def all_done():
            return not await running.host.store.saf_due(now=2**62)

        await eventually(all_done)

    run(tmp_path, body)
