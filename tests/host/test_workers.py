"""`poshost serve --workers 2` as a real program: two host processes on one port and one journal
writer. A terminal that signs on through one connection and then connects again for every
request lands on either worker; its keys, its repeats and its reversals are right wherever it
lands, and a second sign-on (new keys) is honoured by the worker that did not handle it. The
issuer simulator runs in the test process on its own socket; the journal is the real SQLite
file with its write log."""

import os
import signal
import subprocess
import sys

import trio

from host.store import SyncStore
from tests.host.harness import demo_device, free_port, wait_port
from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.server import Simulator
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient


def write_config(path, data_dir, host_port, sim_port):
    path.write_text(
        f'[server]\nlisten = "127.0.0.1:{host_port}"\nworkers = 2\n'
        f'[data]\ndir = "{data_dir}"\n'
        "[issuer]\ntimeout = 2.0\nsaf_interval = 0.2\nreconnect_min = 0.05\n"
        f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\n'
        'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n'
        '[log]\nformat = "json"\nlevel = "info"\n'
    )


def children(pid: int) -> list[int]:
    found = []
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[1] == str(pid):
                    found.append(int(child))
        except OSError:
            continue
    return found


async def one_request(port, device, request):
    client = await TerminalClient.connect("127.0.0.1", port, device, timeout=10)
    try:
        return (await client.exchange(request))[0]
    finally:
        await client.aclose()


def test_two_workers_share_the_port_the_sessions_and_the_journal(tmp_path):
    config = tmp_path / "host.toml"
    data_dir = tmp_path / "data"
    host_port = free_port()
    log_path = tmp_path / "host.log"
    log = open(log_path, "w")  # noqa: SIM115

    async def main():
        sim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0"))
        async with trio.open_nursery() as nursery:
            sim_port = await nursery.start(sim.serve)
            write_config(config, data_dir, host_port, sim_port)
            proc = subprocess.Popen(
                [sys.executable, "-c", "from host.cli import main; main()", "serve", "--demo",
                 "--config", str(config)],
                stdout=log, stderr=log,
            )  # fmt: skip
            try:
                await wait_port(host_port)
                await trio.sleep(0.5)  # the issuer links sign on
                assert len(children(proc.pid)) == 3, "two workers and one journal writer"
                device = demo_device()
                client = await TerminalClient.connect("127.0.0.1", host_port, device, timeout=10)
                await client.sign_on()
                await client.aclose()
                codes, rrns = [], []
                for round_ in range(2):
                    for _ in range(12):  # a new connection each time: either worker
                        req = device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
                        resp = await one_request(host_port, device, req)
                        codes.append(resp[39])
                        rrns.append(resp.get(37))
                    if round_ == 0:  # new keys through one worker; the other must follow
                        client = await TerminalClient.connect(
                            "127.0.0.1", host_port, device, timeout=10
                        )
                        await client.sign_on()
                        await client.aclose()
                # a repeat and a reversal, each on a connection of its own
                repeat = await one_request(host_port, device, req)
                reversal = await one_request(host_port, device, device.reversal_of(req))
            finally:
                proc.send_signal(signal.SIGTERM)
                await trio.to_thread.run_sync(proc.wait, 30)
                nursery.cancel_scope.cancel()
            return codes, rrns, repeat, reversal, proc.returncode

    codes, rrns, repeat, reversal, returncode = trio.run(main)
    log.close()
    text = log_path.read_text()
    assert codes == ["00"] * 24, codes
    assert len(set(rrns)) == 24  # one journal, one id sequence
    assert repeat[39] == "94"  # the duplicate key is one for both workers
    assert reversal[39] == "00"
    assert returncode == 0
    assert '"worker":0' in text and '"worker":1' in text
    assert text.count('"event":"txn"') >= 27
    with SyncStore.open(f"sqlite:///{data_dir / 'poshost.sqlite'}") as store:
        rows = store.list_transactions(limit=1000)
    assert sum(r.status == "approved" for r in rows) == 23
    assert sum(r.status == "reversed" for r in rows) == 1
    assert not [r for r in rows if r.status == "pending"]
