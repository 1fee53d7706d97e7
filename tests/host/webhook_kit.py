"""Helpers for the webhook tests: the real `poshost webhook-receiver` as a process on its own
port, and `poshost estate merchant webhook ...` run as the operator would run it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

POSHOST = [sys.executable, "-c", "from host.cli import main; main()"]


class Receiver:
    """`poshost webhook-receiver` in a child process; ``lines`` fills as it prints events."""

    def __init__(self, port: int, secret_file: Path, *extra: str):
        self.port = port
        self.lines: list[dict] = []
        self.proc = subprocess.Popen(
            [*POSHOST, "webhook-receiver", "--port", str(port), "--secret-file",
             str(secret_file), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def events(self) -> list[dict]:
        return [line for line in self.lines if line.get("verified") and "type" in line]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


def write_config(path: Path, data_dir: Path, **sections: dict) -> Path:
    """A host config whose data dir (journal, webhook key) the CLI and the host share."""
    text = f'[data]\ndir = "{data_dir}"\n'
    for name, values in sections.items():
        text += f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    path.write_text(text)
    return path


def cli(config: Path, *args: str) -> str:
    """Run a poshost command as the operator types it, in its own process (an in-process
    runner would capture the log lines of a host running in this process too); its stdout."""
    result = subprocess.run(
        [*POSHOST, "--config", str(config), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Blocking poll (for threads and processes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(interval)
