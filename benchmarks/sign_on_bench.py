"""What a stranger's sign-on flood costs the host, and what the guard costs a purchase.

Run: .venv/bin/python benchmarks/sign_on_bench.py [--count 400]

Against a real host and issuer simulator on loopback (the certification stack), one
connection each, closed loop:
- sign-ons answered 00 (keys generated, pending keys journalled) vs refused 65 by the rate
  limit (no key generated, no journal write): the price of a flood with and without the limit;
- the real terminal's purchases (current MAK, on its own connection) before and after the
  flood: the MAC check tries the current MAK first, so pending keys cost them nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import trio

from host.logs import configure
from tools.certify.stack import local_stack
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device
from tools.terminal.state import from_profile


def demo(tid: str) -> Device:
    return from_profile(f"demo:{tid}").device()


async def timed(n: int, send) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await send()
    return (time.perf_counter() - start) / n * 1e6


async def sign_ons(port: int, n: int) -> tuple[float, set[str]]:
    """A stranger (right TID and MID, no TMK) signs on ``n`` times on one connection."""
    stranger = demo("12345678")
    stranger.tmk = bytes(16)
    codes: set[str] = set()
    client = await TerminalClient.connect("127.0.0.1", port, stranger)

    async def one():
        resp, _ = await client.exchange(stranger.sign_on_request())
        codes.add(str(resp[39]))

    us = await timed(n, one)
    await client.aclose()
    return us, codes


async def purchases(client: TerminalClient, n: int) -> float:
    device = client.device

    async def one():
        request = device.financial_request("purchase", pan=RICH, amount=1, pin=PIN)
        resp, _ = await client.exchange(request)
        assert resp[39] == "00", resp.get(39)

    return await timed(n, one)


async def main(count: int) -> None:
    for label, burst in (("accepted (00)", 1_000_000), ("rate-limited (65)", 1)):
        with tempfile.TemporaryDirectory() as tmp:
            overrides = {"security.session_burst": burst, "log.level": "error"}
            async with local_stack(tmp, **overrides) as stack:
                real = await TerminalClient.connect("127.0.0.1", stack.port, demo("12345678"))
                await real.sign_on()  # keys in force: every later sign-on is pending
                await purchases(real, 20)  # warm up
                alone = await purchases(real, count)
                us, codes = await sign_ons(stack.port, count)
                print(f"stranger sign-on, {label:17}: {us:7.1f} us each, codes {sorted(codes)}")
                beside = await purchases(real, count)
                print(
                    f"  real terminal's purchase: {alone:7.1f} us before the flood, "
                    f"{beside:7.1f} us after it (stranger's keys pending: {burst > 1})"
                )
                await real.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=400)
    configure(level="warning")
    trio.run(main, parser.parse_args().count)
