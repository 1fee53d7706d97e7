"""Merchant-presented QR orders end to end: the 0210 carries the QR; the wallet's signed
notification, the terminal's query or the validity watch settles the order."""

import httpx
import trio

from codec import wallet as w
from keys import rsa_sign
from tests.host.harness import demo_device, eventually, qr_stack, terminal

ALICE = 1_000_000


def run(tmp_path, body, **kw):
    async def main():
        async with qr_stack(tmp_path, **kw) as (wsim, _isim, running):
            await body(wsim, running)

    trio.run(main)


async def order(client, device, amount):
    resp, _ = await client.exchange(device.financial_request("qr_order", amount=amount))
    return resp


async def query(client, device, rrn):
    resp, _ = await client.exchange(device.financial_request("qr_query", rrn=rrn))
    return resp


def test_order_paid_by_scan_is_approved_by_the_notification(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            resp = await order(client, device, 8_800)
            assert resp[39] == "00" and str(resp[63]).startswith("QRChttps://")
            qr = str(resp[63])[3:]
            [row] = await running.host.store.list_transactions(tid=device.tid)
            assert (row.status, row.rrn) == ("pending", resp[37])
            waiting = await query(client, device, resp[37])
            assert waiting[39] == "09"
            assert wsim.pay_order(qr, "alice")[0] == "paid"

            async def approved():
                return (await running.host.store.get_transaction(row.id)).status == "approved"

            await eventually(approved)
            paid = await query(client, device, resp[37])
        assert paid[39] == "00" and paid[4] == "000000008800" and len(str(paid[38])) == 6
        assert wsim.ledger.user("alice").balance == ALICE - 8_800
        [note] = wsim.ledger.notifications(w.order_number(row.business_date, row.id))
        assert note["status"] == "delivered"

    run(tmp_path, body)


def test_lost_notification_the_terminal_query_completes_the_order(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        wsim.update_faults({"notify_loss": 1.0})
        async with terminal(running, device) as client:
            resp = await order(client, device, 1_500)
            assert wsim.pay_order(str(resp[63])[3:], "alice")[0] == "paid"
            await trio.sleep(0.5)
            [row] = await running.host.store.list_transactions(tid=device.tid)
            assert row.status == "pending"  # nobody told the host
            paid = await query(client, device, resp[37])
        assert paid[39] == "00"
        assert (await running.host.store.get_transaction(row.id)).status == "approved"
        assert wsim.stats["notifications_lost"] == 1

    run(tmp_path, body)


def test_unpaid_order_is_closed_after_its_validity_and_cannot_be_paid(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        async with terminal(running, device) as client:
            resp = await order(client, device, 2_000)
            [row] = await running.host.store.list_transactions(tid=device.tid)
            order_no = w.order_number(row.business_date, row.id)

            async def closed():
                return wsim.ledger.trade(order_no)["status"] == w.TRADE_CLOSED

            await eventually(closed, timeout=10)
            assert wsim.pay_order(str(resp[63])[3:], "alice")[0] == "closed"
            gone = await query(client, device, resp[37])
        assert gone[39] == "12"
        assert (await running.host.store.get_transaction(row.id)).status == "reversed"
        assert wsim.ledger.user("alice").balance == ALICE

    run(tmp_path, body, qr={"order_validity": 1})


def test_notification_signatures_and_replays(tmp_path):
    async def body(wsim, running):
        device = demo_device()
        url = running.host.links["wallet"].notify_url
        async with terminal(running, device) as client:
            resp = await order(client, device, 700)
        [row] = await running.host.store.list_transactions(tid=device.tid)
        trade = dict(wsim.ledger.trade(w.order_number(row.business_date, row.id)))
        trade["status"] = w.TRADE_SUCCESS  # a forged "paid" for an order nobody paid
        forged = wsim.notification(trade, "forged-1")
        forged["sign"] = rsa_sign.sign(rsa_sign.generate(), w.notification_signed_part(forged))
        async with httpx.AsyncClient() as http:
            refused = await http.post(url, json=forged)
            good = wsim.notification(trade, "n-1")  # signed by the platform
            stale = dict(good, notify_time="2020-01-01 00:00:00")
            stale["sign"] = rsa_sign.sign(wsim.key, w.notification_signed_part(stale))
            old = await http.post(url, json=stale)
            garbage = await http.post(url, content=b"{not json")
            assert (await running.host.store.get_transaction(row.id)).status == "pending"
            first = await http.post(url, json=good)
            replay = await http.post(url, json=good)
            elsewhere = await http.post(url.replace("/wallet/notify", "/wallet/other"), json=good)
            too_big = await http.post(url, content=b"x" * (16 * 1024 + 1))
        assert (refused.status_code, old.status_code, garbage.status_code) == (400, 400, 400)
        assert (elsewhere.status_code, too_big.status_code) == (404, 413)
        assert (first.content, replay.content) == (b"success", b"success")
        done = await running.host.store.get_transaction(row.id)
        assert done.status == "approved" and done.rrn == resp[37]

    run(tmp_path, body)
