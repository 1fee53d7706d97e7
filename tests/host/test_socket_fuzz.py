"""Random and mutated frames from many connections never stop the server, and a well-behaved
terminal on another connection keeps being served throughout. The host runs in a background
thread for the whole module; hypothesis drives the hostile connections."""

import itertools
import threading

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec.framing import prefix_length
from tests.host.harness import demo_device, host_settings, running_host
from tools.terminal.client import TerminalClient


@pytest.fixture(scope="module")
def host_port(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    ready = threading.Event()
    box: dict = {}

    async def main():
        box["token"] = trio.lowlevel.current_trio_token()
        # The good terminal signs on once per example: more than the default rate limit.
        overrides = {"server.read_timeout": 1.0, "security.session_burst": 1000}
        settings_ = host_settings(tmp, link_port=1, **overrides)
        async with running_host(settings_) as running:
            box["running"] = running
            ready.set()
            await running.shutdown.wait()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(20), "host did not start"
    yield box["running"].port
    trio.from_thread.run_sync(box["running"].shutdown.set, trio_token=box["token"])
    thread.join(20)


def valid_frame() -> bytes:
    device = demo_device()
    device.mak = bytes.fromhex("0123456789ABCDEF")
    req = device.financial_request("purchase", pan="6222020000000001", amount=100)
    return device.envelope(device.encode(req)).to_frame()


VALID = valid_frame()

garbage = st.binary(min_size=0, max_size=300)
oversize = st.integers(4097, 65535).map(lambda n: n.to_bytes(2, "big") + b"\x60" * 20)
mutated = st.lists(
    st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8
).map(lambda edits: _apply(VALID, edits))
truncated = st.integers(1, len(VALID) - 1).map(lambda n: VALID[:n])
reframed = st.binary(min_size=0, max_size=200).map(lambda b: prefix_length(b))
hostile = st.one_of(garbage, oversize, mutated, truncated, reframed)


def _apply(frame: bytes, edits) -> bytes:
    data = bytearray(frame)
    for index, value in edits:
        data[index] = value
    return bytes(data)


async def _attack(port: int, frames: list[bytes]) -> None:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return
    with trio.move_on_after(2):
        try:
            for frame in frames:
                await stream.send_all(frame)
            await stream.receive_some(4096)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await stream.aclose()


_STANS = itertools.count(1000, 100)  # every example's terminal numbers its messages afresh


async def _good_terminal(port: int) -> list[str]:
    device = demo_device()
    device.stan = next(_STANS)
    client = await TerminalClient.connect("127.0.0.1", port, device, timeout=5)
    try:
        await client.sign_on()
        codes = []
        for _ in range(3):
            resp, _ = await client.exchange(device.management_request("0820", "301"))
            codes.append(resp[39])
            resp, _ = await client.exchange(
                device.financial_request("purchase", pan="6222020000000001", amount=100)
            )
            codes.append(resp[39])  # no issuer is reachable: a clean 91
        return codes
    finally:
        await client.aclose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(connections=st.lists(st.lists(hostile, min_size=1, max_size=5), min_size=1, max_size=6))
def test_hostile_connections_never_stop_the_server(host_port, connections):
    async def main():
        good: list[str] = []
        async with trio.open_nursery() as nursery:
            for frames in connections:
                nursery.start_soon(_attack, host_port, frames)

            async def run_good():
                good.extend(await _good_terminal(host_port))

            nursery.start_soon(run_good)
        return good

    assert trio.run(main) == ["00", "91"] * 3
