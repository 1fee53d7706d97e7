"""A persistent TCP link to one issuer.

One connection carries many requests at once. The link keeps the socket, reconnects with
exponential backoff, pairs answers with the tasks waiting for them, sends echo tests when idle
and reports itself down so the host can answer 91 at once instead of waiting for a timeout.
How the issuer speaks (framing, encoding, which answer belongs to which request, sign-on and
echo messages) is its protocol object (``host.issuer.protocol``); ISO 8583:1987 by default.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Hashable

import attrs
import structlog
import trio

from codec.errors import CodecError
from codec.message import Message
from host.issuer.protocol import ISO8583, IssuerProtocol
from host.outbox import Outbox

log = structlog.get_logger("poshost.link")


class LinkDown(Exception):
    """The request certainly never left: the link has no connection to its issuer right now,
    or the same request is already in flight (response code 91, nothing to undo)."""


class OutcomeUnknown(Exception):
    """Some byte of the request may have reached the issuer, and no matching answer came: the
    issuer may have approved (and debited the card). The caller answers 98 and queues a
    reversal, whatever the reason was."""


class LinkTimeout(OutcomeUnknown):
    """The issuer did not answer within the timeout."""


class LinkLost(OutcomeUnknown):
    """The connection broke (write error, peer closed, reader failed) after the request was
    handed to it and before its answer arrived."""


def match_key(msg: Message) -> Hashable:
    """The ISO 8583:1987 pairing key (MTI class, STAN, terminal); kept for callers of the
    link's former function."""
    return ISO8583.match_key(msg)


@attrs.define
class _Waiter:
    event: trio.Event = attrs.field(factory=trio.Event)
    response: Message | None = None


