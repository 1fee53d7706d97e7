"""`make bench`: the host's cost per purchase and its latency under fixed offered load.

Starts the issuer simulator and the host (real crypto: MAC verify + generate, PIN translation;
the real durable SQLite journal) on loopback, provisions load terminals, and drives purchases
with PIN through ``tools.load``:

  (a) host CPU-microseconds per purchase (the host process's own user+sys CPU over the run,
      plus its journal writer process's, split into its event-loop thread and the journal
      writer; the simulator's too)
  (b) throughput at full speed (closed loop)
  (c) p50/p99 latency at fixed offered rates (open loop, latency from the scheduled send)

then the same host pinned: the host and its journal writer on one core, the load generator
and the issuer simulator on the other (``taskset``), so that p99 at 2,000/s measures the host
rather than the machine's contention; the host with ``--workers 2`` (CPU per purchase of the
two workers and their writer); the host with ``journal.durability = "database"`` (a durable
SQLite commit per group instead of the write log); the host with ``hsm.kind = "network"``
against ``poshost hsm-sim`` on loopback (its CPU per purchase shown apart); next to baselines
measured in the same run and driven the same way: a bare Trio length-prefixed echo server (one
socket leg), and the floor (``floor_server.py``): a relay to an upstream echo server (the two
socket legs of every authorization), then the same relay with the host's two durable journal
writes (the I/O no purchase can avoid). Then a sampling profile of the host under load
(py-spy, while holding the GIL: where its Python CPU goes), by thread and function.

    python benchmarks/bench_host.py [--duration 8] [--terminals 20] [--log-level info]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from host.config import load_settings
from tools.load.engine import LoadConfig, parse_mix
from tools.load.provision import provision, specs
from tools.load.run import run_processes

LMK = "00112233445566778899AABBCCDDEEFF0011223344556677"  # TEST ONLY, benchmark data dir
HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
PINNED = "pinned host"  # host + writer on one core, load + simulator on the other (taskset)
WORKERS = "2 workers"  # serve --workers 2
DATABASE = "database durability"  # journal.durability = "database": a durable commit per group
NETHSM = "network hsm"  # the rows of the host run with hsm.kind = "network" (poshost hsm-sim)
HOST_CORE, LOAD_CORE = 1, 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def children_cpu(pid: int) -> float:
    """CPU seconds of the live child processes of ``pid`` (the host's journal writer process):
    the host's cost is its own CPU plus theirs."""
    total = 0.0
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if fields[1] == str(pid):  # its parent
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def _children(pid: int) -> list[int]:
    found = []
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            found.append(int(child))
    return found


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of the host, by role: the event loop (the main thread of the host,
    or of each of its workers), the journal writer (its thread, or its child process), and the
    rest (Trio's worker threads)."""
    roles: dict[str, float] = {"loop": 0.0, "writer": 0.0, "other": 0.0}
    for proc in [pid, *_children(pid)]:
        try:
            cmdline = Path(f"/proc/{proc}/cmdline").read_bytes()
            tids = os.listdir(f"/proc/{proc}/task")
        except OSError:
            continue
        writer_process = b"writer_process" in cmdline
        for tid in tids:
            try:
                stat = Path(f"/proc/{proc}/task/{tid}/stat").read_text()
                comm = Path(f"/proc/{proc}/task/{tid}/comm").read_text().strip()
            except OSError:  # the thread ended meanwhile
                continue
            fields = stat.rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            if writer_process or "writer" in comm:
                role = "writer"
            else:
                role = "loop" if tid == str(proc) else "other"
            roles[role] += cpu
    return roles


def pinning_possible() -> bool:
    return shutil.which("taskset") is not None and {HOST_CORE, LOAD_CORE} <= os.sched_getaffinity(0)


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def poshost(*args: str) -> list[str]:
    code = "import sys; from host.cli import main; sys.argv = ['poshost', *sys.argv[1:]]; main()"
    return [sys.executable, "-c", code, *args]


PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def start_sampling(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy on the host for `seconds`: samples of the thread holding the GIL (so, Python CPU,
    not waiting), per thread, without pausing the process. None when py-spy is missing."""
    if not Path(PY_SPY).exists():
        print("  (py-spy not installed: no profile)")
        return None
    argv = [PY_SPY, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
            "--rate", "500", "--gil", "--threads", "--nonblocking", "--format", "raw",
            "--output", str(out)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _frame(frame: str) -> str:
    """'func (host/flow/steps.py:123)' -> 'func (host/flow/steps.py)': a function, not a line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _thread_role(label: str) -> str:
    if "MainThread" in label:
        return "event loop"
    return "journal writer" if "writer" in label else "other threads"


def print_samples(raw: Path, top: int = 15) -> None:
    """Shares of the samples: per thread, per function (own), per project function (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        thread, *frames = stack.split(";")
        if not frames:
            continue
        total += n
        threads[_thread_role(thread)] += n
        names = [_frame(f) for f in frames]
        own[names[-1]] += n
        for name in set(names):
            if name.split(" (", 1)[-1].startswith(("host/", "codec/", "keys/")):
                inclusive[name] += n
    if not total:
        print("no samples")
        return
    print(f"{total} samples; by thread: "
          + ", ".join(f"{k} {v / total:.0%}" for k, v in threads.most_common()))  # fmt: skip
    print(f"\ntop {top} by own samples (the function itself, any code):")
    for name, n in own.most_common(top):
        print(f"  {n / total:6.1%}  {name}")
    print(f"\ntop {top} project functions by inclusive samples (with what they call):")
    skip = ("host/cli", "host/runtime", "host/edge/server.py")
    shown = [(k, v) for k, v in inclusive.most_common() if not k.split(" (")[-1].startswith(skip)]
    for name, n in shown[:top]:
        print(f"  {n / total:6.1%}  {name}")


class Proc:
    def __init__(self, argv, log: Path, env=None, cwd=None):
        self.log = open(log, "w")  # noqa: SIM115
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()


def drive(
    port: int,
    terminals,
    rate: float,
    duration: float,
    echo: bool,
    pid: int,
    sim_pid: int = 0,
    hsm_pid: int = 0,
) -> dict:
    config = LoadConfig(
        "127.0.0.1", port, tuple(terminals), duration=duration, rate=rate,
        mix=parse_mix("purchase_pin=100"), echo_server=echo,
    )  # fmt: skip
    cpu0, threads0 = cpu_seconds(pid) + children_cpu(pid), thread_cpu(pid)
    sim0 = cpu_seconds(sim_pid) if sim_pid else 0.0
    hsm0 = cpu_seconds(hsm_pid) if hsm_pid else 0.0
    report = run_processes(config, workers=1)
    cpu, threads = cpu_seconds(pid) + children_cpu(pid) - cpu0, thread_cpu(pid)
    n = max(report.completed, 1)
    s = report.summary()
    s["server_cpu_s"] = round(cpu, 3)
    s["server_cpu_us_per_msg"] = round(cpu / n * 1e6, 1)
    s["server_threads_us_per_msg"] = {
        role: round((threads[role] - threads0.get(role, 0.0)) / n * 1e6, 1) for role in threads
    }
    if sim_pid:
        s["simulator_cpu_us_per_msg"] = round((cpu_seconds(sim_pid) - sim0) / n * 1e6, 1)
    if hsm_pid:
        s["hsm_cpu_us_per_msg"] = round((cpu_seconds(hsm_pid) - hsm0) / n * 1e6, 1)
    s["stans"] = report.stans
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--terminals", type=int, default=20)
    ap.add_argument("--rates", default="1000,2000")
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--out", default="var/bench")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = load_previous(out / "bench.json")
    began = time.monotonic()
    minutes = planned_seconds(args.duration, rates) / 60
    print(
        f"make bench: about {minutes:.0f} minutes on an idle machine (--duration "
        f"{args.duration:g} s per phase); logs and data in {out / 'run'}",
        flush=True,
    )
    # Logs, journals and simulator state of this run only: the last run's are replaced, so
    # runs do not pile up (they were 133 MB in /tmp each).
    tmp = out / "run"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tmp = tmp.resolve()
    sim_port, host_port, echo_port, hsm_port = free_port(), free_port(), free_port(), free_port()
    cfg = tmp / "host.toml"
    cfg.write_text(
        f'[server]\nlisten = "127.0.0.1:{host_port}"\n[data]\ndir = "{tmp / "host"}"\n'
        f'[hsm]\nlmk = "{LMK}"\n[log]\nlevel = "{args.log_level}"\nformat = "json"\n'
        f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\n'
        f'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n'
    )
    settings = load_settings(str(cfg), environ={})
    provision(settings, args.terminals)
    terminals = specs(args.terminals)
    stans = {t.tid: 0 for t in terminals}

    def fresh_terminals():
        from tools.load.engine import TerminalSpec

        return [TerminalSpec(t.tid, t.mid, t.tmk, t.key_mode, stans[t.tid]) for t in terminals]

    results: dict[str, dict] = {}
    sim = Proc(
        poshost("issuer-sim", "--listen", f"127.0.0.1:{sim_port}", "--state",
                str(tmp / "sim.sqlite")),
        tmp / "sim.log",
    )  # fmt: skip
    try:
        wait_port(sim_port)

        def host_phase(
            label: str,
            phases=(),
            samples: Path | None = None,
            env=None,
            hsm: Proc | None = None,
            serve_args=(),
            pinned: bool = False,
        ):
            prefix = ["taskset", "-c", str(HOST_CORE)] if pinned else []
            host = Proc(prefix + poshost("serve", "--config", str(cfg), "--demo", *serve_args),
                        tmp / f"host-{label}.log", env={**os.environ, **(env or {})})  # fmt: skip
            mine = os.sched_getaffinity(0)
            try:
                wait_port(host_port)
                time.sleep(1.0)  # the issuer link comes up
                if pinned:  # the load generator (spawned from here) and the simulator
                    os.sched_setaffinity(0, {LOAD_CORE})
                    os.sched_setaffinity(sim.p.pid, {LOAD_CORE})
                for name, rate, duration in phases:
                    print(f"  {label}: {name} ...", flush=True)
                    spy = start_sampling(host.p.pid, duration, samples) if samples else None
                    r = drive(host_port, fresh_terminals(), rate, duration, False, host.p.pid,
                              sim.p.pid, hsm.p.pid if hsm else 0)  # fmt: skip
                    if spy is not None:
                        _, err = spy.communicate(timeout=60)
                        if spy.returncode:
                            print(f"  py-spy failed: {err.strip()[-300:]}")
                    stans.update(r.pop("stans"))
                    results[name] = r
            finally:
                if pinned:
                    os.sched_setaffinity(0, mine)
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(sim.p.pid, mine)
                host.stop()

        print("host (purchases with PIN, MAC, durable journal):", flush=True)
        phases = [("host warm-up", 300, 2.0), ("host full speed", 0, args.duration)]
        phases += [(f"host {r:g}/s", r, args.duration) for r in rates]
        host_phase("run", phases=phases)
        if pinning_possible():
            print(f"pinned: the host and its journal writer on core {HOST_CORE}, the load"
                  f" generator and the issuer simulator on core {LOAD_CORE} (taskset):",
                  flush=True)  # fmt: skip
            phases = [("host warm-up", 300, 2.0), (f"{PINNED} full speed", 0, args.duration)]
            phases += [(f"{PINNED} {r:g}/s", r, args.duration) for r in rates]
            host_phase("pinned", phases=phases, pinned=True)
        else:
            print("  (fewer than two cores to pin to: no pinned run)", flush=True)
        # serve --workers 2: two host processes on one port, one journal writer.
        phases = [("host warm-up", 300, 2.0), (f"{WORKERS} full speed", 0, args.duration)]
        host_phase("workers", phases=phases, serve_args=("--workers", "2"))
        # The journal's durability from a durable SQLite commit per group, as before the write
        # log (journal.durability = "database", what a PostgreSQL journal does).
        database = {"POSHOST_JOURNAL_DURABILITY": "database"}
        phases = [("host warm-up", 300, 2.0), (f"{DATABASE} full speed", 0, args.duration)]
        phases += [(f"{DATABASE} {r:g}/s", r, args.duration) for r in rates[:1]]
        host_phase("database", phases=phases, env=database)
        # The HSM as a network peer: `poshost hsm-sim` on loopback holding the LMK the load
        # terminals were provisioned under (the host reads none); every MAC and PIN operation is
        # a payShield-style command on a pooled, pipelined connection. --test-keys: it wraps the
        # demo estate's and the link's published test keys when the host starts.
        hsm = Proc(poshost("hsm-sim", "--listen", f"127.0.0.1:{hsm_port}", "--lmk", LMK,
                           "--test-keys"), tmp / "hsm-sim.log")  # fmt: skip
        try:
            wait_port(hsm_port)
            address = f"127.0.0.1:{hsm_port}"
            network = {"POSHOST_HSM_KIND": "network", "POSHOST_HSM_ADDRESS": address}
            phases = [("host warm-up", 300, 2.0), (f"{NETHSM} full speed", 0, args.duration)]
            phases += [(f"{NETHSM} {r:g}/s", r, args.duration) for r in rates[:1]]
            host_phase("nethsm", phases=phases, env=network, hsm=hsm)
        finally:
            hsm.stop()

        echo = Proc([sys.executable, str(HERE / "echo_server.py"), str(echo_port)],
                    tmp / "echo.log")  # fmt: skip
        try:
            wait_port(echo_port)

            def baseline(label: str, server: Proc, port: int, upstream: Proc | None = None):
                wait_port(port)
                for rate in [0, *rates]:
                    name = f"{label} {'full speed' if rate == 0 else f'{rate:g}/s'}"
                    print(f"  {name} ...", flush=True)
                    r = drive(port, fresh_terminals(), rate, args.duration, True, server.p.pid,
                              upstream.p.pid if upstream else 0)  # fmt: skip
                    r.pop("stans")
                    results[name] = r

            print("echo baseline:", flush=True)
            baseline("echo", echo, echo_port)
            # The floor: the same echo server stands in for the issuer behind a bare relay,
            # then behind a relay that also makes the host's two durable journal writes.
            print("floor (two socket legs; then with the two journal writes):", flush=True)
            for mode in ("relay", "journal"):
                port = free_port()
                argv = [sys.executable, str(HERE / "floor_server.py"), str(port), str(echo_port),
                        mode, str(tmp / "floor")]  # fmt: skip
                floor = Proc(argv, tmp / f"floor-{mode}.log")
                try:
                    baseline(mode, floor, port, upstream=echo)
                finally:
                    floor.stop()
        finally:
            echo.stop()

        print("profile (py-spy sampling of the host at full speed):", flush=True)
        samples = out / "host-samples.txt"
        samples.unlink(missing_ok=True)
        host_phase("profile", phases=[("profiled", 0, 8.0)], samples=samples)
    finally:
        sim.stop()

    print_table(results, rates)
    if samples.exists():
        print("\nhost profile under load (py-spy samples of the thread holding the GIL):")
        print_samples(samples)
    lines = compare(previous, results)
    if lines:
        print("\ncompared with the previous run (" + previous.get("_when", "date unknown") + "):")
        for line in lines:
            print("  " + line)
    results["_when"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    (out / "bench.json").write_text(json.dumps(results, indent=2))
    print(f"\nraw results: {out / 'bench.json'}; samples: {samples}; logs in {tmp}")
    print(f"took {(time.monotonic() - began) / 60:.1f} minutes")


def planned_seconds(duration: float, rates: list[float]) -> float:
    """The run's length told up front: every phase's load time plus the start-ups measured on
    the 2-core development machine (a process start, the link coming up, sign-ons)."""
    n = len(rates)
    load = 2 * (2 + duration + n * duration)  # the host, unpinned and pinned
    load += (2 + duration) + (2 + 2 * duration)  # two workers; database durability
    load += 2 + 2 * duration  # the host again with the network HSM
    load += 3 * (1 + n) * duration + 8.0  # echo and the two floors; the profile
    start_ups = 6 * 6.0 + 6 * 2.0 + (2 + 3 * (1 + n)) * 1.5
    return load + start_ups


def load_previous(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


COMPARED = (
    "host full speed",
    "host 1000/s",
    "host 2000/s",
    f"{PINNED} full speed",
    f"{PINNED} 2000/s",
    f"{WORKERS} full speed",
    "echo full speed",
)


def compare(previous: dict, current: dict) -> list[str]:
    """One line per headline row present in both runs: throughput, p99, CPU per message."""

    def change(old: float, new: float) -> str:
        return f"{(new - old) / old:+.0%}" if old else "n/a"

    lines = []
    for name in COMPARED:
        old, new = previous.get(name), current.get(name)
        if not isinstance(old, dict) or not isinstance(new, dict):
            continue
        lines.append(
            f"{name:18} {new['throughput_per_s']:>8,.0f}/s "
            f"({change(old['throughput_per_s'], new['throughput_per_s'])}), "
            f"p99 {new['latency_ms']['p99']:.2f} ms "
            f"({change(old['latency_ms']['p99'], new['latency_ms']['p99'])}), "
            f"CPU {new['server_cpu_us_per_msg']:.0f} us "
            f"({change(old['server_cpu_us_per_msg'], new['server_cpu_us_per_msg'])})"
        )
    return lines


def print_table(results: dict[str, dict], rates) -> None:
    def row(name: str) -> str:
        r = results.get(name)
        if r is None:
            return f"{name:24} (not run)"
        lat = r["latency_ms"]
        split = r.get("server_threads_us_per_msg", {})
        threads = f"{split.get('loop', 0):.0f}/{split.get('writer', 0):.0f}" if split else "-"
        sim = r.get("simulator_cpu_us_per_msg")
        return (
            f"{name:24} {r['throughput_per_s']:>9,.0f} {lat['p50']:>8.2f} {lat['p99']:>8.2f} "
            f"{r['server_cpu_us_per_msg']:>9.1f} {threads:>11} "
            f"{sim if sim is not None else '-':>8} {r['generator_cpu_s']:>7.2f} "
            f"{sum(r['errors'].values()):>6} {json.dumps(r['response_codes'])}"
        )

    print()
    print(f"{'run':24} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU-us':>9} {'loop/writer':>11} "
          f"{'sim us':>8} {'gen s':>7} {'errors':>6} codes")  # fmt: skip
    print(
        "(CPU-us: the server's CPU per message, its child processes included; loop/writer: of"
        " which its event-loop thread and its journal writer (process or thread); sim us: the"
        " issuer simulator's CPU per purchase)"
    )
    for name in ["host full speed", *(f"host {r:g}/s" for r in rates)]:
        print(row(name))
    for name in [f"{PINNED} full speed", *(f"{PINNED} {r:g}/s" for r in rates)]:
        print(row(name))
    print(row(f"{WORKERS} full speed"))
    for name in [f"{DATABASE} full speed", *(f"{DATABASE} {r:g}/s" for r in rates[:1])]:
        print(row(name))
    for name in [f"{NETHSM} full speed", *(f"{NETHSM} {r:g}/s" for r in rates[:1])]:
        print(row(name))
    for label in ("echo", "relay", "journal"):
        for name in [f"{label} full speed", *(f"{label} {r:g}/s" for r in rates)]:
            print(row(name))
    host, echo = results.get("host full speed"), results.get("echo full speed")
    if host and echo:
        ratio = host["server_cpu_us_per_msg"] / max(echo["server_cpu_us_per_msg"], 0.1)
        print(
            f"\nhost CPU per purchase {host['server_cpu_us_per_msg']:.0f} us = {ratio:.1f}x the "
            f"echo server's {echo['server_cpu_us_per_msg']:.0f} us per message "
            f"(target: <= 200 us; p99 at 2,000/s target < 20 ms)"
        )
    net = results.get(f"{NETHSM} full speed")
    if host and net:
        print(
            f"with the network HSM: host {net['server_cpu_us_per_msg']:.0f} us per purchase "
            f"(in-process HSM: {host['server_cpu_us_per_msg']:.0f} us), plus hsm-sim's "
            f"{net.get('hsm_cpu_us_per_msg', 0):.0f} us in its own process"
        )
    floors = [(name, results.get(f"{name} full speed")) for name in ("relay", "journal")]
    shown = [f"{name} {r['server_cpu_us_per_msg']:.0f} us" for name, r in floors if r]
    if shown and host:
        print(
            f"next to the host's {host['server_cpu_us_per_msg']:.0f} us, the floor at full speed"
            " (a bare relay plus the two durable journal writes, no codec, crypto or checks): "
            + ", ".join(shown)
        )
    pinned = results.get(f"{PINNED} {max(rates):g}/s")
    if pinned:
        print(
            f"pinned (host + writer on one core): p99 {pinned['latency_ms']['p99']:.1f} ms at"
            f" {max(rates):g}/s offered, {pinned['throughput_per_s']:,.0f}/s answered, "
            f"{pinned['server_cpu_us_per_msg']:.0f} us per purchase"
        )
    one, two = host, results.get(f"{WORKERS} full speed")
    if one and two:
        print(
            f"workers: 1 worker {one['server_cpu_us_per_msg']:.0f} us per purchase at"
            f" {one['throughput_per_s']:,.0f}/s; 2 workers {two['server_cpu_us_per_msg']:.0f} us"
            f" at {two['throughput_per_s']:,.0f}/s (their writer included)"
        )


if __name__ == "__main__":
    main()
