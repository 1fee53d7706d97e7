"""The outbox: frames queued in one scheduler tick leave in one send, in order, whole."""

import pytest
import trio
import trio.testing

from host.outbox import Outbox


class RecordingStream(trio.abc.SendStream):
    def __init__(self, fail: bool = False):
        self.sent: list[bytes] = []
        self.fail = fail

    async def send_all(self, data) -> None:
        await trio.lowlevel.checkpoint()
        if self.fail:
            raise trio.BrokenResourceError("peer gone")
        self.sent.append(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def test_frames_of_one_tick_leave_in_one_send_in_order():
    trio.run(_one_tick)


async def _one_tick():
    stream = RecordingStream()
    outbox = Outbox(stream)
    order = []  # Trio runs the tasks of one batch in a random order: note who queued when

    async def send(frame):
        order.append(frame)
        await outbox.send(frame)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(send, b"frame%d;" % i)
    assert stream.sent == [b"".join(order)]
    assert (outbox.sends, outbox.frames) == (1, 5)


def test_frames_queued_during_a_send_go_in_the_next_one():
    trio.run(_queued_during_a_send)


async def _queued_during_a_send():
    stream = RecordingStream()
    outbox = Outbox(stream)
    await outbox.send(b"a")
    await outbox.send(b"b")  # one caller at a time: one send each, nothing held back
    assert stream.sent == [b"a", b"b"]

    async def late(task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        await outbox.send(b"late")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.send, b"first")
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(late)
    assert stream.sent[2:] in ([b"first", b"late"], [b"firstlate"])
    assert b"".join(stream.sent) == b"abfirstlate"


def test_a_broken_stream_raises_in_the_sending_task():
    trio.run(_broken)


async def _broken():
    outbox = Outbox(RecordingStream(fail=True))
    with pytest.raises(trio.BrokenResourceError):
        await outbox.send(b"x")
    # the outbox is usable again (the owner decides whether to reconnect)
    assert outbox._sending is False
