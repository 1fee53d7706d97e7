"""The simulator over real TCP sockets with a real SQLite file."""

from __future__ import annotations

import json

import attrs
import trio

from codec.message import Message
from keys import des
from keys.checkvalue import kcv
from tools.issuer_sim.config import DEMO_KEYS
from tools.issuer_sim.server import Simulator
from tools.issuer_sim.testing import (
    BLOCKED,
    EXPIRED,
    FOREIGN,
    LIMITED,
    LOST,
    LOW,
    PIN,
    RICH,
    STOLEN,
    connect,
    reversal_of,
    run_sim,
)


def test_every_authorization_outcome(config, b):
    async def body(sim, port):
        async with await connect(port) as c:

            async def code(msg):
                rsp = await c.request(msg)
                assert rsp.mti == f"{int(msg.mti) + 10:04d}"
                assert (rsp[11], rsp[41], rsp[37]) == (msg[11], msg[41], msg[37])
                return rsp[39]

            assert await code(b.purchase("6222029999999999", 100, pin=PIN)) == "14"
            assert await code(b.purchase(EXPIRED, 100, pin=PIN)) == "54"
            assert await code(b.purchase(LOST, 100, pin=PIN)) == "41"
            assert await code(b.purchase(STOLEN, 100, pin=PIN)) == "43"
            assert await code(b.purchase(BLOCKED, 100, pin=PIN)) == "62"
            assert await code(b.purchase(LOW, 5_000, pin=PIN)) == "51"
            assert await code(b.purchase(LIMITED, 60_000, pin=PIN)) == "61"
            assert await code(b.purchase(LOW, 100, pin="9999")) == "55"
            assert await code(b.purchase(LOW, 100, pin="9999")) == "55"
            assert await code(b.purchase(LOW, 100, pin="9999")) == "75"
            assert await code(b.purchase(LOW, 100, pin=PIN)) == "75"  # tries exhausted
            ok = await c.request(b.purchase(RICH, 12_345, pin="123456"))  # PVV: first 4 digits
            assert ok[39] == "00" and len(ok[38]) == 6 and ok[4] == "000000012345"
            assert await code(b.purchase(FOREIGN, 100, pin=PIN)) == "00"
            bal = await c.request(b.financial("0200", "310000", RICH, pin=PIN))
            assert bal[39] == "00"
            assert bal[54] == "0001156C000009987655" + "0002156C000009987655"
        assert (await sim.card(RICH)).balance == 10_000_000 - 12_345

    run_sim(config, body)


def test_refund_preauth_completion_cancel_void(config, b):
    async def body(sim, port):
        async with await connect(port) as c:
            pre = b.financial("0100", "030000", RICH, 50_000, cond="06", pin=PIN)
            assert (await c.request(pre))[39] == "00"
            assert [h.amount for h in await sim.holds(RICH)] == [50_000]
            assert (await sim.card(RICH)).available == 10_000_000 - 50_000
            comp = b.financial("0200", "000000", RICH, 52_000, cond="06", extra={90: orig(pre)})
            assert (await c.request(comp))[39] == "00"
            assert await sim.holds(RICH) == []
            assert (await sim.card(RICH)).balance == 10_000_000 - 52_000
            again = b.financial("0200", "000000", RICH, 1_000, cond="06", extra={90: orig(pre)})
            assert (await c.request(again))[39] == "94"  # hold already completed
            pre2 = b.financial("0100", "030000", RICH, 7_000, cond="06")
            await c.request(pre2)
            cancel = b.financial("0100", "200000", RICH, 7_000, cond="06", extra={90: orig(pre2)})
            assert (await c.request(cancel))[39] == "00"
            assert await sim.holds(RICH) == []
            purchase = b.purchase(RICH, 3_000)
            await c.request(purchase)
            void = b.financial("0200", "200000", RICH, 3_000, extra={90: orig(purchase)})
            assert (await c.request(void))[39] == "00"
            refund = b.financial("0220", "200000", RICH, 2_000)
            rsp = await c.request(refund)
            assert rsp.mti == "0230" and rsp[39] == "00"
            assert (await sim.card(RICH)).balance == 10_000_000 - 52_000 + 2_000
            missing = b.financial("0200", "200000", RICH, 1, extra={90: "0200" + "9" * 38})
            assert (await c.request(missing))[39] == "25"

    run_sim(config, body)


def orig(msg: Message) -> str:
    from tools.issuer_sim.testing import original_data

    return original_data(msg)


def test_exactly_once_under_duplicates_and_repeated_reversals(config, b):
    async def body(sim, port):
        async with await connect(port) as c:
            p = b.purchase(RICH, 10_000, pin=PIN)
            first = await c.request(p)
            dup = await c.request(p)
            assert (dup[39], dup[38]) == (first[39], first[38])
            assert (await sim.card(RICH)).balance == 9_990_000
            rev = reversal_of(p)
            answers = {"0400": "0410", "0401": "0410", "0420": "0430", "0421": "0430"}
            for mti in ("0400", "0400", "0401", "0420", "0421"):
                rsp = await c.request(rev.with_mti(mti))
                assert rsp.mti == answers[mti] and rsp[39] == "00"
                assert (await sim.card(RICH)).balance == 10_000_000
            stray = reversal_of(b.purchase(RICH, 777))  # never sent: unknown original
            assert (await c.request(stray))[39] == "00"
            assert (await sim.card(RICH)).balance == 10_000_000
            # duplicates racing each other on one connection: still one effect
            p2 = b.purchase(RICH, 1_000)
            async with trio.open_nursery() as n:
                for _ in range(5):
                    n.start_soon(c.send, p2)
            rsp = await c.receive(("020", p2[11], p2[41]))
            assert rsp[39] == "00"
            await trio.sleep(0.2)
            assert (await sim.card(RICH)).balance == 9_999_000

    run_sim(config, body)


