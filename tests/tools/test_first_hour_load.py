"""Issue 16 blocker 3: `poshost load` against a host that is down says so in one line and exits
4 instead of printing an ExceptionGroup and waiting forever for a dead worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.host.harness import free_port
from tools.load.cli import demo_terminals
from tools.load.engine import LoadConfig, LoadError
from tools.load.run import run_processes

POSHOST = str(Path(sys.executable).parent / "poshost")


def test_load_against_a_host_that_is_down_is_one_line_and_exit_4(tmp_path):
    port = free_port()
    proc = subprocess.run(
        [POSHOST, "load", "--host", f"127.0.0.1:{port}", "--quiet", "--duration", "1",
         "--state", str(tmp_path / "stans.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the host at 127.0.0.1:{port}" in lines[0]


def test_a_worker_that_cannot_connect_is_reported_not_waited_for():
    """Past the probe (the host died in between): the worker's failure reaches the parent."""
    config = LoadConfig("127.0.0.1", free_port(), tuple(demo_terminals()[:2]), duration=1.0)
    with pytest.raises(LoadError, match=r"cannot connect and sign on at 127\.0\.0\.1"):
        run_processes(config, workers=2)
