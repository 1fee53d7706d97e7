"""SIGKILL the host between journalling outcomes and delivering their webhooks: after the
restart every event is delivered, each event id exactly once. The host and the receiver are
real processes on their own ports; the issuer simulator runs in the test process."""

import json
import signal

import trio

from host.store import SyncStore
from tests.host.harness import demo_device, free_port, wait_port
from tests.host.test_crash_safety import start_host
from tests.host.webhook_kit import Receiver, cli, write_config
from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.server import Simulator
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient

MID = "123456789012345"


def test_sigkill_before_delivery_then_restart_delivers_each_event_once(tmp_path):
    data_dir, host_port, hook_port = tmp_path / "data", free_port(), free_port()
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("whsec_" + "c3" * 32)
    log = open(tmp_path / "host.log", "w")  # noqa: SIM115

    async def main():
        sim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0"))
        async with trio.open_nursery() as nursery:
            sim_port = await nursery.start(sim.serve)
            config = write_config(
                tmp_path / "host.toml", data_dir,
                server={"listen": f"127.0.0.1:{host_port}"},
                issuer={"timeout": 2.0, "saf_interval": 0.2, "reconnect_min": 0.05},
                links={},
                webhooks={"retry_min": 0.2, "retry_max": 0.4, "timeout": 1.0},
                log={"format": "json", "level": "warning"},
            )  # fmt: skip
            with config.open("a") as fh:
                fh.write(f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\n'
                         'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n')  # fmt: skip
            proc = start_host(config, log)
            await wait_port(host_port)
            url = f"http://127.0.0.1:{hook_port}/poshost"
            await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "set", MID, url,
                "--secret-file", str(secret_file),
            )  # fmt: skip
            await trio.sleep(0.5)  # the issuer link signs on
            device = demo_device("12345678")
            client = await TerminalClient.connect("127.0.0.1", host_port, device, timeout=5)
            await client.sign_on()
            rrns = []
            for amount in (101, 202, 303, 404, 505):
                req = device.financial_request("purchase", pan=RICH, amount=amount, pin=PIN)
                resp, _ = await client.exchange(req)
                assert resp[39] == "00"
                rrns.append(resp[37])
            proc.send_signal(signal.SIGKILL)  # outcomes journalled, no receiver yet
            proc.wait()
            await client.aclose()

            journal = f"sqlite:///{data_dir / 'poshost.sqlite'}"
            with SyncStore.open(journal) as store:
                before = store.list_webhook_events(mid=MID)
            receiver = Receiver(hook_port, secret_file)
            try:
                await wait_port(hook_port)
                proc = start_host(config, log)
                with trio.fail_after(20):
                    while len(receiver.events()) < len(before):
                        await trio.sleep(0.05)
                await trio.sleep(1.5)  # room for a (wrong) second delivery to show up
                lines = list(receiver.lines)
            finally:
                receiver.stop()
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
            with SyncStore.open(journal) as store:
                after = store.list_webhook_events(mid=MID)
            nursery.cancel_scope.cancel()
            return rrns, before, after, lines

    rrns, before, after, lines = trio.run(main)
    assert len(before) == 5 and all(e.status == "pending" for e in before)
    assert sorted(json.loads(e.payload)["data"]["transaction"]["rrn"] for e in before) == sorted(
        rrns
    )
    delivered = [line["event_id"] for line in lines if line.get("verified")]
    assert sorted(delivered) == sorted(e.event_id for e in before)  # all, once each
    assert not any(line.get("duplicate") for line in lines)
    assert all(e.status == "delivered" for e in after)
