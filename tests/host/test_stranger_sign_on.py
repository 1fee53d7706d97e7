"""A stranger who knows a terminal's TID and MID (they are on every receipt) cannot knock it off:
its sign-ons leave the terminal's keys in force, its sign-offs are refused, floods are
rate-limited, and each attempt is a counted security event. Over the real socket, against the
real host, journal and issuer simulator."""

from __future__ import annotations

import attrs
import pytest

from codec import terminal as terminal_codec
from codec.framing import parse_envelope
from host.config import ConfigError, load_settings
from host.flow.session_guard import TokenBuckets
from keys.hsm import encrypt_track
from tests.host.flowkit import run, shop
from tests.host.harness import demo_device, terminal
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.device import Device
from tools.terminal.state import from_profile

TID = "12345678"


def stranger_device(tid: str = TID) -> Device:
    """Knows TID and MID, not the TMK."""
    real = demo_device(tid)
    return Device(real.tid, real.mid, bytes(16), real.key_mode)


def keys_of(device: Device) -> tuple:
    return device.pik, device.mak, device.tdk


def with_keys(device: Device, keys: tuple) -> Device:
    pik, mak, tdk = keys
    return attrs.evolve(device, pik=pik, mak=mak, tdk=tdk)


async def unchecked(client, device: Device, msg) -> tuple:
    """Send ``msg``; the answer decoded without the terminal's checks (an A0 answer is MAC'd
    under the host's current MAK, which this device does not hold)."""
    await client.send_raw(device.envelope(device.encode(msg)).to_frame())
    env = parse_envelope(await client.receive_body())
    return terminal_codec.decode(env.payload), env.processing


async def stranger_signs_on(s, stranger: Device) -> tuple:
    """The stranger's sign-on is answered like any other; the clear keys it delivered are
    read here with the real TMK (the stranger cannot), to show they are never usable."""
    async with terminal(s.running, stranger, sign_on=False) as client:
        resp, _ = await client.exchange(stranger.sign_on_request())
    assert resp[39] == "00"
    spy = demo_device(stranger.tid)
    spy.accept_sign_on(resp)
    return keys_of(spy)


