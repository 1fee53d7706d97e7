"""Void of purchase end to end: host on a socket, real issuer simulator, real journal."""

from tests.host.flowkit import PIN, RICH, original, run, shop

OTHER = "6222020000000002"  # LOW: another card of the demo issuer


def test_void_approved_declines_and_reversal(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            start = await s.balance()
            sale = await s.sale(1234)
            assert await s.balance() == start - 1234
            names = original(sale)

            # the declines, none of which touches the issuer or the sale
            wrong_amount = await s.txn("void", pan=RICH, amount=1000, pin=PIN, extra=names)
            assert wrong_amount[39] == "64"
            other_card = await s.txn("void", pan=OTHER, amount=1234, extra=names)
            assert other_card[39] == "64"
            unknown = {**names, 61: names[61][:6] + "999999" + names[61][12:]}
            assert (await s.txn("void", pan=RICH, amount=1234, extra=unknown))[39] == "25"
            wrong_rrn = {**names, 37: "000000000000"}
            assert (await s.txn("void", pan=RICH, amount=1234, extra=wrong_rrn))[39] == "25"
            assert await s.balance() == start - 1234

            void = await s.txn("void", pan=RICH, amount=1234, pin=PIN, extra=names)
            void_request = s.last_request
            assert void[39] == "00" and void[37] != sale[37]
            assert await s.balance() == start  # the issuer credited the sale back
            assert (await s.row(sale)).status == "voided"
            void_row = await s.row(void)
            assert void_row.original_id == (await s.row(sale)).id
            assert (await s.txn("void", pan=RICH, amount=1234, extra=names))[39] == "12"

            # the terminal reverses its void: the sale is a sale again, at both ends
            assert (await s.reverse(void_request))[39] == "00"

            async def debited_again():
                return await s.balance() == start - 1234

            await s.until(debited_again)
            assert (await s.row(void)).status == "reversed"
            assert (await s.row(sale)).status == "approved"
            # ...so it can be voided (once) again
            again = await s.txn("void", pan=RICH, amount=1234, extra=names)
            assert again[39] == "00"
            assert await s.balance() == start

    run(body)


def test_void_of_a_sale_that_is_not_approved(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            sale = await s.sale(500)
            assert (await s.reverse(s.last_request))[39] == "00"
            void = await s.txn("void", pan=RICH, amount=500, extra=original(sale))
            assert void[39] == "25"  # a reversed sale is not there to void

    run(body)
