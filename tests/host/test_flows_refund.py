"""Refund (0220 advice) end to end: an older, even settled sale, partial refunds, the limits."""

from tests.host.flowkit import PIN, RICH, original, run, shop

OTHER = "6222020000000002"


def test_partial_refunds_days_later_up_to_the_original(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            start = await s.balance()
            sale = await s.sale(5000)
            names = original(sale)
            s.clock.advance(days=2)  # two business days later, same open batch

            first = await s.txn("refund", pan=RICH, amount=2000, extra=names)
            assert first[39] == "00"
            assert first[15] != sale[15]  # settles on today's date
            assert await s.balance() == start - 5000 + 2000
            refund_row = await s.row(first)
            assert refund_row.original_id == (await s.row(sale)).id
            assert refund_row.txn_type == "refund" and refund_row.status == "approved"

            # the terminal repeats its advice (no answer seen): same answer, no second credit
            repeated, _ = await s.send(s.last_request)
            assert repeated[39] == "00" and repeated[37] == first[37]
            assert await s.balance() == start - 5000 + 2000

            assert (await s.txn("refund", pan=RICH, amount=3001, extra=names))[39] == "61"
            assert (await s.txn("refund", pan=RICH, amount=3000, extra=names))[39] == "00"
            assert (await s.txn("refund", pan=RICH, amount=1, extra=names))[39] == "61"
            assert await s.balance() == start  # refunded in full, never more
            assert (await s.row(sale)).status == "approved"  # a refund does not void the sale

    run(body)


def test_refund_declines(tmp_path):
    async def body():
        async with shop(tmp_path, **{"flows.batch_max_days": 100}) as s:
            sale = await s.sale(800)
            names = original(sale)
            start = await s.balance()
            unknown = {**names, 37: "599912345678"}
            assert (await s.txn("refund", pan=RICH, amount=100, extra=unknown))[39] == "25"
            wrong_date = {**names, 61: names[61][:12] + "0101"}
            assert (await s.txn("refund", pan=RICH, amount=100, extra=wrong_date))[39] == "25"
            no_rrn = {61: names[61]}
            assert (await s.txn("refund", pan=RICH, amount=100, extra=no_rrn))[39] == "25"
            assert (await s.txn("refund", pan=OTHER, amount=100, extra=names))[39] == "64"
            assert (await s.txn("refund", pan=RICH, amount=0, extra=names))[39] == "13"

            # a voided sale cannot be refunded
            voided = await s.sale(300)
            void = await s.txn("void", pan=RICH, amount=300, pin=PIN, extra=original(voided))
            assert void[39] == "00"
            gone = original(voided)
            assert (await s.txn("refund", pan=RICH, amount=300, extra=gone))[39] == "12"

            # a refund is not reversible: the terminal's 0400 of it gets 12, nothing undone
            refund = await s.txn("refund", pan=RICH, amount=100, extra=names)
            assert refund[39] == "00"
            assert (await s.reverse(s.last_request))[39] == "12"
            assert (await s.row(refund)).status == "approved"

            s.clock.advance(days=31)  # beyond flows.refund_max_age_days (30)
            assert (await s.txn("refund", pan=RICH, amount=100, extra=names))[39] == "22"
            assert await s.balance() == start + 100

    run(body)