def test_strangers_sign_on_and_sign_off_leave_the_terminal_transacting(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            before = await s.store.get_terminal(TID)
            first = await s.sale(1000)  # MAC-checked by the terminal (client.exchange)
            stranger = stranger_device()
            strangers_keys = await stranger_signs_on(s, stranger)
            async with terminal(s.running, stranger, sign_on=False) as client:
                resp, _ = await client.exchange(stranger.sign_off_request())  # no MAK: no MAC
                assert resp[39] == "A7"
                stranger.mak = bytes.fromhex("0102030405060708")  # a guessed MAK
                resp, _ = await client.exchange(stranger.sign_off_request())
                assert resp[39] == "A7"
            stored = await s.store.get_terminal(TID)
            assert stored.signed_on and stored.mak_token == before.mak_token
            assert stored.pending_mak_token is not None  # waiting, not in force
            for amount in (1100, 1200, 1300):
                resp = await s.sale(amount)
                assert resp[64] and resp[37] != first[37]
            assert s.host.security.counts["sign_off_refused"] == 2

            old_keys = keys_of(s.device)
            await s.client.sign_on()  # the real terminal re-signs on: its keys are pending
            await s.sale(1400)  # ... and this purchase (MAC, PIN) proves and promotes them
            stored = await s.store.get_terminal(TID)
            assert stored.mak_token not in (before.mak_token, None)
            assert stored.pending_mak_token is None  # the stranger's pending keys are gone
            for keys in (strangers_keys, old_keys):
                other = with_keys(demo_device(), keys)
                async with terminal(s.running, other, sign_on=False) as client:
                    request = other.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
                    resp, proc = await unchecked(client, other, request)
                assert (resp[39], proc) == ("A0", 3)
            assert s.host.security.counts["mac_failed"] == 2
            assert s.host.security.counts["keys_pending_replaced"] == 1
            await s.sale(1500)

    run(body)


def test_only_the_terminal_itself_can_sign_off(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            # A terminal that connects per message: a MAC'd sign-off on a fresh connection.
            await s.sale(1000)
            async with terminal(s.running, s.device, sign_on=False) as other:
                resp, _ = await other.exchange(s.device.sign_off_request())
            assert resp[39] == "00"
            assert not (await s.store.get_terminal(TID)).signed_on
            # The connection that proved the keys may sign off without a MAC.
            await s.client.sign_on()
            await s.sale(1100)
            resp, _ = await s.client.exchange(s.device.sign_off_request(mac=False))
            assert resp[39] == "00"
            resp, proc = await s.client.exchange(
                s.device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
            )
            assert (resp[39], proc) == ("77", 3)
            assert s.host.security.counts["sign_off_refused"] == 0

    run(body)


def test_a_sign_on_flood_is_rate_limited_and_journalled(tmp_path):
    async def body():
        async with shop(tmp_path, **{"security.session_burst": 3}) as s:
            stranger = stranger_device()
            codes = []
            async with terminal(s.running, stranger, sign_on=False) as client:
                for _ in range(8):
                    resp, _ = await client.exchange(stranger.sign_on_request())
                    codes.append(resp[39])
                for _ in range(5):
                    resp, _ = await client.exchange(stranger.sign_off_request())
                    codes.append(resp[39])
            # The shop's own sign-on took one token of three.
            assert codes == ["00"] * 2 + ["65"] * 6 + ["A7"] * 3 + ["65"] * 2
            await s.sale(1000)  # the terminal's current keys never moved
            counts = s.host.security.counts
            assert counts["sign_on_rate_limited"] == 6 and counts["sign_off_rate_limited"] == 2
            await s.host.security.flush()
            rows = await s.store.list_security_events(tid=TID)
            by_kind = {r.kind: r for r in rows}
            assert by_kind["sign_on_rate_limited"].count == 6
            assert by_kind["sign_off_refused"].count == 3
            assert by_kind["sign_on_rate_limited"].peer == "127.0.0.1"

    run(body)


def test_unproven_keys_expire_and_the_current_ones_stay(tmp_path):
    async def body():
        async with shop(tmp_path, **{"security.pending_ttl": 600}) as s:
            old_keys = keys_of(s.device)
            await s.client.sign_on()
            s.clock.advance(seconds=601)
            request = s.device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
            resp, proc = await unchecked(s.client, s.device, request)
            assert (resp[39], proc) == ("A0", 3)
            assert s.host.security.counts["keys_pending_expired"] == 1
            stored = await s.store.get_terminal(TID)
            assert stored.pending_mak_token is None and stored.pending_at is None
            s.device = with_keys(s.device, old_keys)  # the keys in force still work
            s.client.device = s.device
            await s.sale(1000)
            await s.client.sign_on()  # and a new sign-on proven in time promotes
            s.clock.advance(seconds=599)
            await s.sale(1100)
            assert (await s.store.get_terminal(TID)).pending_mak_token is None

    run(body)


def test_track_key_and_dukpt_terminals_use_the_promoted_keys(tmp_path):
    track = f"{RICH}=30121010000000000000"

    async def body():
        async with shop(tmp_path, tid="12345680") as s:  # mode 004: PIK, MAK and TDK
            await s.sale(1000)
            await s.client.sign_on()
            enc = encrypt_track(s.device.tdk, track)
            resp = await s.txn("purchase", track2=track, amount=1100, pin=PIN,
                               extra={35: enc, 53: "2610000000000000"})  # fmt: skip
            assert resp[39] == "00"
            assert (await s.store.get_terminal("12345680")).pending_mak_token is None
        async with shop(tmp_path / "dukpt", tid="12345681") as s:  # PIN under DUKPT, MAK
            pin_pad = from_profile("demo:12345681")
            s.device.ipek, s.device.ksn = pin_pad.ipek, pin_pad.ksn
            await s.sale(1000)
            await s.client.sign_on()
            await s.sale(1100)
            assert (await s.store.get_terminal("12345681")).pending_mak_token is None

    run(body, timeout=60)


def test_token_buckets_refill_per_terminal_and_settings_are_checked():
    buckets = TokenBuckets(burst=2, refill=10.0)
    assert [buckets.take("T1", 0.0) for _ in range(3)] == [True, True, False]
    assert buckets.take("T2", 0.0)  # per terminal
    assert buckets.take("T1", 10.0) and not buckets.take("T1", 10.0)
    settings = load_settings(environ={"POSHOST_SECURITY_PENDING_TTL": "3600"})
    assert settings.security.pending_ttl == 3600
    assert settings.sources["security.pending_ttl"] == "env:POSHOST_SECURITY_PENDING_TTL"
    with pytest.raises(ConfigError, match="session_burst"):
        load_settings(environ={"POSHOST_SECURITY_SESSION_BURST": "0"})
