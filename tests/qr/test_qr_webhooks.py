"""QR sales reach the merchant's webhook like card sales: the journal's outcome writes of the QR
flows (paid at once, an order paid later, a void, a refund) queue their events in the same
transaction, the rows say channel 'qr', and the payment code shows only masked. Real host,
real wallet-sim, the real `poshost webhook-receiver` in its own process."""

import json

import trio

from codec import wallet as w
from tests.host.harness import demo_device, eventually, free_port, qr_stack, terminal, wait_port
from tests.host.webhook_kit import Receiver, cli, write_config
from tests.qr.test_qr_void_refund import qr_sale, refund_of, void_of

MID = "123456789012345"


def test_qr_outcomes_become_webhook_events_with_the_channel_and_a_masked_code(tmp_path):
    port = free_port()
    secret = tmp_path / "secret.txt"
    secret.write_text("whsec_" + "9e" * 32)
    config = write_config(tmp_path / "host.toml", tmp_path / "host")

    async def main():
        async with qr_stack(tmp_path, **{"webhooks.retry_min": 0.2}) as (wsim, _isim, running):
            await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "set", MID,
                f"http://127.0.0.1:{port}/hook", "--secret-file", str(secret),
            )  # fmt: skip
            receiver = Receiver(port, secret)
            store = running.host.store
            try:
                await wait_port(port)
                device = demo_device()
                async with terminal(running, device) as client:
                    req, sale = await qr_sale(wsim, client, device, 4_000)
                    code = str(req[48])
                    void, _ = await client.exchange(void_of(device, req, sale))
                    _, other = await qr_sale(wsim, client, device, 3_000)
                    refund, _ = await client.exchange(refund_of(device, other, 1_000))
                    order, _ = await client.exchange(
                        device.financial_request("qr_order", amount=8_800)
                    )
                    assert wsim.pay_order(str(order[63])[3:], "alice")[0] == "paid"

                    async def all_five():
                        return len(receiver.events()) >= 5

                    await eventually(all_five, timeout=15)
                rows = await store.list_transactions(tid=device.tid, limit=20)
            finally:
                receiver.stop()
            return code, sale, void, other, refund, order, receiver.events(), rows

    code, sale, void, other, refund, order, events, rows = trio.run(main)
    assert (void[39], refund[39], order[39]) == ("00", "00", "00")
    got = {(e["type"], e["transaction"]["rrn"]) for e in events}
    assert got == {
        ("transaction.approved", sale[37]),
        ("transaction.voided", void[37]),
        ("transaction.approved", other[37]),
        ("transaction.refunded", refund[37]),
        ("transaction.approved", order[37]),  # paid later: written by the order's completion
    }
    assert {e["transaction"]["channel"] for e in events} == {"qr"}
    assert code not in json.dumps(events)
    paid = next(e for e in events if e["transaction"]["rrn"] == sale[37])["transaction"]
    assert paid["pan_masked"] == w.mask_code(code) and paid["txn_type"] == "qr_pay"
    assert {r.channel for r in rows if r.status in ("approved", "voided")} == {"qr"}