def test_network_management_and_key_exchange(config, b):
    async def body(sim, port):
        async with await connect(port) as c:
            for code in ("001", "301", "002"):
                rsp = await c.request(b.network(code))
                assert (rsp.mti, rsp[39], rsp[70]) == ("0810", "00", code)
            new_zpk = bytes.fromhex("1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A")
            crypt = des.encrypt_ecb(bytes.fromhex(DEMO_KEYS["zmk"]), new_zpk).hex().upper()
            cv = kcv(new_zpk, 3).hex().upper()
            bad = await c.request(b.network("101", extra={48: crypt + "000000"}))
            assert bad[39] == "A7"
            rsp = await c.request(b.network("101", extra={48: crypt + cv}))
            assert (rsp[39], rsp[48]) == ("00", cv)
            old = await c.request(b.purchase(RICH, 100, pin=PIN))  # still under the old ZPK
            assert old[39] == "55"
            new = await c.request(b.purchase(RICH, 100, pin=PIN, zpk=new_zpk.hex()))
            assert new[39] == "00"

    run_sim(config, body)


def test_requests_in_flight_answered_in_any_order(tmp_path, config, b):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "slow"\namount = 111\ndelay_ms = 700\n')
    config = attrs.evolve(config, rules=rules)

    async def body(sim, port):
        async with await connect(port) as c:
            slow, fast = b.purchase(RICH, 111), b.purchase(RICH, 222)
            order = []

            async def one(msg):
                rsp = await c.request(msg)
                order.append((rsp[4], trio.current_time()))

            async with trio.open_nursery() as n:
                n.start_soon(one, slow)
                await trio.sleep(0.05)
                n.start_soon(one, fast)
            assert [amount for amount, _ in order] == ["000000000222", "000000000111"]
            # the slow rule still got default processing: both debited
            assert (await sim.card(RICH)).balance == 10_000_000 - 333

    run_sim(config, body)


def test_restart_keeps_balances_and_reset_restores(config, b):
    async def spend(sim, port):
        async with await connect(port) as c:
            assert (await c.request(b.purchase(RICH, 4_321)))[39] == "00"
            pre = b.financial("0100", "030000", RICH, 1_000, cond="06")
            assert (await c.request(pre))[39] == "00"

    run_sim(config, spend)

    async def check(sim, port):
        card = await sim.card(RICH)
        assert (card.balance, card.available) == (10_000_000 - 4_321, 10_000_000 - 5_321)
        async with await connect(port) as c:  # the ledger survived too: a duplicate is known
            bal = await c.request(b.financial("0200", "310000", RICH))
            assert bal[54].startswith("0001156C000009995679")
        await sim.reset()
        card = await sim.card(RICH)
        assert (card.balance, card.held) == (10_000_000, 0)

    run_sim(config, check)


def test_broken_framing_closes_that_connection_only(config, b):
    async def body(sim, port):
        good = await connect(port)
        for garbage in (b"\xff\xff" + b"x" * 10, b"\x00\x00"):  # oversize, zero length
            bad = await connect(port)
            await bad.send_raw(garbage)
            assert await bad.wait_closed(5)
            await bad.aclose()
        assert (await good.request(b.network("301")))[39] == "00"
        fresh = await connect(port)
        assert (await fresh.request(b.purchase(RICH, 1)))[39] == "00"
        await good.aclose()
        await fresh.aclose()
        assert sim.stats["malformed"] == 2

    run_sim(config, body)


def test_recorder_masks(tmp_path, config, b):
    record = tmp_path / "rec.jsonl"
    config = attrs.evolve(config, record=record)

    async def body(sim, port):
        async with await connect(port) as c:
            await c.request(b.purchase(RICH, 100, pin=PIN, extra={35: RICH + "=30121010000000000"}))
            await c.request(b.network("301"))

    run_sim(config, body)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 2
    req, rsp = lines[0]["request"], lines[0]["response"]
    assert req["2"] == "622202******0001" and rsp["2"] == "622202******0001"
    assert req["52"] == "[8 bytes]" and req["35"].startswith("[")
    text = record.read_text()
    assert RICH not in text and "3012101" not in text
    assert lines[0]["outcome"] == "answered" and lines[0]["elapsed_ms"] >= 0
    assert rsp["39"] == "00"


def test_simulator_api_without_cards_state_seeds_from_file(config):
    sim = Simulator(config)
    try:
        assert sim.ledger.card(RICH).balance == 10_000_000
        assert len(sim.ledger.cards()) == 8
    finally:
        sim.close()
