"""The terminal's own rules, against a scripted fake host: a response with a bad MAC is not
trusted and the terminal reverses (39 = A0) at once; a pending reversal goes out first."""

from __future__ import annotations

import trio

from codec import terminal as terminal_codec
from codec.framing import LengthPrefixedDecoder, parse_envelope, prefix_length
from codec.message import Message
from tools.terminal.device import Device
from tools.terminal.pos import Pos
from tools.terminal.state import LogEntry, TerminalState, from_profile

MAK = bytes.fromhex("0123456789ABCDEF")


async def fake_host(listeners, script, seen: list[Message]):
    """Serve one connection per script entry; each answers one request with entry(request)."""
    for answer in script:
        stream = await listeners[0].accept()
        decoder = LengthPrefixedDecoder()
        frames = []
        while not frames:
            frames = decoder.feed(await stream.receive_some(4096))
        env = parse_envelope(frames[0])
        req = terminal_codec.decode(env.payload)
        seen.append(req)
        payload = answer(req)
        if payload is not None:
            await stream.send_all(prefix_length(env.response(payload=payload).to_body()))
        await stream.aclose()


def answer_with_mak(mak: bytes):
    def answer(req: Message) -> bytes:
        d = Device("x", "x", b"", mak=mak)
        resp = req.response("00", extra={37: "000000000001", 38: "123456"})
        return d.encode(resp)

    return answer


def test_bad_response_mac_makes_the_terminal_reverse_with_a0(tmp_path):
    async def main():
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        state = from_profile("demo:12345678", f"127.0.0.1:{port}")
        state.mak, state.pik = MAK, bytes(16)
        pos = Pos(state, tmp_path / "t.json", timeout=2)
        seen: list[Message] = []
        bad, good = answer_with_mak(bytes.fromhex("FEDCBA9876543210")), answer_with_mak(MAK)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fake_host, listeners, [bad, good], seen)
            req = pos.device.financial_request("purchase", pan="6222020000000001", amount=500)
            entry = LogEntry("purchase", str(req[11]), state.batch, 500, "6222020000000001")
            out = await pos.transact("purchase", req, entry)
        assert out.error == "response MAC is wrong"
        assert [m.mti for m in seen] == ["0200", "0400"]
        assert seen[1][39] == "A0" and seen[1][11] == seen[0][11]
        assert 52 not in seen[1] and seen[1][4] == seen[0][4]
        assert out.reversal_response is not None and out.reversal_response[39] == "00"
        assert pos.state.pending_reversal is None and pos.state.log[-1].status == "reversed"

    trio.run(main)


def test_pending_reversal_survives_and_goes_out_before_the_next_request(tmp_path):
    async def main():
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        state = from_profile("demo:12345678", f"127.0.0.1:{port}")
        state.mak = MAK
        path = tmp_path / "t.json"
        pos = Pos(state, path, timeout=0.5)
        seen: list[Message] = []
        silent = lambda req: None  # noqa: E731 - the host never answers the purchase
        async with trio.open_nursery() as nursery:
            # the purchase times out and the immediate reversal is not answered either
            nursery.start_soon(fake_host, listeners, [silent, silent], seen)
            req = pos.device.financial_request("purchase", pan="6222020000000001", amount=500)
            entry = LogEntry("purchase", str(req[11]), state.batch, 500, "6222020000000001")
            out = await pos.transact("purchase", req, entry)
        assert "reversal still pending" in out.error
        reloaded = TerminalState.load(path)
        assert reloaded.pending_reversal["reason"] == "98"
        pos2 = Pos(reloaded, path, timeout=2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fake_host, listeners, [answer_with_mak(MAK)], seen)
            client = await pos2._connect()
            await pos2._flush_reversal(client)
            await client.aclose()
        assert seen[-1].mti == "0400" and seen[-1][11] == seen[0][11]
        assert pos2.state.pending_reversal is None

    trio.run(main)
