"""A flood of idle connections from one address, then a new terminal from another address.

Starts the issuer simulator and ``poshost serve --demo`` (real processes, loopback), opens N
idle connections from 127.0.0.2 and keeps them open, then times a terminal from 127.0.0.1:
connect, sign on, purchase with PIN (approved by the simulator). Two runs:

  (a) the default per-address limit (server.max_per_peer = 200): the flood gets 200 slots,
      the rest is closed at once, and the terminal is served while the flood stays open;
  (b) the per-address limit raised to N, so the flood fills server.max_connections (as a
      flood from many addresses would): the terminal is refused until the flood reaches the
      first-frame deadline (--first-frame, short here), then served.

    python benchmarks/connection_flood.py [--connections 2000] [--first-frame 10]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import trio
from bench_host import LMK, free_port, wait_port

from specs import demo_estate
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device

ZPK = "4CA2161637D0133E5E151AEA45DA2A12"  # TEST ONLY, the simulator's demo zone key
POSHOST = "import sys; from host.cli import main; sys.argv = ['poshost', *sys.argv[1:]]; main()"
FLOOD = "127.0.0.2"


def demo_device() -> Device:
    (t,) = [t for t in demo_estate()["terminals"] if t["tid"] == "12345678"]
    mode = t["key_mode"] if t["key_mode"] != "dukpt" else "003"
    return Device(t["tid"], t["mid"], bytes.fromhex(t["tmk_clear_test_key"]), mode)


def closed_by_host(stream: trio.SocketStream) -> bool:
    with socket.socket(fileno=socket.dup(stream.socket.fileno())) as sock:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True


async def serve_terminal(port: int) -> tuple[float, str]:
    """Seconds for connect + sign-on + purchase, and the purchase's response code."""
    started = trio.current_time()
    device = demo_device()
    client = await TerminalClient.connect("127.0.0.1", port, device, timeout=10)
    try:
        await client.sign_on()
        req = device.financial_request("purchase", pan=RICH, amount=1_000, pin=PIN)
        resp, _ = await client.exchange(req)
    finally:
        await client.aclose()
    return trio.current_time() - started, resp[39]


async def flood_then_terminal(port: int, connections: int, wait_for_slot: bool) -> None:
    flood: list[trio.SocketStream] = []
    opened_at = trio.current_time()

    async def opener(count: int) -> None:
        for _ in range(count):
            flood.append(await trio.open_tcp_stream("127.0.0.1", port, local_address=FLOOD))

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(opener, connections // 50)
    print(f"  opened in {trio.current_time() - opened_at:.2f} s")
    await trio.sleep(0.5)  # the host has accepted or refused them all
    refused = sum(map(closed_by_host, flood))
    print(f"  {connections} idle connections from {FLOOD}, "
          f"closed by the host at once: {refused}")  # fmt: skip
    attempts = 0
    while True:
        attempts += 1
        try:
            took, code = await serve_terminal(port)
            break
        except (ConnectionError, OSError, trio.BrokenResourceError):
            if not wait_for_slot:
                raise
            await trio.sleep(0.2)
    since_flood = trio.current_time() - opened_at
    still_open = sum(not closed_by_host(s) for s in flood)
    print(f"  terminal from 127.0.0.1: sign-on + purchase in {took * 1000:.0f} ms, code {code}, "
          f"attempt {attempts}, {since_flood:.1f} s after the flood began; "
          f"flood connections still open: {still_open}")  # fmt: skip
    for stream in flood:
        await stream.aclose()


def run_host(tmp: Path, sim_port: int, first_frame: float, max_per_peer: int | None) -> tuple:
    port = free_port()
    per_peer = f"max_per_peer = {max_per_peer}\n" if max_per_peer else ""
    config = tmp / f"host-{port}.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\nfirst_frame_timeout = {first_frame}\n{per_peer}'
        f'[data]\ndir = "{tmp / f"host-{port}"}"\n[hsm]\nlmk = "{LMK}"\n'
        '[log]\nformat = "json"\nlevel = "info"\n'
        f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\nzpk_clear_test_key = "{ZPK}"\n'
    )
    log = open(tmp / f"host-{port}.log", "wb")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen(
        [sys.executable, "-c", POSHOST, "serve", "--demo", "--config", str(config)],
        stdout=log,
        stderr=log,
    )
    wait_port(port)
    time.sleep(1.0)  # the issuer link is up
    return proc, port, log


def print_warnings(log: Path) -> None:
    """What the flood cost in log lines: the host's warnings by event (and kind)."""
    counts: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") in ("warning", "error") and not record["event"].startswith("link"):
            counts[f"{record['event']} {record.get('kind') or ''}".strip()] += 1
    print(f"  host warnings in the log: {dict(counts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--first-frame", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        sim_port = free_port()
        sim = subprocess.Popen(
            [sys.executable, "-c", POSHOST, "issuer-sim", "--listen", f"127.0.0.1:{sim_port}",
             "--state", str(tmp / "sim.sqlite")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(sim_port)
            for title, per_peer, wait in (
                ("(a) server.max_per_peer = 200 (default)", None, False),
                (f"(b) server.max_per_peer = {args.connections}", args.connections, True),
            ):
                print(f"{title}, server.first_frame_timeout = {args.first_frame:g} s")
                proc, port, log = run_host(tmp, sim_port, args.first_frame, per_peer)
                try:
                    trio.run(flood_then_terminal, port, args.connections, wait)
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
                    log.close()
                print_warnings(Path(log.name))
        finally:
            sim.terminate()
            sim.wait(timeout=20)


if __name__ == "__main__":
    main()
