"""Graceful shutdown finishes work in flight; connection and idle limits are enforced."""

import trio

from tests.host.harness import demo_device, host_settings, running_host, sim_and_host, terminal
from tools.issuer_sim.testing import PIN, RICH
from tools.terminal.client import TerminalClient


def test_shutdown_finishes_the_purchase_in_flight_and_journals_it(tmp_path):
    async def main():
        slow = {"failure": {"latency": "fixed:400"}}
        async with sim_and_host(tmp_path, sim_overrides=slow) as (_sim, running):
            device = demo_device()
            async with terminal(running, device) as client:
                req = device.financial_request("purchase", pan=RICH, amount=900, pin=PIN)
                async with trio.open_nursery() as nursery:
                    result = {}

                    async def buy():
                        result["resp"], _ = await client.exchange(req)

                    nursery.start_soon(buy)
                    with trio.fail_after(5):  # the request is being processed now
                        while not running.server.in_flight:
                            await trio.sleep(0.01)
                    running.shutdown.set()
                assert result["resp"][39] == "00"
                rows = await running.host.store.list_transactions()
                assert [r.status for r in rows] == ["approved"]
                # New connections are refused once shutdown has begun.
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", running.port)
                    data = await stream.receive_some(10)
                    assert data == b""
                except OSError:
                    pass

    trio.run(main)


def test_connection_limit_and_idle_timeout(tmp_path):
    settings = host_settings(
        tmp_path, link_port=1, **{"server.max_connections": 2, "server.idle_timeout": 0.3}
    )

    async def main():
        async with running_host(settings) as running:
            first = await trio.open_tcp_stream("127.0.0.1", running.port)
            second = await trio.open_tcp_stream("127.0.0.1", running.port)
            with trio.fail_after(5):  # both are accepted before the third knocks
                while running.server.active < 2:
                    await trio.sleep(0.01)
            third = await trio.open_tcp_stream("127.0.0.1", running.port)
            with trio.fail_after(2):
                assert await third.receive_some(10) == b""  # refused: over the limit
            with trio.fail_after(2):
                assert await first.receive_some(10) == b""  # closed: idle too long
                assert await second.receive_some(10) == b""
            # Capacity is back: a terminal can sign on.
            client = await TerminalClient.connect("127.0.0.1", running.port, demo_device())
            await client.sign_on()
            await client.aclose()

    trio.run(main)
