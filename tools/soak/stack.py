"""The real programs, started the way an operator starts them: `poshost serve` with its own
config file and data dir, `poshost issuer-sim` with its own card file and state, both on
loopback, each a separate process the soak can SIGKILL and start again."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import attrs

from specs import demo_estate

LMK = "00112233445566778899AABBCCDDEEFF0011223344556677"  # TEST ONLY, a throw-away data dir
ZPK_TEST_KEY = "4CA2161637D0133E5E151AEA45DA2A12"  # the simulator's demo ZPK (TEST ONLY)
MID = "123456789012345"  # the demo shop
SOAK_PAN = "6222025555000005"  # a card added for the soak: no daily limit, a deep balance
LOW_PAN = "6222020000000002"  # demo card with 10.00: larger purchases get 51
PIN = "1234"
SLOW_ANSWER = Path(__file__).with_name("slow_answer.py")  # the simulator hook: debit, then answer
TERMINALS = ("12345678", "12345679", "12345680")  # demo terminals (003, 001, 004 key modes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def poshost(*args: str) -> list[str]:
    """The `poshost` console script next to this Python, as an operator runs it."""
    script = Path(sys.executable).with_name("poshost")
    if script.exists():
        return [str(script), *args]
    code = "import sys; from host.cli import main; sys.argv = ['poshost', *sys.argv[1:]]; main()"
    return [sys.executable, "-c", code, *args]


def rss_kb(pid: int) -> int:
    """Resident set size of a process from /proc (0 when it is gone)."""
    with contextlib.suppress(OSError):  # the process is gone
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the host's journal writer)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == str(pid):
            found.append(int(entry))
    return found


@attrs.frozen
class Ports:
    host: int
    sim: int
    backoffice: int


class Program:
    """One real program: started, SIGKILLed, started again, always with the same argv."""

    def __init__(self, name: str, argv: list[str], log: Path, port: int):
        self.name, self.argv, self.log_path, self.port = name, argv, log, port
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> bool:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        return wait_port(self.port)

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, then wait until its child processes are gone too: the host's journal
        writer commits what it had read and exits once its parent's socket closes; a new host
        must not start beside it."""
        if not self.alive():
            return
        kids = children(self.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(Path(f"/proc/{k}").exists() for k in kids):
            time.sleep(0.05)

    def stop(self) -> None:
        if not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def write_host_config(tmp: Path, ports: Ports, issuer_timeout: float) -> Path:
    config = tmp / "host.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{ports.host}"\n'
        f'[data]\ndir = "{tmp / "host"}"\n'
        f'[hsm]\nlmk = "{LMK}"\n'
        f"[issuer]\ntimeout = {issuer_timeout}\nsaf_interval = 0.5\n"
        "reconnect_min = 0.05\nreconnect_max = 0.5\n"
        f'[links.sim]\naddress = "127.0.0.1:{ports.sim}"\nzpk_clear_test_key = "{ZPK_TEST_KEY}"\n'
        f'[backoffice]\nlisten = "127.0.0.1:{ports.backoffice}"\n'
        '[log]\nformat = "json"\nlevel = "warning"\n'
    )
    return config


def journal_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'host' / 'poshost.sqlite'}"


def host_program(tmp: Path, ports: Ports, issuer_timeout: float) -> Program:
    config = write_host_config(tmp, ports, issuer_timeout)
    argv = poshost("serve", "--config", str(config), "--demo")
    return Program("host", argv, tmp / "host.log", ports.host)


def sim_program(tmp: Path, ports: Ports, latency: str) -> Program:
    """The simulator with the demo cards plus the soak card, added by its own CLI."""
    cards = tmp / "cards.toml"
    state = tmp / "sim.sqlite"
    demo_cards = Path(__file__).resolve().parents[2] / "specs" / "issuer_sim" / "cards.toml"
    shutil.copyfile(demo_cards, cards)
    subprocess.run(
        poshost("issuer-sim", "cards", "add", SOAK_PAN, "--expiry", "3012", "--pin", PIN,
                "--balance", str(10**13), "--file", str(cards), "--state", str(state)),
        check=True, capture_output=True,
    )  # fmt: skip
    argv = poshost("issuer-sim", "--listen", f"127.0.0.1:{ports.sim}", "--state", str(state),
                   "--cards", str(cards), "--latency", latency,
                   "--script", str(SLOW_ANSWER))  # fmt: skip
    return Program("issuer-sim", argv, tmp / "sim.log", ports.sim)


def issue_token(tmp: Path) -> str:
    """One real back-office token for the demo shop, as `poshost estate token issue` prints."""
    out = subprocess.run(
        poshost("estate", "--journal", journal_url(tmp), "token", "issue", MID, "--label", "soak"),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def demo_terminal(tid: str):
    """The demo terminal's device (its TEST TMK from specs/demo_estate.toml)."""
    from tools.terminal.device import Device

    for t in demo_estate()["terminals"]:
        if t["tid"] == tid:
            return Device(t["tid"], t["mid"], bytes.fromhex(t["tmk_clear_test_key"]), t["key_mode"])
    raise KeyError(tid)
