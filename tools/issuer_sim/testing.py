"""Test helpers for any stream: a simulator on a free port, request builders, demo PANs.

from tools.issuer_sim.testing import RICH, Builder, run_sim

def test_something(tmp_path):
    config = SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0")

    async def body(sim, port):
        async with await connect(port) as client:
            rsp = await client.request(Builder().purchase(RICH, 1000, pin="1234"))
            assert rsp[39] == "00"
            assert (await sim.card(RICH)).balance == 10_000_000 - 1000

    run_sim(config, body)
"""

from __future__ import annotations

import itertools

import trio

from codec.message import Message
from keys import des, pinblock
from tools.issuer_sim.client import IssuerClient
from tools.issuer_sim.config import DEMO_KEYS, SimConfig
from tools.issuer_sim.server import Simulator

RICH = "6222020000000001"
LOW = "6222020000000002"
LOST = "6222020000000003"
STOLEN = "6222020000000004"
BLOCKED = "6222020000000005"
EXPIRED = "6222020000000006"
LIMITED = "6222020000000007"
FOREIGN = "4761340000000019"
PIN = "1234"


class Builder:
    """Issuer-dialect requests with unique STANs and RRNs."""

    def __init__(self, tid: str = "TERM0001"):
        self.tid = tid
        self._n = itertools.count(1)

    def next(self) -> int:
        return next(self._n)

    def financial(self, mti, proc, pan, amount=0, *, cond="00", pin=None, zpk=None, extra=None):
        n = self.next()
        fields = {
            2: pan,
            3: proc,
            4: f"{amount:012d}",
            7: "1125101010",
            11: f"{n:06d}",
            25: cond,
            32: "48615840",
            37: f"RRN{n:09d}",
            41: self.tid,
            42: "MERCHANT0000001",
            49: "156",
        }
        if pin is not None:
            fields[52] = pin_block(pin, pan, zpk)
        fields.update(extra or {})
        return Message(mti, fields)

    def purchase(self, pan, amount, **kw):
        return self.financial("0200", "000000", pan, amount, **kw)

    def network(self, code: str, extra: dict | None = None) -> Message:
        fields = {7: "1125101010", 11: f"{self.next():06d}", 70: code}
        return Message("0800", {**fields, **(extra or {})})


def original_data(msg: Message) -> str:
    return f"{msg.mti}{msg[11]}{msg[7]}{'48615840':0>11}{0:011d}"


def reversal_of(msg: Message, mti: str = "0400", stan: str | None = None) -> Message:
    rev = msg.without(52, 35).with_mti(mti).with_fields({90: original_data(msg)})
    return rev.with_fields({11: stan}) if stan else rev


def pin_block(pin: str, pan: str, zpk: str | None = None) -> bytes:
    clear = pinblock.encode(0, pin, pan)
    return des.encrypt_ecb(bytes.fromhex(zpk or DEMO_KEYS["zpk"]), clear)


def run_sim(config: SimConfig, body) -> None:
    """Start a simulator on a free port, run ``await body(sim, port)``, stop it."""

    async def main():
        sim = Simulator(config)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(sim.serve)
            with trio.fail_after(30):
                await body(sim, port)
            nursery.cancel_scope.cancel()

    trio.run(main)


async def connect(port: int) -> IssuerClient:
    return await IssuerClient.connect("127.0.0.1", port)