@attrs.define
class IssuerLink:
    name: str
    host: str
    port: int
    timeout: float = 10.0
    management_timeout: float = 10.0  # sign-on/echo: a slow issuer is slow, not down
    echo_interval: float = 30.0
    reconnect_min: float = 0.5
    reconnect_max: float = 15.0
    max_frame: int = 8192
    stan_source: Callable[[], str] | None = None  # STANs for the link's own 0800s
    protocol: IssuerProtocol = ISO8583
    # How a connection is opened: TCP to host:port unless given (tests hand in memory streams).
    connect: Callable[[], Awaitable[trio.abc.Stream]] | None = None

    _stream: trio.abc.Stream | None = attrs.field(default=None, init=False)
    _outbox: Outbox | None = attrs.field(default=None, init=False)
    _connection: trio.CancelScope | None = attrs.field(default=None, init=False)
    _waiters: dict[Hashable, _Waiter] = attrs.field(factory=dict, init=False)
    _up: trio.Event = attrs.field(factory=trio.Event, init=False)
    _last_traffic: float = attrs.field(default=0.0, init=False)
    _mgmt_stan: int = attrs.field(default=0, init=False)
    stats: dict[str, int] = attrs.field(factory=lambda: {"sent": 0, "received": 0, "late": 0})

    @property
    def is_up(self) -> bool:
        return self._stream is not None

    async def wait_up(self) -> None:
        await self._up.wait()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Keep the link connected for ever (cancel the scope to stop it)."""
        task_status.started()
        backoff = self.reconnect_min
        while True:
            try:
                stream = await self._open()
            except OSError as exc:
                log.warning("link_connect_failed", link=self.name, error=str(exc), retry_in=backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max)
                continue
            backoff = self.reconnect_min
            try:
                await self._serve_connection(stream)
            except Exception:  # a bug in the reader must not take the host down: reconnect
                log.exception("link_failed", link=self.name)
            finally:
                self._mark_down()
                with trio.CancelScope(shield=True):
                    await stream.aclose()
            await trio.sleep(self.reconnect_min)

    async def _open(self) -> trio.abc.Stream:
        if self.connect is not None:
            return await self.connect()
        return await trio.open_tcp_stream(self.host, self.port)

    def _mark_down(self) -> None:
        self._stream = None
        self._outbox = None
        self._connection = None
        self._up = trio.Event()
        # Wake every waiter: its request may or may not have reached the issuer (LinkLost).
        for waiter in self._waiters.values():
            waiter.event.set()

    async def _serve_connection(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._outbox = Outbox(stream)
        self._last_traffic = trio.current_time()
        log.info("link_connected", link=self.name, peer=f"{self.host}:{self.port}")
        async with trio.open_nursery() as nursery:
            self._connection = nursery.cancel_scope
            nursery.start_soon(self._reader, stream, nursery.cancel_scope)
            signed_on = await self._management("001")
            if signed_on is None or not self.protocol.accepted(signed_on):
                log.warning("link_sign_on_refused", link=self.name)
                nursery.cancel_scope.cancel()
                return
            self._up.set()
            log.info("link_up", link=self.name)
            nursery.start_soon(self._echo_loop, nursery.cancel_scope)

    async def _reader(self, stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
        decoder = self.protocol.decoder(self.max_frame)
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    log.warning("link_closed_by_peer", link=self.name)
                    break
                self._last_traffic = trio.current_time()
                for body in decoder.feed(data):
                    self._deliver(body)
        except (CodecError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.warning("link_read_error", link=self.name, error=str(exc))
        scope.cancel()

    def _deliver(self, body: bytes) -> None:
        try:
            msg = self.protocol.decode(body)
        except CodecError as exc:
            log.warning("link_bad_message", link=self.name, error=str(exc))
            return
        self.stats["received"] += 1
        waiter = self._waiters.get(self.protocol.match_key(msg))
        if waiter is None or waiter.response is not None:
            self.stats["late"] += 1
            log.info("link_unmatched_response", link=self.name, mti=msg.mti, stan=msg.get(11))
            return
        waiter.response = msg
        waiter.event.set()

    async def _echo_loop(self, scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(max(1.0, self.echo_interval / 4))
            if trio.current_time() - self._last_traffic < self.echo_interval:
                continue
            if await self._management("301") is None:
                log.warning("link_echo_failed", link=self.name)
                scope.cancel()
                return

    def _next_mgmt_stan(self) -> str:
        if self.stan_source is not None:
            return self.stan_source()
        self._mgmt_stan = self._mgmt_stan % 999999 + 1
        return f"{self._mgmt_stan:06d}"

    async def _management(self, code: str) -> Message | None:
        msg = self.protocol.management(code, self._next_mgmt_stan(), _transmission_time())
        try:
            return await self._exchange(msg, require_up=False, timeout=self.management_timeout)
        except (LinkDown, OutcomeUnknown):
            return None

    async def request(self, msg: Message) -> Message:
        """Send a request and wait for its response. Raises LinkDown when the request certainly
        never left, OutcomeUnknown (LinkTimeout, LinkLost) when it may have."""
        return await self._exchange(msg, require_up=True, timeout=self.timeout)

    async def _exchange(self, msg: Message, *, require_up: bool, timeout: float) -> Message:
        outbox = self._outbox
        if outbox is None or (require_up and not self._up.is_set()):
            raise LinkDown(self.name)
        key = self.protocol.match_key(msg)
        if key in self._waiters:
            raise LinkDown(f"{self.name}: request {key} already in flight")
        waiter = _Waiter()
        self._waiters[key] = waiter
        try:
            frame = self.protocol.frame(msg)
            try:
                await outbox.send(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                # Part of the frame may have been written. Frames of other requests went down
                # with this one: tear the connection down, which wakes their waiters too.
                if self._outbox is outbox and self._connection is not None:
                    self._connection.cancel()
                raise LinkLost(f"{self.name}: {exc}") from exc
            self.stats["sent"] += 1
            with trio.move_on_after(timeout if math.isfinite(timeout) else math.inf):
                await waiter.event.wait()
            if waiter.response is not None:
                return waiter.response
            if not waiter.event.is_set():
                raise LinkTimeout(self.name)
            raise LinkLost(f"{self.name}: connection lost while waiting")
        finally:
            self._waiters.pop(key, None)


def _transmission_time() -> str:
    return dt.datetime.now(dt.UTC).strftime("%m%d%H%M%S")
