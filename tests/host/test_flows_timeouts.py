"""An issuer that answers too late: a void is reversed by store-and-forward, a refund advice is
sent again under its first RRN when the terminal repeats it — one effect at the issuer."""

import trio

from tests.host.flowkit import PIN, RICH, original, run, shop

SLOW = {"issuer.timeout": 0.2}


def test_void_timeout_is_reversed_and_the_sale_stays(tmp_path):
    async def body():
        async with shop(tmp_path, **SLOW) as s:
            start = await s.balance()
            sale = await s.sale(600)
            s.sim.update_settings({"latency": "fixed:400"})
            void = await s.txn("void", pan=RICH, amount=600, pin=PIN, extra=original(sale))
            assert void[39] == "98"
            await trio.sleep(0.3)  # the issuer applies the void after the host gave up...
            s.sim.update_settings({"latency": "0"})

            async def undone():  # ...and the host's 0420 takes it back
                return await s.balance() == start - 600

            await s.until(undone)
            rows = await s.store.list_transactions(txn_type="void")
            assert [r.status for r in rows] == ["reversed"]
            assert (await s.row(sale)).status == "approved"
            again = await s.txn("void", pan=RICH, amount=600, pin=PIN, extra=original(sale))
            assert again[39] == "00" and await s.balance() == start

    run(body)


def test_refund_advice_repeated_after_a_timeout_credits_once(tmp_path):
    async def body():
        async with shop(tmp_path, **SLOW) as s:
            start = await s.balance()
            sale = await s.sale(1000)
            s.sim.update_settings({"latency": "fixed:400"})
            refund = await s.txn("refund", pan=RICH, amount=400, extra=original(sale))
            assert refund[39] == "98"
            await trio.sleep(0.3)
            s.sim.update_settings({"latency": "0"})
            assert await s.balance() == start - 1000 + 400  # the issuer did credit

            repeated, _ = await s.send(s.last_request)
            assert repeated[39] == "00"
            assert await s.balance() == start - 1000 + 400  # and only once
            rows = await s.store.list_transactions(txn_type="refund")
            assert [(r.status, r.rrn) for r in rows] == [("approved", repeated[37])]
            assert (await s.txn("refund", pan=RICH, amount=601, extra=original(sale)))[39] == "61"
            assert (await s.txn("refund", pan=RICH, amount=600, extra=original(sale)))[39] == "00"

    run(body)
