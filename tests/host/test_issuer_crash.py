"""The issuer dies (SIGKILL) with requests in flight, twice, while terminals keep buying.

Written from the money rule, not from the host's code: once a request may have reached the
issuer, the host may not answer anything but a matched answer or 98, and every 98 of a debit
ends in a reversal at the issuer. So after the store-and-forward queue drains, the journal's
approved purchases and the issuer's standing debits (its own ledger file, read as the issuer
keeps it) are the same set, with the same amounts, on both journal backends. The simulator is
a real process on its own socket; the host is real (in this process) with a real journal.
"""

import random
import signal
import sqlite3
import subprocess
import sys

import trio

from host.store import SyncStore
from tests.host.harness import demo_device, free_port, host_settings, running_host, wait_port
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient

TERMINALS = ("12345678", "12345679", "12345680")


def start_sim(port: int, state, log):
    return subprocess.Popen(
        [sys.executable, "-c", "from host.cli import main; main()", "issuer-sim",
         "--listen", f"127.0.0.1:{port}", "--state", str(state), "--latency", "uniform:40-160"],
        stdout=log, stderr=log,
    )  # fmt: skip


async def buy_until(port: int, tid: str, codes: list, stop: trio.Event) -> None:
    """One terminal buying back to back; a 98 is what a real terminal reverses too, but here
    the host must do it alone, so the terminal just goes on."""
    device = demo_device(tid)
    rng = random.Random(tid)
    client = await TerminalClient.connect("127.0.0.1", port, device, timeout=15)
    try:
        await client.sign_on()
        while not stop.is_set():
            req = device.financial_request("purchase", pan=RICH, amount=rng.randint(1, 999),
                                           pin=PIN)  # fmt: skip
            resp, _ = await client.exchange(req)
            codes.append(resp[39])
    finally:
        await client.aclose()


def issuer_standing_debits(state) -> dict[tuple[str, str], int]:
    with sqlite3.connect(state) as db:
        rows = db.execute(
            "SELECT tid, rrn, amount FROM auths WHERE kind = 'purchase' AND code = '00'"
            " AND reversed_by IS NULL"
        ).fetchall()
    return {(tid, rrn): amount for tid, rrn, amount in rows}


def test_issuer_sigkill_in_flight_ends_in_reversals_and_agreement(tmp_path, journal_url):
    sim_port = free_port()
    state = tmp_path / "sim.sqlite"
    log = open(tmp_path / "sim.log", "w")  # noqa: SIM115
    sims = [start_sim(sim_port, state, log)]
    settings = host_settings(tmp_path, sim_port, journal_url, **{"issuer.timeout": 5.0})

    async def main():
        await wait_port(sim_port)
        async with running_host(settings) as running:
            host = running.host
            codes: list[str] = []
            stop = trio.Event()
            async with trio.open_nursery() as shoppers:
                for tid in TERMINALS:
                    shoppers.start_soon(buy_until, running.port, tid, codes, stop)
                for _ in range(2):
                    await trio.sleep(1.2)
                    sims[-1].send_signal(signal.SIGKILL)  # requests in flight: no goodbye
                    sims[-1].wait()
                    await trio.sleep(0.3)
                    sims.append(start_sim(sim_port, state, log))
                    await wait_port(sim_port)
                await trio.sleep(1.0)
                stop.set()
            with trio.fail_after(30):  # the reversals reach the restarted issuer
                while True:
                    due = await host.store.saf_due(limit=1, now=2**62)
                    pending = await host.store.list_transactions(status="pending", limit=1)
                    if not due and not pending:
                        break
                    await trio.sleep(0.1)
        return codes

    try:
        codes = trio.run(main)
    finally:
        for proc in sims:
            proc.kill()
            proc.wait()
    with SyncStore.open(journal_url) as store:
        rows = store.list_transactions(limit=100_000)
    approved = {(r.tid, r.rrn): r.amount for r in rows if r.status == "approved"}
    unknown = [r for r in rows if r.response_code == "98"]
    assert codes.count("00") > 10, "the purchases never got going"
    assert approved == issuer_standing_debits(state), "journal and issuer disagree"
    assert unknown, "no request was in flight at a kill: the test proved nothing"
    assert all(r.status == "reversed" for r in unknown), "a 98 was left standing"
    print(f"answers={len(codes)} approved={len(approved)} unknown_reversed={len(unknown)}")


def test_a_host_stopping_during_the_wait_queues_the_reversal(tmp_path):
    """SIGTERM-style stop while a purchase waits for a slow issuer: the grace period ends, the
    wait is cancelled, and the reversal is durable in the queue for the next start."""
    from tests.host.harness import sim_and_host, terminal

    async def main():
        async with sim_and_host(
            tmp_path, sim_overrides={"failure": {"latency": "fixed:4000"}},
            **{"server.shutdown_grace": 0.3},
        ) as (_sim, running):  # fmt: skip
            device = demo_device()
            async with terminal(running, device) as client:
                req = device.financial_request("purchase", pan=RICH, amount=321, pin=PIN)
                payload = device.encode(req)
                await client.send_raw(device.envelope(payload).to_frame())
                with trio.fail_after(5):
                    while not await running.host.store.list_transactions(status="pending"):
                        await trio.sleep(0.02)
                await trio.sleep(0.2)  # the request is on the wire to the issuer
                running.shutdown.set()
                assert await client.receive_body() is None  # no answer: the host stopped

    trio.run(main)
    with SyncStore.open(f"sqlite:///{tmp_path / 'host' / 'poshost.sqlite'}") as store:
        (row,) = store.list_transactions(limit=10)
        due = store.saf_due(now=2**62)
    assert (row.status, row.response_code) == ("reversed", "98")
    assert [item.transaction_id for item in due] == [row.id]
