"""The network HSM: the host against `poshost hsm-sim` over real loopback sockets.

Sign-on (A0), MAC verify and generate (M8/M6), PIN translation from a PIK (CA) and from DUKPT
(G0) all go through the simulator; a killed simulator turns into clean 96 answers through the
circuit breaker, and a restarted one into approvals again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import trio

from host.hsm import HsmUnavailable
from host.hsm.network import NetworkHSM
from host.runtime import StartupError, run_host
from keys import des, dukpt, pinblock
from keys import hsm_wire as wire
from keys.checkvalue import kcv
from keys.errors import KeysError
from keys.hsm import DukptSource, SoftHSM, encrypt_track
from keys.tokens import KeyToken, KeyType
from tests.host.flowkit import run, shop
from tests.host.harness import (
    TEST_LMK,
    demo_device,
    eventually,
    free_port,
    host_settings,
    hsm_sim,
    network_hsm_settings,
    sim_and_host,
    terminal,
)
from tools.hsm_sim.server import HsmSim, sim_hsm, sim_test_key_hsm
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.state import from_profile


def test_sign_on_purchase_and_dukpt_pin_go_through_the_network_hsm(tmp_path):
    async def body():
        async with hsm_sim() as (hsm, port):
            overrides = network_hsm_settings(port)
            async with shop(tmp_path, **overrides) as s:  # sign-on: A0 x2 under the TMK
                assert type(s.running.host.hsm).__name__ == "NetworkHSM"
                before = hsm.commands
                resp = await s.txn("purchase", pan=RICH, amount=1000, pin=PIN)
                assert resp[39] == "00"  # M8 (request MAC), CA (PIN), M6 (response MAC)
                assert hsm.commands - before == 3
                wrong = await s.txn("purchase", pan=RICH, amount=1000, pin="9999")
                assert wrong[39] == "55"  # the block reached the issuer translated, not opened
            async with shop(tmp_path / "dukpt", tid="12345681", **overrides) as s:
                pin_pad = from_profile("demo:12345681")
                s.device.ipek, s.device.ksn = pin_pad.ipek, pin_pad.ksn
                before = hsm.commands
                resp = await s.txn("purchase", pan=RICH, amount=1000, pin=PIN)
                assert resp[39] == "00"  # G0: DUKPT -> ZPK
                assert hsm.commands - before == 3

    run(body, timeout=60)


async def _start_hsm_sim(port: int) -> subprocess.Popen:
    """`poshost hsm-sim` in its own process, once it accepts connections."""
    argv = [sys.executable, "-c", "from host.cli import main; main()", "hsm-sim", "--test-keys"]
    proc = subprocess.Popen(
        [*argv, "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, "HSM_SIM_LMK": TEST_LMK},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with trio.fail_after(20):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return proc


def test_killed_hsm_sim_gives_clean_96_and_a_restarted_one_approvals(tmp_path):
    port = free_port()

    async def body(sim, running, proc):
        try:
            device = demo_device()
            async with terminal(running, device) as client:
                first = device.financial_request("purchase", pan=RICH, amount=500, pin=PIN)
                ok, _ = await client.exchange(first)
                assert ok[39] == "00"
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                codes = []
                for _ in range(5):  # the breaker opens after 2 failures; the rest fail at once
                    req = device.financial_request("purchase", pan=RICH, amount=700, pin=PIN)
                    resp, _ = await client.exchange(req)
                    codes.append(resp[39])
                    assert 64 not in resp  # a decline the HSM could not MAC goes without
                assert codes == ["96"] * 5
                assert running.host.hsm.breaker.is_open
                proc = await _start_hsm_sim(port)

                async def approved() -> bool:
                    req = device.financial_request("purchase", pan=RICH, amount=900, pin=PIN)
                    resp, _ = await client.exchange(req)
                    return resp[39] == "00"

                await eventually(approved, timeout=15, interval=0.3)
            rows = await running.host.store.list_transactions(tid=device.tid)
            debited = sum(r.amount for r in rows if r.status == "approved")
            assert (await sim.card(RICH)).balance == 10_000_000 - debited
            assert {r.amount for r in rows if r.status == "approved"} == {500, 900}
        finally:
            proc.kill()
            proc.wait()

    async def main():
        overrides = network_hsm_settings(
            port, **{"hsm.timeout": 1.0, "hsm.breaker_failures": 2, "hsm.breaker_cooldown": 0.5}
        )
        proc = await _start_hsm_sim(port)  # up first: it wraps the host's test keys at start
        try:
            async with sim_and_host(tmp_path, **overrides) as (sim, running):
                await body(sim, running, proc)
        finally:
            proc.kill()

    trio.run(main)


def test_an_hsm_failing_after_the_approval_gets_96_and_the_debit_is_reversed(tmp_path):
    def failing(fields):
        raise RuntimeError("simulated HSM fault")  # answered as error 41

    async def main():
        async with hsm_sim() as (hsm, port):
            overrides = network_hsm_settings(port)
            async with sim_and_host(tmp_path, **overrides) as (sim, running):
                device = demo_device()
                async with terminal(running, device) as client:
                    hsm.handlers["M6"] = failing  # the answer's MAC cannot be made
                    req = device.financial_request("purchase", pan=RICH, amount=4321, pin=PIN)
                    resp, _ = await client.exchange(req)
                    assert resp[39] == "96" and 64 not in resp

                async def reversed_at_issuer() -> bool:
                    return (await sim.card(RICH)).balance == 10_000_000

                await eventually(reversed_at_issuer, timeout=10)
                rows = await running.host.store.list_transactions(tid=device.tid)
                assert [(r.status, r.amount) for r in rows] == [("reversed", 4321)]

    trio.run(main)


# -- the client and the simulator on their own ------------------------------------------------


def test_commands_in_flight_share_one_connection_and_get_their_own_answers():
    soft = sim_hsm(TEST_LMK)
    mak = soft.generate_key(KeyType.TAK, 8)
    messages = [f"message {i}".encode() for i in range(40)]

    async def main():
        async with hsm_sim() as (_, port), trio.open_nursery() as nursery:
            client = NetworkHSM("127.0.0.1", port, connections=1)
            await nursery.start(client.run)
            results: dict[int, bytes] = {}

            async def one(i: int) -> None:
                results[i] = await client.generate_mac(mak, messages[i])

            async with trio.open_nursery() as calls:
                for i in range(len(messages)):
                    calls.start_soon(one, i)
            assert results == {i: soft.generate_mac(mak, m) for i, m in enumerate(messages)}
            assert await client.verify_mac(mak, messages[0], results[0])
            assert not await client.verify_mac(mak, messages[1], results[0])
            assert await client.diagnostics() == soft.lmk_check_value
            assert await client.check_value(mak) == soft.check_value(mak) == mak.check_value  # BU
            stranger = SoftHSM.from_hex("11" * 32).generate_key(KeyType.TAK, 16)
            with pytest.raises(KeysError):  # another LMK's token does not unwrap: error 10
                await client.check_value(stranger)
            tmk = soft.generate_key(KeyType.TMK, 16)
            token, crypt, cv = await client.generate_exported(KeyType.TPK, 16, tmk)
            assert soft.export_key(token, tmk) == (crypt, cv)
            assert await client.export_key(token, tmk) == (crypt, cv)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_silent_hsm_times_out_then_the_breaker_fails_calls_at_once():
    soft = sim_hsm(TEST_LMK)
    mak = soft.generate_key(KeyType.TAK, 8)
    accepted: list[trio.SocketStream] = []

    async def silent(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    async def main():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, silent, 0)
            port = listeners[0].socket.getsockname()[1]
            client = NetworkHSM("127.0.0.1", port, timeout=0.2, breaker_failures=2,
                                breaker_cooldown=60)  # fmt: skip
            await nursery.start(client.run)
            errors = []
            for _ in range(3):  # the start-up NC check may be the first failure
                with pytest.raises(HsmUnavailable) as info:
                    await client.generate_mac(mak, b"data")
                errors.append(str(info.value))
            assert errors[0] == "no answer within 0.2 s"
            assert errors[-1] == "circuit breaker open"
            assert client.breaker.is_open
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_cancelled_probe_does_not_leave_the_breaker_stuck_open():
    soft = sim_hsm(TEST_LMK)
    mak = soft.generate_key(KeyType.TAK, 8)

    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async def main():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, silent, 0)
            port = listeners[0].socket.getsockname()[1]
            client = NetworkHSM("127.0.0.1", port, timeout=0.3, breaker_failures=1,
                                breaker_cooldown=0)  # fmt: skip
            await nursery.start(client.run)
            await trio.sleep(0.5)  # the start-up NC check failed: the breaker is open
            assert client.breaker.is_open
            with trio.move_on_after(0.05):  # the half-open probe's caller gives up
                await client.generate_mac(mak, b"data")
            with pytest.raises(HsmUnavailable, match="no answer"):  # admitted as the next probe
                await client.generate_mac(mak, b"data")
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_the_simulator_answers_bad_commands_with_payshield_error_codes():
    soft = sim_hsm(TEST_LMK)
    sim = HsmSim(soft)
    tak = soft.generate_key(KeyType.TAK, 8).to_text()
    zpk = soft.generate_key(KeyType.ZPK, 16).to_text()
    assert sim.answer("XY") == "XZ68"  # no such command
    assert sim.answer("CA123") == "CB15"  # truncated
    # a MAC key used as a PIN key: the token's type does not allow it
    assert sim.answer(wire.ca_translate_tpk(tak, zpk, bytes(8), 0, 0, RICH)) == "CB10"
    other = SoftHSM.from_hex("11" * 32).generate_key(KeyType.TPK, 16).to_text()
    assert sim.answer(wire.ca_translate_tpk(other, zpk, bytes(8), 0, 0, RICH))[2:] == "10"
    assert sim.answer(wire.m8_verify_mac(tak, b"x", bytes(8), "unionpay_ecb", 1)) == "M901"
    assert sim.answer("NC").startswith("ND00")


def test_frames_pipelined_in_one_write_are_answered_with_their_headers():
    async def main():
        async with hsm_sim() as (_, port):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(wire.frame("0001", "NC") + wire.frame("0002", "QQ"))
            decoder = wire.FrameDecoder()
            answers: list[tuple[str, str]] = []
            while len(answers) < 2:
                answers += list(decoder.feed(await stream.receive_some(4096)))
            assert answers[0][0] == "0001" and answers[0][1].startswith("ND00")
            assert answers[1] == ("0002", "QR68")
            await stream.aclose()

    trio.run(main)


def test_aes_dukpt_pin_and_track_decryption_go_through_the_client():
    # G0 for an AES BDK: format 0 under a 2TDEA working key (the dialect's 8-byte field 52),
    # and the X9.24-3-2017 supplement's format 4 block under the AES-128 PIN key (KSN
    # ...00000001, PIN 1234, PAN 4111111111111111 -> A912150391AB65A67E52883D81CE2D15).
    keys = sim_test_key_hsm(TEST_LMK)
    aes_bdk = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
    zpk_clear = bytes.fromhex("4CA2161637D0133E5E151AEA45DA2A12")
    bdk = keys.import_clear(KeyType.BDK_AES, aes_bdk)
    zpk = keys.import_clear(KeyType.ZPK, zpk_clear)
    tdk_clear = bytes.fromhex("11223344556677888877665544332211")
    tdk = keys.import_clear(KeyType.TDK, tdk_clear)
    pan = "4111111111111111"
    ksn1 = bytes.fromhex("123456789012345600000001")
    ksn2 = bytes.fromhex("123456789012345600000002")
    working = dukpt.host_derive_working_key(
        aes_bdk, ksn2, dukpt.KeyUsage.PIN_ENCRYPTION, dukpt.DerivedKeyType.TDES2
    )
    tdea_block = des.encrypt_ecb(working, pinblock.encode(0, "8642", pan))
    track = f"{RICH}=30121010000000000000"

    async def main():
        async with hsm_sim() as (sim, port), trio.open_nursery() as nursery:
            client = NetworkHSM("127.0.0.1", port, connections=1)
            await nursery.start(client.run)
            out = await client.translate_pin(
                tdea_block, pan, DukptSource(bdk, ksn2, 0, "TDES2"), zpk
            )
            assert pinblock.decode(0, des.decrypt_ecb(zpk_clear, out), pan) == "8642"
            fmt4 = bytes.fromhex("A912150391AB65A67E52883D81CE2D15")
            out = await client.translate_pin(fmt4, pan, DukptSource(bdk, ksn1), zpk)
            assert pinblock.decode(0, des.decrypt_ecb(zpk_clear, out), pan) == "1234"
            assert sim.counts["G0"] == 2
            # track: only the enciphered block travels (M2), the host puts it back
            assert await client.decrypt_track(tdk, encrypt_track(tdk_clear, track)) == track
            assert sim.counts["M2"] == 1
            with pytest.raises(KeysError):  # a PIN key does not open tracks (error 10)
                await client.decrypt_track(zpk, encrypt_track(tdk_clear, track))
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_clear_test_keys_only_on_a_simulator_started_for_them():
    soft = sim_hsm(TEST_LMK)
    plain, keyed = HsmSim(soft), HsmSim(soft, sim_test_key_hsm(TEST_LMK))
    zpk = bytes.fromhex("4CA2161637D0133E5E151AEA45DA2A12")
    assert plain.answer(wire.tk_import_test_key("ZPK", zpk)) == "TL68"  # no such command
    answer = keyed.answer(wire.tk_import_test_key("ZPK", zpk))
    assert answer.startswith("TL00")
    token = KeyToken.from_text(wire.Fields(answer, 4).key())
    assert token.key_type is KeyType.ZPK and token.check_value == kcv(zpk).hex().upper()
    # a key that wraps or carries other keys is not a test key the host ever needs
    for name in ("KEK", "ZMK", "KBPK", "PVK", "TAK"):
        assert keyed.answer(wire.tk_import_test_key(name, zpk)) == "TL10"


def test_a_network_host_with_test_keys_and_an_hsm_that_refuses_them_does_not_start(tmp_path):
    async def main():
        async with hsm_sim(test_keys=False) as (_, port), trio.open_nursery() as nursery:
            settings = host_settings(tmp_path, free_port(), **network_hsm_settings(port))
            with pytest.raises(BaseExceptionGroup) as info:
                await nursery.start(lambda task_status: run_host(settings, task_status=task_status))
            assert info.group_contains(StartupError, match="--test-keys")
            assert not (tmp_path / "host" / "lmk.hex").exists()  # nor was an LMK made
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_serve_says_in_one_line_that_the_network_hsm_did_not_wrap_the_test_keys(tmp_path):
    # its own process: `serve` configures the process's logging for good
    cfg = tmp_path / "host.toml"
    cfg.write_text(
        f'[data]\ndir = "{tmp_path / "host"}"\n[server]\nlisten = "127.0.0.1:0"\n'
        f'[hsm]\nkind = "network"\naddress = "127.0.0.1:{free_port()}"\n'  # nobody there
    )
    argv = [sys.executable, "-c", "from host.cli import main; main()", "serve", "--demo"]
    done = subprocess.run(
        [*argv, "--config", str(cfg)], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert done.returncode == 1
    assert "Error: the configured test keys (--demo" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "host" / "lmk.hex").exists()


def test_an_offline_key_command_of_a_network_installation_makes_no_lmk_of_its_own(tmp_path):
    from host.app import load_lmk
    from host.config import ConfigError

    network = network_hsm_settings(free_port())
    with pytest.raises(ConfigError, match="the LMK lives in the HSM"):
        load_lmk(host_settings(tmp_path, 1, **network))  # what `estate terminal set-key` reads
    assert not (tmp_path / "host" / "lmk.hex").exists()
    (tmp_path / "hsm.lmk").write_text(TEST_LMK)  # given the HSM's LMK, it works in process
    given = {**network, "hsm.lmk_file": str(tmp_path / "hsm.lmk")}
    lmk, source = load_lmk(host_settings(tmp_path, 1, **given))
    assert lmk == bytes.fromhex(TEST_LMK) and source.endswith("hsm.lmk")
