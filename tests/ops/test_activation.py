"""Terminal activation over sockets: a real host, the real issuer simulator, the emulator's
activation code path; success and every failure."""

import datetime as dt
import re

import trio
from click.testing import CliRunner

from host.app import load_lmk, startup_test_key_hsm
from host.cli import main
from host.clock import FixedClock
from host.merchant.activation import derive_transport_key, hash_code
from keys.tokens import KeyType
from tests.host.flowkit import MORNING, PIN, RICH, run
from tests.host.harness import running_host, sim_and_host
from tools.terminal.activation import (
    DEMO_TEST_KDK,
    activation_request,
    field62_tusn,
    open_tmk,
    transport_key,
)
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device
from tools.terminal.state import TerminalState

MID = "123456789012345"
TID = "87654321"
TUSN = "0123ABC-45678901"
CODE = "31415926"


def test_both_sides_derive_the_same_transport_key():
    assert derive_transport_key(DEMO_TEST_KDK, TUSN) == transport_key(DEMO_TEST_KDK, TUSN)
    assert transport_key(DEMO_TEST_KDK, TUSN) != transport_key(DEMO_TEST_KDK, TUSN[:-1] + "2")


class Bench:
    def __init__(self, running, clock):
        self.running = running
        self.clock = clock
        self.host = running.host
        self.store = running.host.store
        self.stan = 0

    async def issue(self, code=CODE, *, serial=TUSN, minutes=30, max_tries=5):
        expires = int((self.clock.now() + dt.timedelta(minutes=minutes)).timestamp() * 1000)
        await self.store.add_activation_code(
            TID, hash_code(code), expires_at=expires, max_tries=max_tries, serial=serial
        )

    async def enroll(self, tusn=TUSN):
        tk = transport_key(DEMO_TEST_KDK, tusn)
        # the running host's HSM takes no clear key; the start-up's test-key HSM does
        hsm = startup_test_key_hsm(load_lmk(self.host.settings)[0], self.host.settings)
        await self.store.enroll_device(tusn, hsm.import_clear(KeyType.KEK, tk).to_text())

    async def activate(self, code=CODE, tusn=TUSN, *, raw62=None):
        device = Device(TID, MID, bytes(16), "003")
        client = await TerminalClient.connect("127.0.0.1", self.running.port, device, timeout=10)
        try:
            req = activation_request(device.next_stan(), TID, MID, code, tusn)
            if raw62 is not None:
                req = req.with_fields({62: raw62})
            resp, _ = await client.exchange(req)
        finally:
            await client.aclose()
        return resp


async def _bench(tmp_path, nursery_body):
    clock = FixedClock(MORNING)
    async with sim_and_host(tmp_path, clock=clock) as (_sim, running):
        await running.host.store.add_terminal(TID, MID, "003")
        await nursery_body(Bench(running, clock))


def test_activation_then_sign_on_and_purchase(tmp_path):
    async def body(b):
        await b.enroll()
        await b.issue()
        resp = await b.activate()
        assert resp[39] == "00"
        tmk = open_tmk(transport_key(DEMO_TEST_KDK, TUSN), bytes(resp[62]))
        terminal = await b.store.get_terminal(TID)
        assert terminal.serial == TUSN and terminal.tmk_token
        # the terminal signs on with its new TMK and sells
        device = Device(TID, MID, tmk, "003")
        client = await TerminalClient.connect("127.0.0.1", b.running.port, device, timeout=10)
        try:
            await client.sign_on()
            sale, _ = await client.exchange(
                device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
            )
            assert sale[39] == "00"
        finally:
            await client.aclose()
        # single use
        assert (await b.activate())[39] == "94"

    run(lambda: _bench(tmp_path, body))


