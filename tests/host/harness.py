"""Run a real host (temp data dir, real SQLite journal, demo estate) on a loopback port."""

from __future__ import annotations

import contextlib
import socket

import trio

from host.config import load_settings
from host.runtime import RunningHost, run_host
from specs import demo_estate
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device

DEMO = demo_estate()
# The LMK a host shares with its hsm-sim in tests that run hsm.kind = "network".
TEST_LMK = "0123456789ABCDEFFEDCBA98765432100011223344556677" + "8899AABBCCDDEEFF"


def demo_device(tid: str = "12345678") -> Device:
    for t in DEMO["terminals"]:
        if t["tid"] == tid:
            mode = t["key_mode"] if t["key_mode"] != "dukpt" else "003"
            return Device(t["tid"], t["mid"], bytes.fromhex(t["tmk_clear_test_key"]), mode)
    raise KeyError(tid)


def host_settings(tmp_path, link_port: int, journal_url: str | None = None, **overrides):
    values = {
        "data.dir": str(tmp_path / "host"),
        "server.listen": "127.0.0.1:0",
        "links.sim": {
            "address": f"127.0.0.1:{link_port}",
            "zpk_clear_test_key": "4CA2161637D0133E5E151AEA45DA2A12",
        },
        "issuer.reconnect_min": 0.05,
        "issuer.reconnect_max": 0.2,
        "issuer.saf_interval": 0.2,
    }
    if journal_url:
        values["journal.url"] = journal_url
    values.update(overrides)
    return load_settings(environ={}, overrides=values)


@contextlib.asynccontextmanager
async def running_host(settings, *, clock=None):
    async with trio.open_nursery() as nursery:
        running: RunningHost = await nursery.start(
            lambda task_status: run_host(settings, clock=clock, demo=True, task_status=task_status)
        )
        try:
            yield running
        finally:
            running.shutdown.set()


@contextlib.asynccontextmanager
async def terminal(running: RunningHost, device: Device, *, sign_on: bool = True):
    client = await TerminalClient.connect("127.0.0.1", running.port, device, timeout=10)
    try:
        if sign_on:
            await client.sign_on()
        yield client
    finally:
        await client.aclose()


async def wait_links_up(running: RunningHost, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        for link in running.host.links.values():
            await link.wait_up()


@contextlib.asynccontextmanager
async def hsm_sim(lmk_hex: str = TEST_LMK, *, test_keys: bool = True):
    """The real network HSM simulator on its own loopback socket: (HsmSim, port). It wraps
    the demo estate's and the test link's clear TEST keys (--test-keys) unless told not to."""
    from tools.hsm_sim.server import HsmSim, serve_hsm, sim_hsm, sim_test_key_hsm

    sim = HsmSim(sim_hsm(lmk_hex), sim_test_key_hsm(lmk_hex) if test_keys else None)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_hsm, sim, "127.0.0.1", 0)
        yield sim, port
        nursery.cancel_scope.cancel()


def network_hsm_settings(port: int, **more) -> dict:
    """Host overrides for hsm.kind = "network" against an hsm-sim: the host gets no LMK (the
    simulator holds TEST_LMK), only the check value it must report."""
    from keys.lmk import LocalMasterKey

    kcv = LocalMasterKey(bytes.fromhex(TEST_LMK)).check_value
    return {"hsm.kind": "network", "hsm.address": f"127.0.0.1:{port}",
            "hsm.lmk_check_value": kcv, **more}  # fmt: skip


@contextlib.asynccontextmanager
async def maybe_hsm_sim(kind: str):
    """For ``kind`` "network": an hsm-sim and the host overrides to use it; else nothing."""
    if kind == "soft":
        yield None, {}
        return
    async with hsm_sim() as (sim, port):
        yield sim, network_hsm_settings(port)


@contextlib.asynccontextmanager
async def sim_and_host(tmp_path, *, sim_overrides=None, clock=None, hsm="soft", **host_overrides):
    """The real issuer simulator on its own socket and a host linked to it, both up; with
    hsm="network" the host's HSM is a real hsm-sim on its own socket too."""
    from tools.issuer_sim.config import SimConfig
    from tools.issuer_sim.server import Simulator

    config = SimConfig.demo(
        state=tmp_path / "sim.sqlite", listen="127.0.0.1:0", **(sim_overrides or {})
    )
    sim = Simulator(config)
    async with trio.open_nursery() as nursery, maybe_hsm_sim(hsm) as (_, hsm_overrides):
        sim_port = await nursery.start(sim.serve)
        host_overrides = {**hsm_overrides, **host_overrides}
        settings = host_settings(tmp_path, sim_port, **host_overrides)
        async with running_host(settings, clock=clock) as running:
            await wait_links_up(running)
            yield sim, running
        nursery.cancel_scope.cancel()
    sim.close()


async def eventually(predicate, timeout: float = 5.0, interval: float = 0.05):
    """Poll an async predicate until it holds (store-and-forward is asynchronous by design)."""
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(interval)


