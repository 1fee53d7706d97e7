"""Pre-authorization, cancel, completion, completion void and completion advice end to end,
with the hold and the balance checked in the issuer simulator."""

from tests.host.flowkit import PIN, RICH, original, run, shop

OTHER = "6222020000000002"


def by_auth_code(resp) -> dict:
    """How a hotel terminal names a pre-authorization days later: 38 + its date, no batch/STAN."""
    return {38: resp[38], 61: "000000000000" + str(resp[15])}


def test_preauth_completion_and_completion_void(tmp_path):
    async def body():
        async with shop(tmp_path, tid="12345680") as s:  # the demo hotel's terminal
            start = await s.balance()
            pre = await s.txn("preauth", pan=RICH, amount=10_000, pin=PIN)
            assert pre[39] == "00" and pre[38]
            assert await s.held() == 10_000 and await s.balance() == start
            preauth_request = s.last_request

            s.clock.advance(days=2)  # the guest checks out two days later
            over = await s.txn("completion", pan=RICH, amount=11_501, extra=by_auth_code(pre))
            assert over[39] == "64"  # beyond the 15 % tolerance
            other = await s.txn("completion", pan=OTHER, amount=100, extra=by_auth_code(pre))
            assert other[39] == "64"
            done = await s.txn("completion", pan=RICH, amount=11_500, extra=by_auth_code(pre))
            assert done[39] == "00"
            completion_request = s.last_request
            assert await s.held() == 0 and await s.balance() == start - 11_500
            assert (await s.row(done)).original_id == (await s.row(pre)).id
            again = await s.txn("completion", pan=RICH, amount=100, extra=by_auth_code(pre))
            assert again[39] == "12"  # completed already
            cancel = await s.txn("preauth_cancel", pan=RICH, amount=10_000,
                                 extra=by_auth_code(pre))  # fmt: skip
            assert cancel[39] == "12"
            # a reversal of the pre-authorization itself comes too late to find it (other day)
            assert (await s.reverse(preauth_request))[39] == "00"
            assert (await s.row(pre)).status == "approved"

            # completion void (same batch, by 61 + 37)
            bad = await s.txn("completion_void", pan=RICH, amount=11_000, extra=original(done))
            assert bad[39] == "64"
            void = await s.txn("completion_void", pan=RICH, amount=11_500, extra=original(done))
            assert void[39] == "00"
            void_request = s.last_request
            assert await s.balance() == start
            assert (await s.row(done)).status == "voided"
            again = await s.txn("completion_void", pan=RICH, amount=11_500, extra=original(done))
            assert again[39] == "12"
            # a voided completion still ends the pre-authorization
            late = await s.txn("completion", pan=RICH, amount=100, extra=by_auth_code(pre))
            assert late[39] == "12"

            # reversal of the completion void: debited again, completion approved again
            assert (await s.reverse(void_request))[39] == "00"

            async def debited():
                return await s.balance() == start - 11_500

            await s.until(debited)
            assert (await s.row(done)).status == "approved"
            # reversal of the completion: the debit goes, the hold comes back
            assert (await s.reverse(completion_request))[39] == "00"

            async def held_again():
                return await s.held() == 10_000 and await s.balance() == start

            await s.until(held_again)
            assert (await s.row(done)).status == "reversed"

    run(body)


def test_preauth_cancel_its_reversal_and_preauth_reversal(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            start = await s.balance()
            pre = await s.txn("preauth", pan=RICH, amount=3_000, pin=PIN)
            assert pre[39] == "00" and await s.held() == 3_000
            names = original(pre)
            assert (await s.txn("preauth_cancel", pan=RICH, amount=2_000, extra=names))[39] == "64"
            cancel = await s.txn("preauth_cancel", pan=RICH, amount=3_000, extra=names)
            assert cancel[39] == "00"
            cancel_request = s.last_request
            assert await s.held() == 0 and await s.balance() == start
            assert (await s.row(pre)).status == "voided"
            assert (await s.txn("preauth_cancel", pan=RICH, amount=3_000, extra=names))[39] == "12"
            assert (await s.txn("completion", pan=RICH, amount=3_000, extra=names))[39] == "12"

            # the terminal reverses its cancel: the hold is back and can be completed
            assert (await s.reverse(cancel_request))[39] == "00"

            async def held():
                return await s.held() == 3_000

            await s.until(held)
            assert (await s.row(pre)).status == "approved"
            assert (await s.row(cancel)).status == "reversed"

            # a pre-authorization the terminal reverses (no answer seen) releases its hold
            second = await s.txn("preauth", pan=RICH, amount=700, pin=PIN)
            assert second[39] == "00" and await s.held() == 3_700
            assert (await s.reverse(s.last_request))[39] == "00"

            async def released():
                return await s.held() == 3_000

            await s.until(released)
            assert (await s.row(second)).status == "reversed"
            gone = await s.txn("completion", pan=RICH, amount=700, extra=original(second))
            assert gone[39] == "25"
            assert (await s.txn("completion", pan=RICH, amount=3_000, extra=names))[39] == "00"
            assert await s.held() == 0 and await s.balance() == start - 3_000

    run(body)


def test_expired_preauth_and_unknown_one(tmp_path):
    async def body():
        async with shop(tmp_path, **{"flows.batch_max_days": 100}) as s:
            pre = await s.txn("preauth", pan=RICH, amount=1_000, pin=PIN)
            assert pre[39] == "00"
            unknown = {38: "999999", 61: "000000000000" + str(pre[15])}
            assert (await s.txn("completion", pan=RICH, amount=500, extra=unknown))[39] == "25"
            s.clock.advance(days=31)  # flows.preauth_expiry_days = 30
            expired = await s.txn("completion", pan=RICH, amount=500, extra=by_auth_code(pre))
            assert expired[39] == "22"
            cancel = await s.txn("preauth_cancel", pan=RICH, amount=1_000,
                                 extra=by_auth_code(pre))  # fmt: skip
            assert cancel[39] == "22"
            assert await s.held() == 1_000  # untouched at the issuer

    run(body)


def test_completion_advice_is_idempotent_and_not_reversible(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            start = await s.balance()
            pre = await s.txn("preauth", pan=RICH, amount=2_000, pin=PIN)
            advice = await s.txn("completion_advice", pan=RICH, amount=1_800,
                                 extra=by_auth_code(pre))  # fmt: skip
            assert advice[39] == "00"
            advice_request = s.last_request
            assert await s.held() == 0 and await s.balance() == start - 1_800
            repeated, _ = await s.send(advice_request)
            assert repeated[39] == "00" and repeated[37] == advice[37]
            assert await s.balance() == start - 1_800
            second = await s.txn("completion_advice", pan=RICH, amount=100,
                                 extra=by_auth_code(pre))  # fmt: skip
            assert second[39] == "12"
            assert (await s.reverse(advice_request))[39] == "12"
            assert await s.balance() == start - 1_800

    run(body)
