"""QR latency next to card latency, through the host, at a fixed offered rate, in one run.

Starts the issuer simulator, wallet-sim and the host as their own processes on loopback (real
crypto: MAC and PIN translation for cards, RSA-SHA256 signatures both ways on the wallet link;
the real durable SQLite journal), provisions load terminals, and drives a mix of purchases with
PIN and QR payments by customer code (wallet-sim's one-time codes, issued before the clock
starts) with ``poshost load`` in open loop. Prints p50/p95/p99 per kind, from the load report.

    python benchmarks/bench_qr.py [--rate 100] [--duration 20] [--terminals 8]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LMK = "00112233445566778899AABBCCDDEEFF0011223344556677"  # TEST ONLY, benchmark data dir
POSHOST = [sys.executable, "-c", "from host.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100.0, help="requests/s in total")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--terminals", type=int, default=8)
    ap.add_argument("--mix", default="purchase_pin=50,qr=50")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="poshost-bench-qr-"))
    ports = {k: free_port() for k in ("host", "issuer", "gateway", "control", "notify")}
    data = work / "var"
    config = work / "poshost.toml"
    config.write_text(f"""
[server]
listen = "127.0.0.1:{ports["host"]}"
[data]
dir = "{data}"
[hsm]
lmk = "{LMK}"
[log]
level = "warning"
[security]
session_burst = 1000
[links.sim]
address = "127.0.0.1:{ports["issuer"]}"
zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"
[links.wallet]
address = "127.0.0.1:{ports["gateway"]}"
protocol = "wallet"
app_id = "2088000000000001"
platform_key = "{data}/wallet-sim/platform_public.pem"
[qr]
link = "wallet"
notify_listen = "127.0.0.1:{ports["notify"]}"
[[routes]]
prefix = ""
link = "sim"
""")
    env = {**os.environ, "POSHOST_CONFIG": str(config), "POSHOST_SIM_LOG_FORMAT": "json"}
    logs = open(work / "processes.log", "wb")  # noqa: SIM115
    procs = [
        subprocess.Popen([*POSHOST, "issuer-sim", "--listen", f"127.0.0.1:{ports['issuer']}",
                          "--state", str(work / "issuer.sqlite")], cwd=work, env=env,
                         stdout=logs, stderr=logs),
        subprocess.Popen([*POSHOST, "wallet-sim", "--listen", f"127.0.0.1:{ports['gateway']}",
                          "--control", f"127.0.0.1:{ports['control']}",
                          "--state", str(data / "wallet-sim" / "state.sqlite"),
                          "--key-dir", str(data / "wallet-sim"),
                          "--acquirer-key", str(data / "wallet_acquirer_public.pem")],
                         cwd=work, env=env, stdout=logs, stderr=logs),
    ]  # fmt: skip
    try:
        wait_port(ports["issuer"])
        wait_port(ports["gateway"])
        procs.append(subprocess.Popen([*POSHOST, "serve", "--demo"], cwd=work, env=env,
                                      stdout=logs, stderr=logs))  # fmt: skip
        wait_port(ports["host"])
        time.sleep(2.0)  # links up (the wallet link's first probe)
        out = work / "load.json"
        cmd = [*POSHOST, "load", "--host", f"127.0.0.1:{ports['host']}",
               "--terminals", str(args.terminals), "--rate", str(args.rate),
               "--duration", str(args.duration), "--mix", args.mix, "--amount", "100",
               "--wallet-control", f"127.0.0.1:{ports['control']}", "--quiet",
               "--json", str(out), "--state", str(work / "load_state.json")]  # fmt: skip
        print(f"$ poshost load ... --rate {args.rate:g} --duration {args.duration:g} "
              f"--terminals {args.terminals} --mix {args.mix}", flush=True)  # fmt: skip
        subprocess.run(cmd, cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
        report = json.loads(out.read_text())
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=15)
    print(f"offered {args.rate:g}/s for {args.duration:g}s, {args.terminals} terminals, "
          f"completed {report['completed']}, errors {report.get('errors') or {}}")  # fmt: skip
    print(f"{'kind':<14}{'answers':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  codes")
    for kind, row in report["by_type"].items():
        lat = row["latency_ms"]
        print(f"{kind:<14}{row['completed']:>8}{lat['p50']:>9.2f}{lat['p95']:>9.2f}"
              f"{lat['p99']:>9.2f}  {row['response_codes']}")  # fmt: skip
    print(f"(work dir {work})")


if __name__ == "__main__":
    main()
