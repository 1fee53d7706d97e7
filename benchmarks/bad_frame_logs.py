"""How much log a stream of bad frames costs: bytes and lines per 10,000 bad frames.

Starts ``poshost serve --demo`` (JSON logs to a file, its issuer link pointing at a closed
port), then sends N bad frames, each on its own connection, from eight loopback addresses
(127.0.0.2-9), in four kinds: an oversize length prefix, a body too short for an envelope, a
payload whose MTI cannot be read (the connection is closed) and a payload with a readable MTI
but garbage after it (answered 30). It waits for the security monitor's interval summary, then
counts what the host wrote to its log while the frames came in, by event.

    python benchmarks/bad_frame_logs.py [--frames 10000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import trio
from bench_host import LMK, free_port, wait_port

from codec.framing import build_envelope, prefix_length

SUMMARY_WAIT = 11.0  # the security monitor summarises every 10 s
POSHOST = "import sys; from host.cli import main; sys.argv = ['poshost', *sys.argv[1:]]; main()"


def bad_frame(kind: int, rng: random.Random) -> bytes:
    """One of four kinds of bad frame (kind 0..3)."""
    junk = rng.randbytes(rng.randint(4, 60))
    if kind == 0:
        return b"\xff\xff" + b"\x60" * 20  # length above server.max_frame
    if kind == 1:
        return prefix_length(b"\x60\x00\x03" + junk[:3])  # shorter than TPDU + header + MTI
    if kind == 2:
        return build_envelope(b"\xff\xee" + junk).to_frame()  # MTI unreadable
    return build_envelope(bytes.fromhex("0200") + junk).to_frame()  # readable MTI, garbage


async def send_one(port: int, source: str, frame: bytes) -> None:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    except OSError:
        return
    with trio.move_on_after(5):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await stream.send_all(frame)
            await stream.receive_some(4096)  # the answer (30) or the host's close
    await stream.aclose()


async def attack(port: int, frames: int, concurrency: int) -> None:
    rng = random.Random(8583)
    todo = iter(range(frames))

    async def worker() -> None:
        for n in todo:
            await send_one(port, f"127.0.0.{2 + n % 8}", bad_frame(n % 4, rng))

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)


def write_config(tmp: Path, port: int) -> Path:
    config = tmp / "poshost.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\n'
        f'[data]\ndir = "{tmp / "host"}"\n'
        f'[hsm]\nlmk = "{LMK}"\n'
        '[log]\nformat = "json"\nlevel = "info"\n'
        "[issuer]\nreconnect_min = 5.0\nreconnect_max = 60.0\n"
        '[links.sim]\naddress = "127.0.0.1:1"\n'
        'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n'
    )
    return config


def summarise(lines: list[str], frames: int) -> None:
    events: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    tracebacks = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            events["(not json)"] += 1
            sizes["(not json)"] += len(line) + 1
            continue
        events[record.get("event", "?")] += 1
        sizes[record.get("event", "?")] += len(line) + 1
        tracebacks += "exception" in record
    total = sum(sizes.values())
    scale = 10_000 / frames
    print(f"bad frames sent:          {frames}")
    print(f"log lines while sending:  {len(lines)}  ({tracebacks} with a traceback)")
    print(f"log bytes while sending:  {total}")
    print(f"bytes per 10,000 frames:  {round(total * scale)}")
    print(f"lines per 10,000 frames:  {round(len(lines) * scale)}")
    for event, count in events.most_common():
        print(f"  {event:24} {count:7} lines {sizes[event]:10} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        config = write_config(tmp, port)
        log_path = tmp / "host.log"
        with open(log_path, "wb") as log_file:
            host = subprocess.Popen(
                [sys.executable, "-c", POSHOST, "serve", "--demo", "--config", str(config)],
                stdout=log_file,
                stderr=log_file,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                wait_port(port)
                time.sleep(1.0)
                start = log_path.stat().st_size
                began = time.monotonic()
                trio.run(attack, port, args.frames, args.concurrency)
                took = time.monotonic() - began
                time.sleep(SUMMARY_WAIT)  # the interval summary belongs to the run
                with open(log_path, "rb") as fh:
                    fh.seek(start)
                    text = fh.read().decode(errors="replace")
            finally:
                host.terminate()
                host.wait(timeout=20)
    lines = [line for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if '"event":"link_' not in line]  # the idle link's retries
    print(f"sent in {took:.1f} s")
    summarise(lines, args.frames)


if __name__ == "__main__":
    main()
