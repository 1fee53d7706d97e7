"""Kill the host with SIGKILL while purchases are in flight, restart it, and check that every
request the issuer approved is either approved in the journal or reversed at the issuer, and
that nothing is approved twice. The host runs as a real process; the issuer simulator runs
in the test process on its own socket; the journal is the real SQLite file."""

import os
import random
import signal
import stat
import subprocess
import sys

import trio

from host.store import SyncStore
from tests.host.harness import demo_device, free_port, wait_port
from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.server import Simulator
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient

RICH_BALANCE = 10_000_000


def write_config(path, data_dir, host_port, sim_port):
    path.write_text(
        f'[server]\nlisten = "127.0.0.1:{host_port}"\n'
        f'[data]\ndir = "{data_dir}"\n'
        "[issuer]\ntimeout = 2.0\nsaf_interval = 0.2\nreconnect_min = 0.05\n"
        f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\n'
        'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n'
        '[log]\nformat = "json"\nlevel = "warning"\n'
    )


def start_host(config, log):
    return subprocess.Popen(
        [sys.executable, "-c", "from host.cli import main; main()", "serve", "--demo",
         "--config", str(config)],
        stdout=log, stderr=log,
    )  # fmt: skip


async def shop(port: int, tid: str, seen: list, stop: trio.Event) -> None:
    """One terminal buying as fast as the host answers, until the connection dies."""
    device = demo_device(tid)
    rng = random.Random(tid)
    try:
        client = await TerminalClient.connect("127.0.0.1", port, device, timeout=5)
        await client.sign_on()
        while not stop.is_set():
            req = device.financial_request(
                "purchase", pan=RICH, amount=rng.randint(1, 999), pin=PIN
            )
            resp, _ = await client.exchange(req)
            seen.append((tid, str(resp.get(37, "")), resp[39]))
    except (OSError, ConnectionError, trio.BrokenResourceError, trio.TooSlowError):
        return


def writer_children(host_pid: int) -> list[str]:
    """The journal writer processes the host started."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmd:
                parent = stat.read().rsplit(")", 1)[1].split()[1]
                cmdline = cmd.read()
        except OSError:
            continue
        if parent == str(host_pid) and b"writer_process" in cmdline:
            found.append(pid)
    return found


def test_sigkill_under_load_then_restart_loses_nothing_and_doubles_nothing(tmp_path):
    config_path = tmp_path / "host.toml"
    data_dir = tmp_path / "data"
    host_port = free_port()
    log = open(tmp_path / "host.log", "w")  # noqa: SIM115

    async def main():
        sim = Simulator(
            SimConfig.demo(
                state=tmp_path / "sim.sqlite",
                listen="127.0.0.1:0",
                failure={"latency": "uniform:5-60"},
            )
        )
        async with trio.open_nursery() as nursery:
            sim_port = await nursery.start(sim.serve)
            write_config(config_path, data_dir, host_port, sim_port)

            proc = start_host(config_path, log)
            await wait_port(host_port)
            await trio.sleep(0.5)  # the issuer link signs on
            seen: list = []
            stop = trio.Event()
            async with trio.open_nursery() as shoppers:
                for tid in ("12345678", "12345679", "12345680"):
                    shoppers.start_soon(shop, host_port, tid, seen, stop)
                await trio.sleep(1.5)
                writers = writer_children(proc.pid)
                proc.send_signal(signal.SIGKILL)  # mid-flight: no goodbye, no flush
                proc.wait()
                stop.set()
            assert writers, "the host runs its journal writer in a child process"
            with trio.fail_after(10):  # which commits what it had read, then exits by itself
                while any(os.path.exists(f"/proc/{pid}") for pid in writers):
                    await trio.sleep(0.05)
            assert len(seen) > 5, "the load never got going"

            proc = start_host(config_path, log)  # recovery queues reversals for pending rows
            await wait_port(host_port)

            async def issuer_view():
                txns = await sim.db(sim.ledger.transactions, RICH)
                return {
                    (t.tid, t.rrn): t.amount
                    for t in txns
                    if t.kind == "purchase" and t.code == "00" and not t.reversed
                }

            journal_url = f"sqlite:///{data_dir / 'poshost.sqlite'}"

            def journal_view():
                with SyncStore.open(journal_url) as store:
                    rows = store.list_transactions(limit=100_000)
                return rows

            with trio.fail_after(20):
                while True:
                    rows = await trio.to_thread.run_sync(journal_view)
                    with SyncStore.open(journal_url) as store:
                        due = store.saf_due(now=2**62)
                    if not due and all(r.status != "pending" for r in rows):
                        break
                    await trio.sleep(0.2)
            await trio.sleep(0.3)
            issuer = await issuer_view()
            balance = await sim.db(sim.ledger.balance, RICH)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            nursery.cancel_scope.cancel()

        host_approved = {(r.tid, r.rrn): r.amount for r in rows if r.status == "approved"}
        assert host_approved == issuer, "issuer and journal disagree on what stands approved"
        assert balance == RICH_BALANCE - sum(issuer.values()), "a purchase was applied twice"
        answered = {(tid, rrn) for tid, rrn, code in seen if code == "00"}
        assert answered <= set(host_approved), "an approval the terminal got was undone"
        return len(seen), len(rows), sum(r.status == "reversed" for r in rows)

    answered, journalled, reversed_ = trio.run(main)
    # what `poshost serve` created is the owner's alone: the folder, journal, WAL, LMK
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    made = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data_dir.iterdir()}
    assert {"poshost.sqlite", "lmk.hex"} <= set(made)
    assert all(mode & 0o077 == 0 for mode in made.values()), made
    print(f"answered={answered} journalled={journalled} reversed_on_recovery={reversed_}")
