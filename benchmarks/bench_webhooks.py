"""How long a merchant waits for a webhook: from the outcome journalled to the event received.

Starts ``poshost serve --demo --issuer-sim`` and ``poshost webhook-receiver`` as processes in a
temporary folder, sets the demo shop's webhook with ``poshost estate merchant webhook set``,
then buys at a fixed rate from one terminal and prints, per event, the time between the
journal's ``responded_at`` (the outcome written, with its event, in one transaction) and the
receiver's clock when it verified the event; both are this machine's wall clock.

    python benchmarks/bench_webhooks.py [--rate 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from bench_host import LMK, free_port, wait_port

from specs import demo_estate
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device

POSHOST = [sys.executable, "-c", "from host.cli import main; main()"]
MID, TID = "123456789012345", "12345678"
RICH, PIN = "6222020000000001", "1234"


def device() -> Device:
    row = next(t for t in demo_estate()["terminals"] if t["tid"] == TID)
    return Device(TID, MID, bytes.fromhex(row["tmk_clear_test_key"]), row["key_mode"])


async def buy(port: int, rate: float, seconds: float) -> int:
    dev = device()
    client = await TerminalClient.connect("127.0.0.1", port, dev, timeout=10)
    await client.sign_on()
    count, start = 0, trio.current_time()
    while trio.current_time() - start < seconds:
        req = dev.financial_request("purchase", pan=RICH, amount=100 + count, pin=PIN)
        resp, _ = await client.exchange(req)
        count += resp[39] == "00"
        await trio.sleep_until(start + (count + 1) / rate)
    await client.aclose()
    return count


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=20.0, help="purchases per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        host_port, sim_port, hook_port = free_port(), free_port(), free_port()
        config = root / "host.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{host_port}"\n[data]\ndir = "{root / "data"}"\n'
            f'[hsm]\nlmk = "{LMK}"\n[log]\nformat = "json"\nlevel = "warning"\n'
            f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\n'
            'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n'
        )
        env_cfg = ["--config", str(config)]
        host = subprocess.Popen([*POSHOST, *env_cfg, "serve", "--demo", "--issuer-sim"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        receiver = None
        try:
            wait_port(host_port)
            time.sleep(1.0)  # the issuer link signs on
            secret = root / "secret.txt"
            secret.write_text("whsec_" + "42" * 32)
            subprocess.run(
                [*POSHOST, *env_cfg, "estate", "merchant", "webhook", "set", MID,
                 f"http://127.0.0.1:{hook_port}/hook", "--secret-file", str(secret)],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            out = (root / "events.jsonl").open("w")
            receiver = subprocess.Popen(
                [*POSHOST, "webhook-receiver", "--port", str(hook_port), "--secret-file",
                 str(secret)], stdout=out, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            wait_port(hook_port)
            bought = trio.run(buy, host_port, args.rate, args.seconds)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                lines = (root / "events.jsonl").read_text().splitlines()
                if len(lines) >= bought:
                    break
                time.sleep(0.1)
        finally:
            for proc in (receiver, host):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)
        events = [json.loads(line) for line in lines]
        waits = [
            (e["received_at"] - e["transaction"]["responded_at"] / 1000) * 1000
            for e in events
            if e.get("verified") and not e.get("duplicate")
        ]
    print(f"purchases approved {bought} at {args.rate:g}/s; events received {len(waits)}")
    print("outcome journalled -> event verified at the receiver, ms:")
    print(f"  p50 {pct(waits, 50):.0f}  p90 {pct(waits, 90):.0f}  p99 {pct(waits, 99):.0f}"
          f"  max {max(waits):.0f}  (webhooks.poll_interval 0.2 s)")  # fmt: skip


if __name__ == "__main__":
    main()
