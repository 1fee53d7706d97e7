"""Frames from many tasks to one stream, coalesced into one send per scheduler tick.

On the benchmark machine (a 2-core VM) a send to a peer that sleeps on another core costs
~50 CPU-us, nearly all of it the cross-core wake-up, whatever the size. Several requests to one
issuer link (or several answers from the simulator) become ready in the same tick, typically
because one group commit of the journal woke them together; sending them in one ``send`` wakes
the peer once. The first task of a tick queues its frame, yields once, and sends everything
queued meanwhile; the others only queue theirs. A frame is never split, and frames keep their
queueing order.

Callers learn of a broken stream from the sender task's exception, or (the others) from the
connection being torn down: the owner cancels the connection when a send fails, which wakes
everyone still waiting for an answer. A sender cancelled in the middle of its send drops the
frames queued behind its own; their requests go unanswered and time out, as a frame lost on
the wire would (on the issuer link: 98 and a reversal).
"""

from __future__ import annotations

import trio


class Outbox:
    def __init__(self, stream: trio.abc.SendStream):
        self._stream = stream
        self._queued: list[bytes] = []
        self._sending = False
        self.sends = 0
        self.frames = 0

    async def send(self, frame: bytes) -> None:
        """Queue ``frame``; the first caller of a tick sends all that is queued, in order.
        Raises what the stream raises (in that caller only)."""
        self._queued.append(frame)
        self.frames += 1
        if self._sending:
            return
        self._sending = True
        try:
            # Not cancellable: a frame once queued goes out unless the stream breaks.
            await trio.lowlevel.cancel_shielded_checkpoint()
            while self._queued:
                data = b"".join(self._queued) if len(self._queued) > 1 else self._queued[0]
                self._queued.clear()
                self.sends += 1
                await self._stream.send_all(data)
        finally:
            self._queued.clear()
            self._sending = False
