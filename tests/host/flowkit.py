"""A day at a shop, for the flow tests: the real issuer simulator and a real host (SQLite
journal, demo estate) in one Trio nursery, a fixed clock the tests move, and a signed-on demo
terminal that builds the dialect's requests."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import attrs
import trio

from codec.message import Message
from codec.subfields import Field60, Field61
from host.clock import FixedClock
from host.runtime import RunningHost
from tests.host.harness import (
    demo_device,
    host_settings,
    maybe_hsm_sim,
    running_host,
    terminal,
    wait_links_up,
)
from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.server import Simulator
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device

# 10:00 in Shanghai on 10 March 2025 (cut-over 23:00 local).
MORNING = dt.datetime(2025, 3, 10, 2, 0, tzinfo=dt.UTC)


@attrs.define
class Shop:
    sim: Simulator
    running: RunningHost
    clock: FixedClock
    client: TerminalClient
    device: Device
    last_request: Message | None = None
    hsm_sim: Any = None  # the hsm-sim (tools.hsm_sim.server.HsmSim) when hsm="network"

    @property
    def host(self):
        return self.running.host

    @property
    def store(self):
        return self.running.host.store

    async def send(self, msg: Message) -> tuple[Message, int]:
        return await self.client.exchange(msg)

    async def txn(self, txn_type: str, **kw) -> Message:
        """A financial request of ``txn_type`` (Device.financial_request keywords); returns the
        response after the terminal's own checks (MAC, echo)."""
        extra = kw.pop("extra", None)
        req = self.device.financial_request(txn_type, extra=extra, **kw)
        resp, _ = await self.client.exchange(req)
        self.last_request = req
        return resp

    async def sale(self, amount: int, pan: str = RICH, **kw) -> Message:
        resp = await self.txn("purchase", pan=pan, amount=amount, pin=PIN, **kw)
        assert resp[39] == "00", resp.get(39)
        return resp

    async def balance(self, pan: str = RICH) -> int:
        return (await self.sim.card(pan)).balance

    async def held(self, pan: str = RICH) -> int:
        return (await self.sim.card(pan)).held

    async def row(self, resp: Message):
        """The journal row a response answered (by its RRN)."""
        rows = await self.store.find_by_rrn(str(resp[37]))
        assert len(rows) == 1
        return rows[0]

    async def reverse(self, request: Message, reason: str = "98") -> Message:
        resp, _ = await self.client.exchange(self.device.reversal_of(request, reason))
        return resp

    async def until(self, predicate, timeout: float = 5.0) -> None:
        """Wait for an issuer-side effect the SAF worker delivers."""
        with trio.fail_after(timeout):
            while not await predicate():
                await trio.sleep(0.02)

    def settlement_request(self, field48: str, batch: str | None = None) -> Message:
        msg = self.device.management_request("0500", "201")
        f60 = Field60("00", batch or self.device.batch, "201").format()
        return msg.with_fields({48: field48, 60: f60})

    def upload_request(self, nmc: str, field48: str, batch: str) -> Message:
        msg = self.device.management_request("0320", nmc)
        return msg.with_fields({48: field48, 60: Field60("00", batch, nmc).format()})


def original(resp: Message, *, batch: str | None = None, date: bool = True) -> dict:
    """37, 38 and 61 naming the transaction ``resp`` answered (as a terminal prints them)."""
    f61 = Field61(batch or Field60.parse(str(resp[60])).batch, str(resp[11]),
                  str(resp[15]) if date else "")  # fmt: skip
    fields = {37: resp[37], 61: f61.format()}
    if resp.get(38):
        fields[38] = resp[38]
    return fields


@contextlib.asynccontextmanager
async def shop(
    tmp_path,
    *,
    clock: FixedClock | None = None,
    tid: str = "12345678",
    hsm: str = "soft",
    **overrides,
):
    clock = clock or FixedClock(MORNING)
    sim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0"))
    async with trio.open_nursery() as nursery, maybe_hsm_sim(hsm) as (hsm_sim, hsm_overrides):
        port = await nursery.start(sim.serve)
        settings = host_settings(tmp_path, port, **{**hsm_overrides, **overrides})
        async with running_host(settings, clock=clock) as running:
            await wait_links_up(running)
            device = demo_device(tid)
            async with terminal(running, device) as client:
                yield Shop(sim, running, clock, client, device, hsm_sim=hsm_sim)
        nursery.cancel_scope.cancel()
    sim.close()


def run(body, timeout: float = 30):
    async def main():
        with trio.fail_after(timeout):
            await body()

    trio.run(main)
