"""Operators at sign-on (63 = number + password) and the supervisor role, over sockets."""

from host.store.passwords import hash_password
from tests.host.flowkit import PIN, RICH, original, run, shop

MID = "123456789012345"
TID = "12345678"


async def _add(s, number, password, role="operator"):
    await s.store.add_operator(TID, number, hash_password(password), role)


def test_sign_on_names_the_operator_with_its_password(tmp_path):
    async def body():
        # a sign-on per check: more than the default rate limit of one terminal allows
        async with shop(tmp_path, **{"security.session_burst": 20}) as s:
            await s.store.set_merchant_terms(MID, {"require_operator": True})
            s.host.terms.clear()  # the host re-reads terms within estate TTL
            await _add(s, "02", "secret7")
            await _add(s, "03", "gone")
            await s.store.disable_operator(TID, "03")

            async def sign_on(field63):
                resp, _ = await s.send(s.device.sign_on_request(field63))
                return resp[39]

            assert await sign_on("02 secret7") == "00"
            # the operator takes over with the new keys, once the terminal proves them
            assert (await s.store.get_terminal(TID)).pending_operator == "02"  # not the password
            assert await sign_on("02 secret8") == "55"  # wrong password
            assert await sign_on("02 ") == "55"  # required, not sent
            assert await sign_on("09 secret7") == "55"  # unknown operator: same code
            assert await sign_on("03 gone") == "58"  # disabled
            assert await sign_on("") == "55"  # nobody named
            # the demo operator 01 (password 0000) once the merchant no longer requires it
            await s.store.set_merchant_terms(MID, {"require_operator": False})
            s.host.terms.clear()
            assert await sign_on("01 ") == "00"
            assert await sign_on("01 1111") == "55"  # a password sent is still checked
            assert await sign_on("03 ") == "58"  # disabled stays disabled

    run(body)


def test_voids_and_refunds_need_a_supervisor_when_the_merchant_says_so(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            await s.store.set_merchant_terms(MID, {"supervisor_types": "void,refund"})
            s.host.terms.clear()
            await _add(s, "09", "boss", role="supervisor")
            sale = await s.sale(700)  # signed on as the demo operator 01 (role operator)
            void = await s.txn("void", pan=RICH, amount=700, pin=PIN, extra=original(sale))
            assert void[39] == "58"
            refund = await s.txn("refund", pan=RICH, amount=100, extra=original(sale))
            assert refund[39] == "58"
            await s.client.sign_on("09 boss")
            void = await s.txn("void", pan=RICH, amount=700, pin=PIN, extra=original(sale))
            assert void[39] == "00"

    run(body)
