"""A PIN block the HSM cannot read is a PIN format error (99), told apart from a failure of the
security processing (A7) by the kind of error the HSM raises, not by words in its message."""

from tests.host.flowkit import PIN, RICH, run, shop


def test_an_unreadable_pin_block_is_99_and_the_issuer_is_not_asked(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            start = await s.balance()
            # eight bytes no PIK enciphered from a format 0 block (the MAC still covers them)
            resp = await s.txn("purchase", pan=RICH, amount=100, pin=PIN, extra={52: bytes(8)})
            assert resp[39] == "99"
            rows = await s.store.list_transactions(tid="12345678")
            assert not [r for r in rows if r.txn_type == "purchase" and r.status == "approved"]
            assert await s.balance() == start

    run(body)
