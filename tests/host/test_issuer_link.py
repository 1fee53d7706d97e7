"""The issuer link over a real loopback socket, against a peer that answers out of order."""

import trio

from codec import issuer as issuer_codec
from codec.framing import LengthPrefixedDecoder, prefix_length
from codec.message import Message
from host.issuer.link import IssuerLink, LinkDown, LinkLost, LinkTimeout, OutcomeUnknown, match_key
from tests.host.harness import one_by_one_issuer


async def scripted_issuer(listener_port_box, behaviour, task_status=trio.TASK_STATUS_IGNORED):
    """Answers 0800 at once; other requests are handed to `behaviour(msg) -> (delay, resp)`."""

    async def handle(stream):
        decoder = LengthPrefixedDecoder(8192)
        lock = trio.Lock()
        async with trio.open_nursery() as nursery:
            while True:
                data = await stream.receive_some(4096)
                if not data:
                    return
                for body in decoder.feed(data):
                    msg = issuer_codec.decode(body)
                    if msg.mti == "0800":
                        resp = msg.response("00", echo=(7, 11, 70))
                        async with lock:
                            await stream.send_all(prefix_length(issuer_codec.encode(resp)))
                        continue
                    delay, resp = behaviour(msg)

                    async def answer(delay=delay, resp=resp):
                        await trio.sleep(delay)
                        if resp is not None:
                            async with lock:
                                await stream.send_all(prefix_length(issuer_codec.encode(resp)))

                    nursery.start_soon(answer)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener_port_box.append(listeners[0].socket.getsockname()[1])
    task_status.started()
    await trio.serve_listeners(handle, listeners)


def purchase(stan, tid, amount="000000001000"):
    return Message(
        "0200",
        {2: "6222020000000001", 3: "000000", 4: amount, 11: stan, 37: f"0000{stan}00", 41: tid},
    )


def test_match_key_pairs_request_and_response_and_ignores_repeat_digit():
    req = purchase("000001", "T0000001")
    assert match_key(req) == match_key(req.response("00"))
    assert match_key(req.with_mti("0400")) == match_key(req.with_mti("0401"))
    assert match_key(req) != match_key(req.with_fields({41: "T0000002"}))


def test_many_requests_in_flight_answered_out_of_order():
    def behaviour(msg):
        # The first terminal's answer arrives last; both terminals use STAN 000001.
        delay = 0.3 if msg[41] == "T0000001" else 0.05
        return delay, msg.response("00", echo=(2, 3, 11, 37, 41), extra={38: msg[41][-6:]})

    async def main():
        box = []
        async with trio.open_nursery() as nursery:
            await nursery.start(scripted_issuer, box, behaviour)
            link = IssuerLink("t", "127.0.0.1", box[0], timeout=5)
            await nursery.start(link.run)
            with trio.fail_after(5):
                await link.wait_up()
            results = {}

            async def send(tid):
                results[tid] = await link.request(purchase("000001", tid))

            async with trio.open_nursery() as inner:
                for tid in ("T0000001", "T0000002", "T0000003"):
                    inner.start_soon(send, tid)
            nursery.cancel_scope.cancel()
        return results

    results = trio.run(main)
    for tid, resp in results.items():
        assert resp.mti == "0210"
        assert resp[41] == tid
        assert resp[38] == tid[-6:]


def test_timeout_and_link_down():
    async def main():
        box = []
        async with trio.open_nursery() as nursery:
            await nursery.start(scripted_issuer, box, lambda msg: (0, None))  # never answers
            link = IssuerLink("t", "127.0.0.1", box[0], timeout=0.2)
            down = IssuerLink("d", "127.0.0.1", 1, timeout=0.2)  # nothing listens on port 1
            await nursery.start(link.run)
            await nursery.start(down.run)
            with trio.fail_after(5):
                await link.wait_up()
            outcomes = []
            for target in (link, down):
                try:
                    await target.request(purchase("000002", "T0000001"))
                except (LinkTimeout, LinkDown) as exc:
                    outcomes.append(type(exc).__name__)
            nursery.cancel_scope.cancel()
        return outcomes

    assert trio.run(main) == ["LinkTimeout", "LinkDown"]


def test_a_connection_lost_after_the_request_left_is_an_unknown_outcome_not_link_down():
    """LinkLost is an OutcomeUnknown (98 and a reversal), never LinkDown (91)."""

    async def main():
        box = []
        async with trio.open_nursery() as nursery:
            # reads the request (it may have debited the card), then drops the connection
            await nursery.start(one_by_one_issuer, box, lambda msg: None)
            link = IssuerLink("t", "127.0.0.1", box[0], timeout=5, reconnect_min=5)
            await nursery.start(link.run)
            with trio.fail_after(5):
                await link.wait_up()
            outcome = None
            try:
                await link.request(purchase("000003", "T0000001"))
            except (LinkDown, OutcomeUnknown) as exc:
                outcome = type(exc).__name__
            nursery.cancel_scope.cancel()
        return outcome

    assert trio.run(main) == LinkLost.__name__


def test_repeats_answered_0410_and_0430_by_the_real_simulator_reach_their_waiters(tmp_path):
    """ISO 8583:1987 answers a 0401 with 0410 and a 0421 with 0430 (not 0411/0431): the link
    matches both to the repeat that is waiting."""
    from tools.issuer_sim.config import SimConfig
    from tools.issuer_sim.server import Simulator

    async def main():
        sim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0"))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(sim.serve)
            link = IssuerLink("sim", "127.0.0.1", port, timeout=5)
            await nursery.start(link.run)
            with trio.fail_after(5):
                await link.wait_up()
            sale = purchase("000007", "T0000001").with_fields({7: "1201101010"})
            assert (await link.request(sale))[39] == "00"
            original = f"0200000007120110101000000000000{0:011d}"
            reversal = sale.with_fields({90: original})
            answers = {}
            for mti in ("0401", "0421"):
                answers[mti] = (await link.request(reversal.with_mti(mti))).mti
            assert answers == {"0401": "0410", "0421": "0430"}
            assert (await sim.card("6222020000000001")).balance == 10_000_000
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_links_name_their_protocol_and_a_wrong_one_is_refused():
    import pytest

    from host.app import build_links
    from host.config import LINK_PROTOCOLS, ConfigError, load_settings
    from host.issuer.protocol import PROTOCOLS

    assert set(LINK_PROTOCOLS) == set(PROTOCOLS)
    settings = load_settings(environ={}, overrides={
        "links.visa": {"address": "127.0.0.1:1", "protocol": "iso8583"},
    })  # fmt: skip
    assert build_links(settings)["visa"].protocol is PROTOCOLS["iso8583"]
    with pytest.raises(ConfigError, match=r"links\.visa\.protocol"):
        load_settings(environ={}, overrides={"links.visa": {"address": "1.2.3.4:1",
                                                            "protocol": "x25"}})  # fmt: skip
