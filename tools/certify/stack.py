"""A host and an issuer simulator on loopback, in this process, for certification runs and
tests: a fresh data directory, the demo estate, the real SQLite journal and real crypto."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import trio

from host.harness import RunningHost, load_settings, run_host
from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.server import Simulator

DEMO_ZPK = "4CA2161637D0133E5E151AEA45DA2A12"  # TEST ONLY, shared with the demo simulator


@attrs.define
class Stack:
    port: int
    running: RunningHost
    sim: Simulator
    wallet_control: str | None = None  # wallet-sim's control endpoint (QR suite)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def stack_settings(data_dir: Path, sim_port: int, **overrides):
    values = {
        "data.dir": str(data_dir / "host"),
        "server.listen": "127.0.0.1:0",
        "links.sim": {"address": f"127.0.0.1:{sim_port}", "zpk_clear_test_key": DEMO_ZPK},
        "issuer.reconnect_min": 0.05,
        "issuer.reconnect_max": 0.2,
        "issuer.saf_interval": 0.2,
        "log.level": "warning",
        # The suite signs on the demo terminals once per case, dozens of times a minute.
        "security.session_burst": 1000,
    }
    values.update(overrides)
    return load_settings(environ={}, overrides=values)


@contextlib.asynccontextmanager
async def local_stack(data_dir: Path, **overrides) -> AsyncIterator[Stack]:
    """Start the simulator and the host (demo estate); wait until the issuer link is up."""
    from tools.wallet_sim.config import WalletSimConfig
    from tools.wallet_sim.server import WalletSim

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sim = Simulator(SimConfig.demo(state=data_dir / "sim.sqlite", listen="127.0.0.1:0", seed=7))
    wallet = WalletSim(WalletSimConfig(
        listen="127.0.0.1:0", control="127.0.0.1:0", state=data_dir / "wallet" / "state.sqlite",
        key_dir=data_dir / "wallet",
        acquirer_public_key=data_dir / "host" / "wallet_acquirer_public.pem",
    ))  # fmt: skip
    try:
        async with _serving(sim, wallet, data_dir, overrides) as stack:
            yield stack
    finally:
        sim.close()
        wallet.close()


@contextlib.asynccontextmanager
async def _serving(sim: Simulator, wallet, data_dir: Path, overrides) -> AsyncIterator[Stack]:
    from codec.wallet import DEMO_APP_ID

    async with trio.open_nursery() as nursery:
        sim_port = await nursery.start(sim.serve)
        gateway, control = await nursery.start(wallet.serve)
        qr = {
            "links.wallet": {
                "address": f"127.0.0.1:{gateway}", "protocol": "wallet", "app_id": DEMO_APP_ID,
                "platform_key": str(data_dir / "wallet" / "platform_public.pem"), "timeout": 5.0,
            },
            "qr.link": "wallet", "qr.notify_listen": f"127.0.0.1:{_free_port()}",
            # the suite's "user paying then timeout" case waits this long
            "qr.pay_deadline": 3.0, "qr.poll_interval": 0.3, "qr.watch_interval": 0.5,
        }  # fmt: skip
        settings = stack_settings(data_dir, sim_port, **{**qr, **overrides})
        running: RunningHost = await nursery.start(
            lambda task_status: run_host(settings, demo=True, task_status=task_status)
        )
        with trio.fail_after(10):
            for link in running.host.links.values():
                await link.wait_up()
        try:
            yield Stack(running.port, running, sim, f"127.0.0.1:{control}")
        finally:
            running.shutdown.set()
            nursery.cancel_scope.cancel()


class ThreadedStack:
    """``local_stack`` in a background thread with its own Trio loop, for code that runs its
    own ``trio.run`` (CLI commands). ``call(async_fn, *args)`` runs a coroutine function in the
    stack's loop (e.g. to read the journal or the simulator's ledger)."""

    def __init__(self, data_dir: Path, **overrides) -> None:
        self.data_dir = Path(data_dir)
        self.overrides = overrides
        self.stack: Stack | None = None
        self._token = None
        self._stop: trio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready: queue.Queue = queue.Queue()

    def __enter__(self) -> ThreadedStack:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        error = self._ready.get(timeout=30)
        if error is not None:
            raise error
        return self

    async def _main(self) -> None:
        try:
            async with local_stack(self.data_dir, **self.overrides) as stack:
                self.stack = stack
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._ready.put(None)
                await self._stop.wait()
        except BaseException as exc:
            self._ready.put(exc)
            raise

    def call(self, async_fn, *args):
        return trio.from_thread.run(async_fn, *args, trio_token=self._token)

    def __exit__(self, *exc) -> None:
        if self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def address(self) -> str:
        assert self.stack is not None
        return self.stack.address


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
