"""The host's transactions with ``hsm.kind = "network"``: every key operation is a command to
`poshost hsm-sim` on its own loopback socket, and the host process holds no LMK.

Sign-on (A0 under the TMK), MAC verify and generate (M8/M6), PIN translation from the PIK (CA)
and from AES DUKPT (G0), an encrypted track (M2), void, reversal and settlement, over the real
terminal socket against the real issuer simulator and journal. AES DUKPT runs in both kinds.
"""

from __future__ import annotations

import pytest

from codec import terminal as terminal_codec
from codec.framing import parse_envelope
from codec.subfields import SettlementTotals, format_field48_settlement, parse_field48_settlement
from host.hsm.network import NetworkHSM
from keys import des, dukpt, pinblock
from keys.hsm import encrypt_track
from keys.tokens import KeyType
from tests.host.flowkit import PIN, RICH, original, run, shop
from tests.host.harness import TEST_LMK
from tools.hsm_sim.server import sim_test_key_hsm

START = 10_000_000  # RICH's balance at the issuer simulator
# A different LMK in the host's own settings: with hsm.kind = "network" the host must not read
# it (if it did, no token from the hsm-sim would work under it).
NOT_THE_LMK = "22" * 32


def test_a_day_at_the_shop_with_the_network_hsm_and_no_lmk_in_the_host(tmp_path):
    track = f"{RICH}=30121010000000000000"

    async def body():
        # mode 004: the sign-on sends PIK, MAK and TDK (three A0 under the TMK)
        async with shop(tmp_path, tid="12345680", hsm="network", **{"hsm.lmk": NOT_THE_LMK}) as s:
            assert isinstance(s.host.hsm, NetworkHSM)
            assert not (tmp_path / "host" / "lmk.hex").exists()  # none read, none generated
            assert s.hsm_sim.counts["A0"] >= 3
            hsm = s.hsm_sim.counts

            # a purchase with an encrypted track and a PIN: M8, M2, CA, M6
            enc = encrypt_track(s.device.tdk, track)
            sale = await s.txn("purchase", track2=track, amount=1000, pin=PIN,
                               extra={35: enc, 53: "2610000000000000"})  # fmt: skip
            assert sale[39] == "00"
            assert (hsm["M8"], hsm["M2"], hsm["CA"], hsm["M6"]) == (1, 1, 1, 1)
            row = await s.row(sale)
            assert row.pan_masked == "622202******0001"  # the PAN came out of the track
            # the PIN block reached the issuer translated, not opened: a wrong PIN is its 55
            assert (await s.txn("purchase", pan=RICH, amount=1000, pin="9999"))[39] == "55"

            # void: the sale of 2000 is gone again
            other = await s.sale(2000)
            void = await s.txn("void", pan=RICH, amount=2000, pin=PIN, extra=original(other))
            assert void[39] == "00"

            # reversal: the terminal did not see the answer to 700
            lost = s.device.financial_request("purchase", pan=RICH, amount=700, pin=PIN)
            assert (await s.send(lost))[0][39] == "00"
            assert (await s.reverse(lost))[39] == "00"

            async def settled() -> bool:
                return await s.balance() == START - 1000

            await s.until(settled, timeout=10)

            # settlement: the terminal's totals (the 1000 only) balance with the journal's
            field48 = format_field48_settlement(
                SettlementTotals(1000, 1, 0, 0), SettlementTotals(0, 0, 0, 0)
            )
            resp, _ = await s.send(s.settlement_request(field48))
            assert resp[39] == "00"
            domestic, _ = parse_field48_settlement(str(resp[48]))
            assert domestic == SettlementTotals(1000, 1, 0, 0, "1")

            # a request whose MAC was altered on the way is refused on the HSM's M8 verdict
            payload = s.device.encode(s.device.financial_request("purchase", pan=RICH, amount=5))
            flipped = payload[:-1] + (b"0" if payload[-1:] != b"0" else b"1")
            await s.client.send_raw(s.device.envelope(flipped).to_frame())
            answer = terminal_codec.decode(parse_envelope(await s.client.receive_body()).payload)
            assert answer[39] == "A0"
            assert await s.balance() == START - 1000

    run(body, timeout=60)


AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")  # X9.24-3-2017 supplement's BDK
IKID = bytes.fromhex("1234567890123456")


@pytest.mark.parametrize("kind", ["soft", "network"])
def test_an_aes_dukpt_pin_pad_gets_its_pin_to_the_issuer(tmp_path, kind):
    """X9.24-3 AES DUKPT: 12-byte KSN in 62, format 0 under the 2TDEA PIN working key in 52
    (the dialect's field 52 holds 8 bytes); the host translates it to the link's ZPK."""

    async def body():
        # the soft host gets the hsm-sim's LMK, so one provisioning tool serves both kinds
        settings = {"hsm.lmk": TEST_LMK} if kind == "soft" else {}
        async with shop(tmp_path, tid="12345681", hsm=kind, **settings) as s:
            # provisioning (as `poshost estate` would): the terminal's base key is an AES BDK
            bdk = sim_test_key_hsm(TEST_LMK).import_clear(KeyType.BDK_AES, AES_BDK)
            await s.store.set_terminal_keys("12345681", bdk_token=bdk.to_text())
            s.host.estate.forget_terminal("12345681")

            async def pay(counter: int, pin: str):
                ksn = IKID + counter.to_bytes(4, "big")
                key = dukpt.host_derive_working_key(
                    AES_BDK, ksn, dukpt.KeyUsage.PIN_ENCRYPTION, dukpt.DerivedKeyType.TDES2
                )
                block = des.encrypt_ecb(key, pinblock.encode(0, pin, RICH))
                req = s.device.financial_request("purchase", pan=RICH, amount=400, pin=pin)
                req = req.with_fields({52: block, 53: "2600000000000000", 62: ksn})
                return (await s.send(req))[0]

            assert (await pay(1, PIN))[39] == "00"
            assert (await pay(2, "9999"))[39] == "55"  # the issuer saw the wrong PIN
            assert (await pay(3, PIN))[39] == "00"
            assert await s.balance() == START - 800
            if kind == "network":
                assert s.hsm_sim.counts["G0"] == 3

    run(body, timeout=60)
