"""After a crash: a QR sale left pending is cancelled at the wallet before terminals are
served; an order waiting for its customer is left to the validity watch; a QR refund left
pending is carried forward, never undone."""

import trio

from codec import wallet as w
from host.issuer.saf import recover_pending
from host.store.records import NewTransaction
from tests.host.harness import demo_device, eventually, qr_stack, terminal


def row(business_date, txn_type, stan, amount, *, original_id=None, extra=None):
    return NewTransaction(
        tid="12345678", mid="123456789012345", batch="000001", stan=stan,
        business_date=business_date, txn_type=txn_type, mti="0200", amount=amount,
        processing_code="000000", condition_code="00", issuer_link="wallet",
        original_id=original_id, extra=extra or {"f7": "0101000000", "channel": "qr"},
    )  # fmt: skip


def test_pending_qr_rows_after_a_crash(tmp_path):
    async def main():
        async with qr_stack(tmp_path) as (wsim, _isim, running):
            host, store = running.host, running.host.store
            day = host.business_date().strftime("%Y%m%d")
            device = demo_device()
            async with terminal(running, device) as client:  # a real sale, to refund below
                req = device.financial_request("qr_pay", amount=900,
                                               extra={48: wsim.issue_code("alice")})  # fmt: skip
                assert (await client.exchange(req))[0][39] == "00"
            [sale] = await store.list_transactions(txn_type="qr_pay")
            # the host "died" with these in flight
            paying = await store.insert_pending(row(day, "qr_pay", "900001", 500))
            order = await store.insert_pending(row(day, "qr_order", "900002", 700))
            await store.qr_open(
                order,
                rrn="633699999999",
                extra={"out_trade_no": w.order_number(day, order), "expires_at": 2**60},
            )
            refund = await store.insert_pending(
                row(day, "refund", "900003", 900, original_id=sale.id)
            )
            assert await recover_pending(host) == 2
            assert (await store.get_transaction(paying)).status == "reversed"
            assert (await store.get_transaction(order)).status == "pending"

            async def done():
                trade = wsim.ledger.trade(w.order_number(day, paying))
                refunded = (await store.get_transaction(refund)).status == "approved"
                return trade is not None and trade["status"] == w.TRADE_CLOSED and refunded

            await eventually(done)  # the cancel left a closed trade; the refund went through
            assert wsim.ledger.user("alice").balance == 1_000_000

    trio.run(main)
