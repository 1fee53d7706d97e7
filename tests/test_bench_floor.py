"""The benchmark's floor server (benchmarks/floor_server.py) really relays and really journals:
`make bench` compares the host with it, so a floor that skipped its work would flatter nobody
but would make the comparison a lie."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codec.framing import prefix_length

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect(port: int, timeout: float = 20.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _read_frame(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
        chunk = sock.recv(4096)
        assert chunk, "the floor server closed the connection"
        data += chunk
    return data[2:]


@pytest.fixture
def servers(tmp_path):
    procs = []

    def start(*argv: str) -> int:
        port = _free_port()
        procs.append(subprocess.Popen([sys.executable, str(BENCH / argv[0]), str(port), *argv[1:]]))
        return port

    yield start
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("mode", ["relay", "journal", "journal-thread"])
def test_floor_server_answers_through_its_upstream_and_journals_two_writes(servers, tmp_path, mode):
    echo = servers("echo_server.py")
    _connect(echo).close()
    floor = servers("floor_server.py", str(echo), mode, str(tmp_path / "data"))
    with _connect(floor) as sock:
        for body in (b"\x02\x00first", b"\x02\x00second", b"\x02\x00third"):
            sock.sendall(prefix_length(body))
            assert _read_frame(sock) == body  # the upstream echo's answer, relayed back
    db = tmp_path / "data" / f"floor-{mode}.sqlite"
    if mode == "relay":
        assert not list(tmp_path.glob("data/*.sqlite"))
        return
    # the host's journal by default: durable in its write log when answered, in the table a
    # moment later
    deadline = time.monotonic() + 2.0
    while True:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT status, response_code FROM transactions").fetchall()
        if rows == [("approved", "00")] * 3 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert rows == [("approved", "00")] * 3  # the pending row, then its outcome, per frame
