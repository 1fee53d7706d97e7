"""A host without its sockets, and an exchange factory: one step gets a unit test in a few lines
(jPOS tests each participant the same way).

What is real: the ``Host`` class itself (settings, clock, caches, RRNs, fingerprints), the
journal's SQL (a ``SyncStore`` on a temporary SQLite file, run inline behind the ``Store``'s
async face), the software HSM under a test LMK, the demo estate, the steps. What is not: the
terminal connection (a bare ``Connection``), the issuer (a ``ScriptedLink`` that answers from a
function) and the clock (``FixedClock``). Flows end to end keep running against the real host
over its sockets (``tests/host/harness.py``, ``flowkit.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from codec import terminal as terminal_codec
from codec.message import Message
from codec.txntypes import identify
from host.app import Host, hsm_options, zone_pin_keys
from host.clock import BusinessCalendar, FixedClock
from host.config import load_settings
from host.demo import seed_demo_estate
from host.edge.server import Connection
from host.flow import management
from host.flow.engine import Decline, Exchange, Step
from host.flows import FLOWS
from host.hsm import SoftAsyncHSM, SoftClearTestKeys
from host.issuer.link import LinkDown
from host.issuer.protocol import ISO8583
from host.issuer.router import Router
from host.store import SyncStore
from keys.hsm import SoftHSM
from tests.host.harness import TEST_LMK, demo_device
from tools.terminal.device import Device

# 10:00 in Shanghai on 10 March 2025 (cut-over 23:00 local): the flow tests' morning.
MORNING = dt.datetime(2025, 3, 10, 2, 0, tzinfo=dt.UTC)
_CONNECTIONS = itertools.count(1)


class InlineJournal:
    """The real journal's SQL behind the ``Store``'s async methods, run inline (no writer
    thread, no worker threads): a step under test awaits ``host.store.x(...)`` as it does in
    the running host, and the rows it reads and writes are real rows."""

    def __init__(self, sync: SyncStore) -> None:
        self.sync = sync

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.sync, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            await trio.lowlevel.checkpoint()
            return method(*args, **kwargs)

        call.__name__ = name
        return call


@attrs.define
class ScriptedLink:
    """An issuer link whose issuer is a function: ``answer(request)`` returns the response, or
    an exception to raise (``LinkDown``, ``LinkTimeout``...). Every request is kept."""

    answer: Callable[[Message], Message | BaseException]
    name: str = "sim"
    protocol: Any = ISO8583
    is_up: bool = True
    requests: list[Message] = attrs.field(factory=list)

    async def request(self, msg: Message) -> Message:
        self.requests.append(msg)
        await trio.lowlevel.checkpoint()
        if not self.is_up:
            raise LinkDown(self.name)
        outcome = self.answer(msg)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def approve(msg: Message) -> Message:
    """The issuer's plain approval: 00 with an authorization code."""
    return msg.response("00", echo=(3, 7, 11, 37, 41, 42), extra={38: "123456"})


@contextlib.asynccontextmanager
async def fake_host(
    tmp_path: Path,
    *,
    clock: FixedClock | None = None,
    answer: Callable[[Message], Message | BaseException] = approve,
    **overrides: Any,
) -> AsyncIterator[Host]:
    """A ``Host`` over a fresh journal holding the demo estate, one scripted issuer link
    ("sim", every PAN routed to it) and the clock at ``MORNING`` unless given."""
    overrides = {"data.dir": str(tmp_path / "host"), **overrides}
    settings = load_settings(environ={}, overrides=overrides)
    lmk = bytes.fromhex(TEST_LMK)
    soft = SoftHSM(lmk, **hsm_options(settings))
    test_keys = SoftClearTestKeys(SoftHSM(lmk, clear_test_keys=True, **hsm_options(settings)))
    clock = clock or FixedClock(MORNING)

    def journal_clock() -> int:  # the journal dates its rows on the same clock as the host
        return int(clock.now().timestamp() * 1000)

    with SyncStore.open(f"sqlite:///{tmp_path / 'journal.sqlite'}", clock=journal_clock) as sync:
        store = InlineJournal(sync)
        await seed_demo_estate(store, test_keys)
        yield Host(
            settings=settings,
            store=store,
            hsm=SoftAsyncHSM(soft),
            links={"sim": ScriptedLink(answer)},
            zpks=await zone_pin_keys(settings, test_keys),
            router=Router.from_table([("", "sim")]),
            calendar=BusinessCalendar.from_settings(
                settings.acquirer.timezone, settings.acquirer.cutover
            ),
            flows=FLOWS,
            fingerprint_key=bytes(range(32)),
            clock=clock,
        )


def exchange(device: Device, msg: Message, *, conn: Connection | None = None) -> Exchange:
    """The exchange a request from ``device`` starts: encoded (and MACed, when its class carries
    a MAC and the device holds a MAK) and decoded as the dispatcher does, so the steps see the
    bytes a terminal sends."""
    payload = device.encode(msg)
    request = terminal_codec.decode(payload)
    return Exchange(
        envelope=device.envelope(payload),
        request=request,
        txn=identify(request),
        conn=conn or Connection(next(_CONNECTIONS), "127.0.0.1:40000"),
        started=0.0,
    )


async def run_steps(host: Host, ex: Exchange, *steps: Step) -> Exchange:
    """Run ``steps`` in order as a flow does; a Decline ends them and is kept on ``ex``."""
    for step in steps:
        try:
            await step(host, ex)
        except Decline as exc:
            ex.decline(exc)
            break
    return ex


async def signed_on(host: Host, tid: str = "12345678") -> Device:
    """A demo terminal that signed on through the real sign-on step (keys under its TMK, in
    force at once as for a first sign-on)."""
    from host.flow.steps import identify_terminal

    device = demo_device(tid)
    ex = exchange(device, device.sign_on_request())
    await run_steps(host, ex, identify_terminal, management.sign_on)
    assert ex.code == "00", ex.reason
    device.accept_sign_on(ex.request.response("00", extra=ex.response_fields))
    host.estate.forget_terminal(tid)
    return device
