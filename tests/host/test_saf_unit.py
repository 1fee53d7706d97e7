"""Store-and-forward scheduling without waiting: the backoff is on the host's clock (moved by
hand), the worker's interval on trio's MockClock. (Across a real crash and restart, against
the real simulator: test_crash_safety.py and test_issuer_crash.py.)"""

from __future__ import annotations

import pytest
import trio

from codec.message import Message
from host.flow import steps
from host.issuer.link import LinkTimeout
from host.issuer.saf import MAX_BACKOFF_MS, backoff_ms, drain_once, saf_worker
from tests.host.fakes import ScriptedLink, exchange, fake_host, run_steps, signed_on
from tools.issuer_sim.testing import PIN, RICH

_SALE = (
    steps.identify_terminal, steps.require_session, steps.verify_mac, steps.select_route,
    steps.translate_pin, steps.journal_request, steps.authorize,
)  # fmt: skip


def test_the_backoff_doubles_from_the_interval_and_stops_at_five_minutes():
    assert [backoff_ms(n, 5.0) for n in range(5)] == [5_000, 10_000, 20_000, 40_000, 80_000]
    assert backoff_ms(6, 5.0) == MAX_BACKOFF_MS == backoff_ms(60, 5.0)


async def _unknown_outcome(host, stan: str = "000100") -> int:
    """A purchase the issuer never answered: 98, and its reversal queued with the outcome."""
    link = host.links["sim"]
    assert isinstance(link, ScriptedLink)
    answer, link.answer = link.answer, lambda _msg: LinkTimeout("sim")
    device = await signed_on(host)
    msg = device.financial_request("purchase", pan=RICH, amount=1_500, pin=PIN, stan=stan)
    ex = await run_steps(host, exchange(device, msg), *_SALE)
    link.answer = answer
    assert ex.code == "98" and ex.journal.outcome_recorded
    items = [i for i in await host.store.saf_due(limit=10) if i.transaction_id == ex.journal.id]
    assert len(items) == 1
    return items[0].id


@pytest.mark.trio
async def test_a_reversal_waits_its_backoff_while_the_link_is_down_then_goes_as_a_repeat(
    tmp_path,
):
    async with fake_host(tmp_path) as host:
        saf_id = await _unknown_outcome(host)
        link = host.links["sim"]
        link.requests.clear()
        link.is_up = False
        assert await drain_once(host, 5.0) == 0
        item = await host.store.saf_get(saf_id)
        now_ms = int(host.now().timestamp() * 1000)
        assert (item.attempts, item.next_attempt_at) == (1, now_ms + 5_000)
        assert item.last_error == "link down"

        link.is_up = True
        link.answer = lambda msg: msg.response("00", echo=(3, 11, 37, 41, 42))
        host.clock.advance(seconds=4.9)
        assert await drain_once(host, 5.0) == 0  # not due yet: nothing is sent
        assert link.requests == []
        host.clock.advance(seconds=0.1)
        assert await drain_once(host, 5.0) == 1
        (sent,) = link.requests
        assert sent.mti == "0421"  # sent before (attempted): the repeat
        assert 2 not in sent and 35 not in sent  # a reversal carries no card data
        assert (await host.store.saf_get(saf_id)).status == "acked"


@pytest.mark.trio
async def test_an_unanswered_repeat_backs_off_longer_each_time(tmp_path):
    async with fake_host(tmp_path) as host:
        saf_id = await _unknown_outcome(host)
        link = host.links["sim"]
        link.answer = lambda _msg: LinkTimeout("sim")
        waits = []
        for _ in range(4):
            before = int(host.now().timestamp() * 1000)
            await drain_once(host, 1.0)
            item = await host.store.saf_get(saf_id)
            waits.append(item.next_attempt_at - before)
            host.clock.advance(milliseconds=waits[-1])
        assert waits == [1_000, 2_000, 4_000, 8_000]
        assert [m.mti for m in link.requests[-4:]] == ["0420", "0421", "0421", "0421"]


@pytest.mark.trio
async def test_the_worker_drains_every_interval_and_at_once_when_woken(tmp_path, autojump_clock):
    async with fake_host(tmp_path, **{"issuer.saf_interval": 30.0}) as host:
        await _unknown_outcome(host)
        link = host.links["sim"]
        sent_at: list[float] = []

        def ack(msg: Message) -> Message:
            sent_at.append(trio.current_time())
            return msg.response("00", echo=(3, 11, 37, 41, 42))

        link.answer = ack
        host.saf_event = trio.Event()  # the wake-up of the queueing above is spent
        async with trio.open_nursery() as nursery:
            started = trio.current_time()
            await nursery.start(saf_worker, host)
            while not sent_at:
                await trio.sleep(1)
            assert sent_at[0] - started == pytest.approx(30.0)  # the interval, no wake-up

            await _unknown_outcome(host, stan="000200")  # queueing wakes the worker at once
            woken = trio.current_time()
            while len(sent_at) < 2:
                await trio.sleep(0.001)
            assert sent_at[1] - woken < 0.01
            nursery.cancel_scope.cancel()
