"""The issuer link's timing on trio's MockClock, over in-memory streams: a timeout of ten
seconds, a reconnect backoff and an echo interval take no real time at all. (The same link over
a real loopback socket and the real simulator: test_issuer_link.py.)"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from codec import issuer as issuer_codec
from codec.framing import LengthPrefixedDecoder, prefix_length
from codec.message import Message
from host.issuer.link import IssuerLink, LinkDown, LinkLost, LinkTimeout, OutcomeUnknown
from host.outbox import Outbox

Answer = Callable[[Message], Awaitable[Message | None]]


async def silent(_msg: Message) -> None:
    """An issuer that reads the request and never answers."""


def _purchase(stan: str = "000001") -> Message:
    return Message("0200", {3: "000000", 4: "000000001000", 11: stan, 41: "12345678"})


async def _issuer(stream: trio.abc.Stream, answer: Answer, seen: list[Message]) -> None:
    """The issuer end of one connection: signs the link on, then ``answer(msg)`` for each
    request (None: no answer at all)."""
    decoder = LengthPrefixedDecoder(8192)
    with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
        await _answer_all(stream, decoder, answer, seen)


async def _answer_all(
    stream: trio.abc.Stream, decoder: LengthPrefixedDecoder, answer: Answer, seen: list[Message]
) -> None:
    async with stream:
        while data := await stream.receive_some(4096):
            for body in decoder.feed(data):
                msg = issuer_codec.decode(body)
                seen.append(msg)
                if msg.mti == "0800":
                    reply: Message | None = msg.response("00", echo=(7, 11, 70))
                else:
                    reply = await answer(msg)
                if reply is not None:
                    await stream.send_all(prefix_length(issuer_codec.encode(reply)))


def _link(nursery: trio.Nursery, answer: Answer, seen: list[Message], **kw) -> IssuerLink:
    async def connect() -> trio.abc.Stream:
        ours, theirs = trio.testing.memory_stream_pair()
        nursery.start_soon(_issuer, theirs, answer, seen)
        return ours

    return IssuerLink("sim", "issuer.invalid", 0, connect=connect, **kw)


@pytest.mark.trio
async def test_no_answer_within_the_timeout_is_an_unknown_outcome(autojump_clock):
    seen: list[Message] = []
    async with trio.open_nursery() as nursery:
        link = _link(nursery, silent, seen, timeout=10.0)
        await nursery.start(link.run)
        await link.wait_up()
        started = trio.current_time()
        with pytest.raises(LinkTimeout) as info:
            await link.request(_purchase())
        assert isinstance(info.value, OutcomeUnknown)  # the caller answers 98 and reverses
        assert trio.current_time() - started == pytest.approx(10.0)
        assert [m.mti for m in seen] == ["0800", "0200"]  # it did leave: the outcome is unknown
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_an_answer_after_the_timeout_is_late_and_reaches_no_one(autojump_clock):
    seen: list[Message] = []

    async def slow(msg: Message) -> Message:
        await trio.sleep(3.0)
        return msg.response("00", echo=(3, 11, 41))

    async with trio.open_nursery() as nursery:
        link = _link(nursery, slow, seen, timeout=2.0)
        await nursery.start(link.run)
        await link.wait_up()
        with pytest.raises(LinkTimeout):
            await link.request(_purchase())
        await trio.sleep(2.0)  # the answer arrives at 3 s, after its waiter left at 2 s
        assert link.stats["late"] == 1
        # the same STAN again is a new request: it gets its own (slow, so timed out) answer
        with pytest.raises(LinkTimeout):
            await link.request(_purchase())
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_connection_lost_while_waiting_is_lost_not_down(autojump_clock):
    seen: list[Message] = []
    streams: list[trio.abc.Stream] = []

    async with trio.open_nursery() as nursery:

        async def connect() -> trio.abc.Stream:
            ours, theirs = trio.testing.memory_stream_pair()
            streams.append(theirs)
            nursery.start_soon(_issuer, theirs, silent, seen)
            return ours

        link = IssuerLink("sim", "issuer.invalid", 0, timeout=30.0, connect=connect)
        await nursery.start(link.run)
        await link.wait_up()

        async def drop_after_request() -> None:
            while not any(m.mti == "0200" for m in seen):
                await trio.sleep(0.01)
            await streams[0].aclose()

        nursery.start_soon(drop_after_request)
        started = trio.current_time()
        with pytest.raises(LinkLost):
            await link.request(_purchase())
        assert trio.current_time() - started < 1.0  # woken by the lost connection, not the timeout
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_reconnect_backs_off_doubling_up_to_the_maximum(autojump_clock):
    attempts: list[float] = []

    async def refuse() -> trio.abc.Stream:
        attempts.append(trio.current_time())
        raise OSError("connection refused")

    link = IssuerLink(
        "sim", "issuer.invalid", 0, reconnect_min=0.5, reconnect_max=4.0, connect=refuse
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(attempts)]
    assert gaps[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    with pytest.raises(LinkDown):  # never up: a request is refused at once (91, nothing left)
        await link.request(_purchase())


@pytest.mark.trio
async def test_an_idle_link_sends_echo_tests_at_its_interval(autojump_clock):
    seen: list[Message] = []
    async with trio.open_nursery() as nursery:
        link = _link(nursery, silent, seen, echo_interval=60.0)
        await nursery.start(link.run)
        await link.wait_up()
        await trio.sleep(10 * 60)
        echoes = [m for m in seen if m.mti == "0800" and m.get(70) == "301"]
        # idle for ten minutes: one echo a minute (checked every quarter of the interval)
        assert 9 <= len(echoes) <= 10
        assert link.is_up
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_frames_of_one_tick_leave_in_one_send_over_a_memory_stream():
    send, receive = trio.testing.memory_stream_one_way_pair()
    sends: list[int] = []
    pump = send.send_all_hook  # moves what was sent to the receiving end

    async def count_send() -> None:
        sends.append(1)
        if pump is not None:
            await pump()

    send.send_all_hook = count_send
    outbox = Outbox(send)
    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(outbox.send, b"<%d>" % i)
    data = await receive.receive_some()
    assert sorted(data.split(b">")[:-1]) == [b"<0", b"<1", b"<2", b"<3"]
    assert (len(sends), outbox.sends, outbox.frames) == (1, 1, 4)
