"""The load engine: emulated terminals on their own connections, each signed on first.

Open loop (``rate`` > 0): send times are fixed in advance (i / rate), every request's frame
(STAN, PIN block, MAC) is built before the clock starts, and latency is measured from the
*scheduled* send time, so a slow host shows as queueing instead of hiding it (no coordinated
omission). Closed loop (``rate`` = 0): each terminal sends its next request when the previous
answer arrives, as fast as the host allows; latency from the actual send.

Requests are pipelined on a terminal's connection (the host answers them in order); responses
are matched by STAN. Several worker processes share the terminals when one core is not enough
to generate the load (``tools.load.run``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable

import attrs
import trio

from codec import terminal as terminal_codec
from codec.framing import LengthPrefixedDecoder, parse_envelope
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device

DEFAULT_CARD = "6222020000000001"  # the simulator's demo card with a large balance, PIN 1234
KINDS = ("purchase_pin", "purchase", "balance", "qr")  # qr: pay by customer code (wallet-sim)


class LoadError(RuntimeError):
    """The load cannot run (a terminal cannot connect or sign on): one line says why."""


def first_cause(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: what a person needs to read."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@attrs.frozen
class TerminalSpec:
    tid: str
    mid: str
    tmk: str  # hex, TEST key
    key_mode: str = "003"
    stan: int = 0  # last STAN used (the next request uses stan + 1)
    codes: tuple[str, ...] = ()  # one-time payment codes for the "qr" kind (wallet-sim's)


@attrs.frozen
class LoadConfig:
    host: str
    port: int
    terminals: tuple[TerminalSpec, ...]
    duration: float = 10.0
    rate: float = 0.0  # requests per second in total; 0 = as fast as possible (closed loop)
    mix: tuple[tuple[str, int], ...] = (("purchase_pin", 100),)
    pan: str = DEFAULT_CARD
    pin: str = "1234"
    amount: int = 1
    timeout: float = 10.0  # a request unanswered this long after the run is an error
    echo_server: bool = False  # the peer echoes frames back (benchmark baseline)


@attrs.define
class WorkerResult:
    latencies: list[float] = attrs.field(factory=list)  # seconds
    codes: Counter = attrs.field(factory=Counter)
    errors: Counter = attrs.field(factory=Counter)
    sent: int = 0
    elapsed: float = 0.0
    stans: dict[str, int] = attrs.field(factory=dict)  # tid -> last STAN used
    cpu: float = 0.0
    # One per answer: (sent, seconds after the start; latency, seconds; mix kind; code), for
    # the report's throughput and latency over time and its breakdown by transaction type.
    samples: list[tuple[float, float, str, str]] = attrs.field(factory=list)


def parse_mix(text: str) -> tuple[tuple[str, int], ...]:
    """ "purchase_pin=80,balance=20" -> (("purchase_pin", 80), ("balance", 20))."""
    out = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in KINDS:
            raise ValueError(f"unknown kind {name!r} in the mix (known: {', '.join(KINDS)})")
        out.append((name, int(weight or 1)))
    if not out or sum(w for _, w in out) <= 0:
        raise ValueError("the mix needs a positive weight")
    return tuple(out)


def _kind_cycle(mix) -> itertools.cycle:
    """A deterministic interleaving of the mix (weights reduced to a cycle of ≤100 kinds)."""
    total = sum(w for _, w in mix)
    seq = []
    acc = dict.fromkeys((k for k, _ in mix), 0.0)
    for _ in range(min(total, 100)):
        for k, w in mix:
            acc[k] += w / total
        k = max(acc, key=acc.get)
        acc[k] -= 1
        seq.append(k)
    return itertools.cycle(seq)


class _Term:
    """One emulated terminal: its device, connection and requests in flight (STAN -> time)."""

    def __init__(self, spec: TerminalSpec, config: LoadConfig):
        self.spec = spec
        self.config = config
        self.device = Device(
            spec.tid, spec.mid, bytes.fromhex(spec.tmk), spec.key_mode, stan=spec.stan
        )
        self.client: TerminalClient | None = None
        self.inflight: dict[bytes, float] = {}
        self.kind_of: dict[bytes, str] = {}  # STAN -> mix kind, for the per-type breakdown
        self.kinds = _kind_cycle(config.mix)
        self.codes = iter(spec.codes)
        self.ready = trio.Event()  # closed loop: the previous answer arrived
        if config.echo_server:  # the baseline peer checks nothing: any keys will do
            self.device.mak, self.device.pik = bytes(8), bytes(16)

    async def connect(self) -> None:
        self.client = await TerminalClient.connect(
            self.config.host, self.config.port, self.device, timeout=self.config.timeout
        )
        if not self.config.echo_server:
            await self.client.sign_on()

    def frame(self) -> tuple[bytes, bytes]:
        """The next request frame and its STAN as the 3 BCD bytes the response carries."""
        d, c = self.device, self.config
        kind = next(self.kinds)
        if kind == "balance":
            msg = d.financial_request("balance_inquiry", pan=c.pan, pin=c.pin)
        elif kind == "qr":
            code = next(self.codes, None)
            if code is None:
                raise LoadError(f"{self.spec.tid}: out of payment codes for the QR mix")
            msg = d.financial_request("qr_pay", amount=c.amount, extra={48: code, 22: "032"})
        elif kind == "purchase_pin":
            msg = d.financial_request("purchase", pan=c.pan, amount=c.amount, pin=c.pin)
        else:
            msg = d.financial_request("purchase", pan=c.pan, amount=c.amount)
        payload = d.encode(msg)
        stan = bytes.fromhex(str(msg[11]))
        self.kind_of[stan] = kind
        return d.envelope(payload).to_frame(), stan


def _stan_and_code(payload: bytes) -> tuple[bytes, str]:
    msg = terminal_codec.decode(payload)
    return bytes.fromhex(str(msg.get(11, "000000"))), str(msg.get(39, "--"))


async def run_worker(
    config: LoadConfig,
    *,
    start_in: float = 0.5,
    rate_share: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    start_at_wall: Callable[[], float] | None = None,
) -> WorkerResult:
    """Run the load for ``config.terminals`` in this Trio loop and return raw results.

    ``rate_share`` is this worker's part of the rate (default: all of it). ``start_at_wall``
    (multi-process) blocks until the parent says when to start, as a ``time.time()`` value.
    """
    result = WorkerResult()
    cpu0 = time.process_time()
    terms = [_Term(spec, config) for spec in config.terminals]
    try:
        async with trio.open_nursery() as nursery:
            for t in terms:
                nursery.start_soon(t.connect)
    except Exception as exc:  # ExceptionGroup of connect/sign-on failures
        cause = first_cause(exc)
        where = f"{config.host}:{config.port}"
        why = str(cause) or type(cause).__name__
        raise LoadError(f"cannot connect and sign on at {where}: {why}") from None
    rate = config.rate if rate_share is None else rate_share
    plan: list[tuple[_Term, bytes, bytes]] = []
    if rate > 0:  # open loop: every frame built before the clock starts
        count = math.ceil(rate * config.duration)
        cycle = itertools.cycle(terms)
        for _ in range(count):
            t = next(cycle)
            frame, stan = t.frame()
            plan.append((t, frame, stan))
    if on_ready is not None:
        on_ready()
    if start_at_wall is not None:
        wall = await trio.to_thread.run_sync(start_at_wall)
        start = trio.current_time() + max(0.0, wall - time.time())
    else:
        start = trio.current_time() + start_in
    end = start + config.duration
    done = 0

    def answered(t: _Term, body: bytes) -> None:
        nonlocal done
        now = trio.current_time()
        try:
            env = parse_envelope(body)
            stan, code = _stan_and_code(env.payload)
        except Exception:  # a response the codec refuses is an error, not a crash
            result.errors["undecodable response"] += 1
            return
        sent_at = t.inflight.pop(stan, None)
        if sent_at is None:
            result.errors["unmatched response"] += 1
            return
        result.latencies.append(now - sent_at)
        result.codes["echo" if config.echo_server else code] += 1
        kind = t.kind_of.pop(stan, "?")
        result.samples.append((sent_at - start, now - sent_at, kind, code))
        done += 1
        t.ready.set()

    async def receiver(t: _Term) -> None:
        decoder = LengthPrefixedDecoder(65535)
        stream = t.client.stream
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                if t.inflight:
                    result.errors["connection closed"] += len(t.inflight)
                    t.inflight.clear()
                t.ready.set()
                return
            for body in decoder.feed(data):
                answered(t, body)

    async def send(t: _Term, frame: bytes, stan: bytes, at: float) -> None:
        t.inflight[stan] = at
        result.sent += 1
        try:
            await t.client.stream.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            t.inflight.pop(stan, None)
            result.errors["send failed"] += 1

    async def open_loop() -> None:
        interval = 1.0 / rate
        for i, (t, frame, stan) in enumerate(plan):
            at = start + i * interval
            if trio.current_time() < at:
                await trio.sleep_until(at)
            await send(t, frame, stan, at)

    async def closed_loop(t: _Term) -> None:
        await trio.sleep_until(start)
        while trio.current_time() < end:
            t.ready = trio.Event()
            frame, stan = t.frame()
            await send(t, frame, stan, trio.current_time())
            await t.ready.wait()
            if t.client is None:
                return

    async def progress() -> None:
        while True:
            await trio.sleep(0.25)
            if on_progress is not None:
                on_progress(done)

    async with trio.open_nursery() as nursery:
        for t in terms:
            nursery.start_soon(receiver, t)
        nursery.start_soon(progress)
        async with trio.open_nursery() as senders:
            if rate > 0:
                senders.start_soon(open_loop)
            else:
                for t in terms:
                    senders.start_soon(closed_loop, t)
        result.elapsed = trio.current_time() - start
        # wait for the answers still in flight, at most `timeout`
        with trio.move_on_after(config.timeout):
            while any(t.inflight for t in terms):
                await trio.sleep(0.01)
        for t in terms:
            if t.inflight:
                result.errors["timeout"] += len(t.inflight)
                t.inflight.clear()
        if on_progress is not None:
            on_progress(done)
        nursery.cancel_scope.cancel()
    for t in terms:
        result.stans[t.spec.tid] = t.device.stan
        if t.client is not None:
            await t.client.aclose()
    result.cpu = time.process_time() - cpu0
    return result