async def one_by_one_issuer(port_box, answer, task_status=trio.TASK_STATUS_IGNORED):
    """A minimal issuer on its own socket, written from the issuer dialect: it signs the link on
    (0800 -> 0810 00) and hands every other request to ``answer(msg)``, which returns the
    response, or None to drop the connection without answering (an issuer killed right after
    reading the request). ``port_box`` receives the bound port."""
    from codec import issuer as issuer_codec
    from codec.framing import LengthPrefixedDecoder, prefix_length

    async def handle(stream):
        decoder = LengthPrefixedDecoder(8192)
        while True:
            data = await stream.receive_some(4096)
            if not data:
                return
            for body in decoder.feed(data):
                msg = issuer_codec.decode(body)
                resp = msg.response("00", echo=(7, 11, 70)) if msg.mti == "0800" else answer(msg)
                if resp is None:
                    await stream.aclose()
                    return
                await stream.send_all(prefix_length(issuer_codec.encode(resp)))

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port_box.append(listeners[0].socket.getsockname()[1])
    task_status.started()
    await trio.serve_listeners(handle, listeners)


def free_port() -> int:
    """A loopback port nothing listens on right now (for a server started as a process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_port(port: int, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.aclose()
                return
            except OSError:
                await trio.sleep(0.05)


# -- QR wallet payments (docs/qr.md) ---------------------------------------------------------

_KEY_CACHE: dict[str, bytes] = {}


def _test_key(name: str) -> bytes:
    """An RSA key pair made once per test run (2048-bit generation costs ~0.3 s each)."""
    if name not in _KEY_CACHE:
        from keys import rsa_sign

        _KEY_CACHE[name] = rsa_sign.generate().key.export_key("PEM")
    return _KEY_CACHE[name]


def place_wallet_keys(tmp_path) -> tuple:
    """The platform's and the acquirer's TEST key pairs where wallet-sim and the host look for
    them (each side would make its own on first start; made once per run here for speed)."""
    wallet_dir, host_dir = tmp_path / "wallet", tmp_path / "host"
    wallet_dir.mkdir(parents=True, exist_ok=True)
    host_dir.mkdir(parents=True, exist_ok=True)
    (wallet_dir / "platform_private.pem").write_bytes(_test_key("platform"))
    (host_dir / "wallet_acquirer.pem").write_bytes(_test_key("acquirer"))
    return wallet_dir, host_dir


def wallet_config(tmp_path, **changes):
    from tools.wallet_sim.config import WalletSimConfig

    wallet_dir, host_dir = place_wallet_keys(tmp_path)
    values = {
        "listen": "127.0.0.1:0",
        "control": "127.0.0.1:0",
        "state": tmp_path / "wallet" / "state.sqlite",
        "key_dir": wallet_dir,
        "acquirer_public_key": host_dir / "wallet_acquirer_public.pem",
        **changes,
    }
    return WalletSimConfig(**values)


def wallet_host_overrides(tmp_path, gateway_port: int, **qr) -> dict:
    from tools.wallet_sim.config import DEMO_APP_ID

    values = {
        "links.wallet": {
            "address": f"127.0.0.1:{gateway_port}",
            "protocol": "wallet",
            "app_id": DEMO_APP_ID,
            "platform_key": str(tmp_path / "wallet" / "platform_public.pem"),
            "timeout": 3.0,
        },
        "qr.link": "wallet",
        "qr.notify_listen": f"127.0.0.1:{free_port()}",
        "qr.pay_deadline": 3.0,
        "qr.poll_interval": 0.2,
        "qr.watch_interval": 0.2,
    }
    values.update({f"qr.{k}": v for k, v in qr.items()})
    return values


@contextlib.asynccontextmanager
async def qr_stack(tmp_path, *, wallet=None, sim_overrides=None, clock=None, qr=None,
                   **host_overrides):  # fmt: skip
    """The real issuer simulator and the real wallet-sim, each on its own socket, and a host
    linked to both, every link up: yields (wallet sim, issuer sim, running host)."""
    from tools.issuer_sim.config import SimConfig
    from tools.issuer_sim.server import Simulator
    from tools.wallet_sim.server import WalletSim

    wsim = WalletSim(wallet_config(tmp_path, **(wallet or {})))
    isim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0",
                                    **(sim_overrides or {})))  # fmt: skip
    async with trio.open_nursery() as nursery:
        gateway, control = await nursery.start(wsim.serve)
        wsim.control_port = control
        sim_port = await nursery.start(isim.serve)
        overrides = {**wallet_host_overrides(tmp_path, gateway, **(qr or {})), **host_overrides}
        settings = host_settings(tmp_path, sim_port, **overrides)
        async with running_host(settings, clock=clock) as running:
            await wait_links_up(running, timeout=10)
            yield wsim, isim, running
        nursery.cancel_scope.cancel()
    isim.close()
    wsim.close()