def test_activation_failures(tmp_path):
    async def body(b):
        await b.enroll()
        # no code issued yet
        assert (await b.activate())[39] == "55"
        await b.issue()
        # malformed: no TUSN in 62
        assert (await b.activate(raw62=b"garbage"))[39] == "30"
        # wrong serial (counts as a try), wrong code (counts as a try)
        assert (await b.activate(tusn="0123ABC-99999999"))[39] == "58"
        assert (await b.activate(code="00000000"))[39] == "55"
        assert (await b.store.latest_activation_code(TID)).tries == 2
        # expired
        b.clock.advance(minutes=31)
        assert (await b.activate())[39] == "54"
        # a new code voids the old one; too many tries lock it, even for the right code
        await b.issue("27182818", max_tries=3)
        for _ in range(3):
            assert (await b.activate(code="11111111"))[39] == "55"
        assert (await b.activate(code="27182818"))[39] == "75"
        # a serial without an enrolled transport key
        await b.issue("16180339", serial=None)
        assert (await b.activate(code="16180339", tusn="0123ABC-00000000"))[39] == "A7"
        assert (await b.store.get_terminal(TID)).tmk_token is None  # nothing was activated
        assert field62_tusn(TUSN).startswith(b"Sequence No16")

    run(lambda: _bench(tmp_path, body))


def test_activation_from_the_command_lines(tmp_path):
    """`poshost estate device enroll`, `estate activation-code issue` and
    `poshost terminal activate` against a running host (real clock)."""
    from tests.host.harness import host_settings

    async def body():
        from tools.issuer_sim.config import SimConfig
        from tools.issuer_sim.server import Simulator

        sim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0"))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(sim.serve)
            settings = host_settings(tmp_path, port)
            async with running_host(settings) as running:
                await running.host.store.add_terminal(TID, MID, "003")
                url = f"sqlite:///{tmp_path}/host/poshost.sqlite"
                env = {"POSHOST_DATA_DIR": str(tmp_path / "host")}
                cli = CliRunner()

                def invoke(*args):
                    return cli.invoke(main, list(args), env=env)

                r = await trio.to_thread.run_sync(
                    invoke, "estate", "--journal", url, "device", "enroll", TUSN,
                    "--kdk-clear-test-key", DEMO_TEST_KDK.hex(),
                    "--i-know-this-is-a-clear-test-key",
                )  # fmt: skip
                assert r.exit_code == 0, r.output
                r = await trio.to_thread.run_sync(
                    invoke, "estate", "--journal", url, "activation-code", "issue", TID,
                    "--serial", TUSN,
                )  # fmt: skip
                assert r.exit_code == 0, r.output
                code = re.search(r": (\d{8}) ", r.output).group(1)
                state = tmp_path / "t.json"
                r = await trio.to_thread.run_sync(
                    invoke, "terminal", "--state", str(state), "--host",
                    f"127.0.0.1:{running.port}", "activate", code, "--serial", TUSN,
                    "--tid", TID, "--mid", MID,
                )  # fmt: skip
                assert r.exit_code == 0, r.output
                assert "activated" in r.output and code not in r.output
                saved = TerminalState.load(state)
                assert saved.tid == TID and len(saved.tmk) == 16
                r = await trio.to_thread.run_sync(
                    invoke, "terminal", "--state", str(state), "sign-on"
                )
                assert r.exit_code == 0, r.output
                # the slip names the merchant of the activated terminal, not "MERCHANT"
                r = await trio.to_thread.run_sync(
                    invoke, "terminal", "--state", str(state), "purchase", "--amount", "100",
                    "--pan", "6222020000000001", "--pin", "1234",
                )  # fmt: skip
                assert r.exit_code == 0, r.output
                assert r.output.count("POSHOST DEMO SHOP") == 2 and "1.00 CNY" in r.output
                # the code is single use
                r = await trio.to_thread.run_sync(
                    invoke, "terminal", "--state", str(tmp_path / "u.json"), "--host",
                    f"127.0.0.1:{running.port}", "activate", code, "--serial", TUSN,
                    "--tid", TID, "--mid", MID,
                )  # fmt: skip
                assert r.exit_code == 3 and "94 DUPLICATE" in r.output
            nursery.cancel_scope.cancel()
        sim.close()

    run(body, timeout=60)
