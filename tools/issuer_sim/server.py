"""The simulator's Trio server.

One task per connection; each request in its own task, so a slow rule or hook never holds up
the others; responses go out in completion order, writes serialized by a per-connection lock.
Bad content in a frame is answered 30 (see tools.issuer_sim.wire); only broken framing (a zero
or oversize length prefix) or a frame left half-sent for ``frame_timeout`` closes a connection.

Per request: rules (first match) -> injected latency + the rule's delay -> injected disconnect /
drop -> the rule's action -> the Python hook -> default processing (network management, or the
ledger). Failure injection applies to every message, 0800s included: it simulates the link.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable

import structlog
import trio

from codec import issuer
from codec.errors import CodecError, FrameError
from codec.framing import LengthPrefixedDecoder, prefix_length
from codec.message import Message, response_mti
from host.harness import Outbox
from tools.issuer_sim import decide as d
from tools.issuer_sim import wire
from tools.issuer_sim.cards import load_cards, mask_pan
from tools.issuer_sim.config import SimConfig, parse_hostport
from tools.issuer_sim.ledger import Ledger
from tools.issuer_sim.recorder import Recorder
from tools.issuer_sim.rules import RulesError, first_match, load_rules
from tools.issuer_sim.script import CLOSE, DROP, HookContext, load_hook
from tools.issuer_sim.security import IssuerKeys
from tools.issuer_sim.settings import FailureSettings

log = structlog.get_logger("issuer_sim")

ECHO = (2, 3, 4, 7, 11, 32, 37, 41, 42, 49)
NETWORK_ECHO = (7, 11, 32, 41, 70)
RESPONSE_CODE = re.compile(r"[0-9A-Z]{2}")


def _auth_code(rng: random.Random) -> str:
    return f"{rng.randrange(1_000_000):06d}"


class _Close(Exception):
    """Raised inside a request task to close its connection."""


class Connection:
    def __init__(self, number: int, stream: trio.SocketStream, scope: trio.CancelScope):
        self.number = number
        self.stream = stream
        self.scope = scope
        self.outbox = Outbox(stream)  # answers ready in one tick leave in one send
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.scope.cancel()

    async def send(self, msg: Message) -> None:
        await self.outbox.send(prefix_length(issuer.encode(msg)))

    async def send_encoded(self, body: bytes) -> None:
        await self.outbox.send(prefix_length(body))


class Simulator:
    """The issuer simulator; ``await nursery.start(sim.serve)`` returns the bound port."""

    def __init__(self, config: SimConfig | None = None, *, clock: Callable[[], float] = time.time):
        self.config = config or SimConfig.load()
        self.settings: FailureSettings = self.config.failure
        self.rng = random.Random(self.config.seed)
        self.ledger = Ledger(self.config.state, clock=clock)
        if self.ledger.is_empty():
            self.ledger.reset(load_cards(self.config.cards))
        self.rules = load_rules(self.config.rules) if self.config.rules else []
        self.hook = load_hook(self.config.script) if self.config.script else None
        self.keys = IssuerKeys(self.config.keys)
        self.recorder = Recorder(self.config.record) if self.config.record else None
        self.hook_state: dict = {}
        self.stats: Counter[str] = Counter()
        self.port: int | None = None
        self.control_port: int | None = None
        self._numbers = itertools.count(1)

    # ---- the API other streams' tests use -------------------------------------------------

    async def db(self, fn: Callable, *args):
        """Run a ledger call on the event loop, one at a time by construction.

        The ledger is local SQLite without fsync on commit (WAL, synchronous=NORMAL): a call
        takes tens of microseconds, less than handing it to a worker thread and back cost
        (two cross-thread wake-ups per request, measured as most of the simulator's CPU per
        request under load). Being inline also keeps a request's ledger effect and its answer
        in arrival order."""
        await trio.lowlevel.checkpoint()
        return fn(*args)

    async def card(self, pan: str) -> d.CardState | None:
        return await self.db(self.ledger.card, pan)

    async def holds(self, pan: str) -> list[d.Hold]:
        return await self.db(self.ledger.holds, pan)

    async def reset(self) -> None:
        cards = load_cards(self.config.cards)
        await self.db(self.ledger.reset, cards)

    def reload_rules(self) -> int:
        """Read the rules file again (SIGHUP, ``POST /reload``). A file with an error leaves
        the rules in force unchanged and raises RulesError saying file, line and rule."""
        if self.config.rules is None:
            raise RulesError("no rules file configured (--rules)")
        try:
            rules = load_rules(self.config.rules)
        except RulesError as e:
            log.error("rules not reloaded, keeping the old ones", error=str(e))
            raise
        self.rules = rules
        self.stats["rule_reloads"] += 1
        log.info("rules reloaded", file=str(self.config.rules), rules=len(rules))
        return len(rules)

    def update_settings(self, changes: dict) -> FailureSettings:
        self.settings = self.settings.updated(changes)
        log.info("settings changed", **self.settings.to_json())
        return self.settings

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        self.ledger.close()

    # ---- serving -------------------------------------------------------------------------

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        host, port = parse_hostport(self.config.listen)
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                if self.config.control:
                    from tools.issuer_sim.control import serve_control

                    self.control_port = await nursery.start(
                        serve_control, self, self.config.control
                    )
                await nursery.start(trio.serve_listeners, self._connection, listeners)
                log.info(
                    "issuer simulator listening",
                    listen=f"{host}:{self.port}",
                    control=self.control_port,
                    cards=len(await self.db(self.ledger.cards)),
                    rules=len(self.rules),
                    script=str(self.config.script) if self.config.script else None,
                    **self.settings.to_json(),
                )
                task_status.started(self.port)
        finally:
            self.close()

    async def _connection(self, stream: trio.SocketStream) -> None:
        number = next(self._numbers)
        self.stats["connections"] += 1
        peer = _peer(stream)
        log.info("connection opened", conn=number, peer=peer)
        decoder = LengthPrefixedDecoder(self.config.max_frame)
        reason = "peer closed"
        try:
            async with trio.open_nursery() as nursery:
                conn = Connection(number, stream, nursery.cancel_scope)
                while True:
                    data = await self._receive(stream, decoder)
                    if data is None:
                        self.stats["frame_timeouts"] += 1
                        reason = f"half-sent frame: no byte for {self.config.frame_timeout:g} s"
                        log.warning("half-sent frame timed out, closing", conn=number)
                        break
                    if not data:
                        break
                    try:
                        bodies = decoder.feed(data)
                    except FrameError as e:  # the stream is out of step: nothing else to do
                        self.stats["malformed"] += 1
                        reason = f"bad framing: {e}"
                        log.warning("bad framing, closing", conn=number, error=str(e))
                        break
                    for body in bodies:
                        self.stats["requests"] += 1
                        self._accept(conn, nursery, body)
                nursery.cancel_scope.cancel()
            if conn.closed:
                reason = "closed by rule or injection"
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            reason = f"connection error: {e!r}"
        except Exception:  # never let one connection bring the server down
            log.exception("connection failed", conn=number)
            reason = "internal error"
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            log.info("connection closed", conn=number, reason=reason)

    async def _receive(self, stream: trio.SocketStream, decoder: LengthPrefixedDecoder):
        """The next bytes; None when a frame was begun and no byte came for frame_timeout
        (a peer that stopped mid-frame would otherwise hold the connection for ever)."""
        timeout = self.config.frame_timeout if decoder.buffered else math.inf
        with trio.move_on_after(timeout):
            return await stream.receive_some(65536)
        return None

    def _accept(self, conn: Connection, nursery: trio.Nursery, body: bytes) -> None:
        """Start the request task for one frame. A frame the codec refuses is read again
        forgivingly (tools.issuer_sim.wire): ISO-only fields are ignored, bad content is
        answered 30, and only a frame without a request MTI goes unanswered."""
        try:
            msg = issuer.decode(body)
        except CodecError:
            frame = wire.read(body)
            if not frame.answerable:
                self._refuse(conn, frame)
                return
            msg = frame.message
            if frame.ignored:
                log.info("fields ignored", conn=conn.number, mti=msg.mti, fields=frame.ignored)
            if frame.problems:
                nursery.start_soon(self._format_error, conn, msg, frame.problems)
                return
        if not wire.Frame(msg.mti, {}).answerable:
            self._refuse(conn, wire.Frame(msg.mti, msg.fields, (), ("not a request MTI",)))
            return
        nursery.start_soon(self._request, conn, msg)

    def _refuse(self, conn: Connection, frame: wire.Frame) -> None:
        """No answer is possible (no request MTI to answer): count, log, record; keep serving."""
        self.stats["refused"] += 1
        log.warning("frame refused", conn=conn.number, mti=frame.mti, problems=frame.problems)
        if self.recorder is not None:
            self.recorder.record(
                conn=conn.number,
                request=frame.message,
                response=None,
                outcome="refused",
                elapsed=0.0,
                error="; ".join(frame.problems),
            )

    async def _format_error(self, conn: Connection, msg: Message, problems) -> None:
        """Bad content in a request: 30, echoing what could be read, and nothing else."""
        t0 = trio.current_time()
        response, outcome = self.coded_response(msg, "30"), "format error"
        self.stats["format_errors"] += 1
        try:
            await conn.send(response)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            outcome = "unsent"
        finally:
            self.stats[outcome] += 1
            elapsed = trio.current_time() - t0
            error = "; ".join(problems)
            self._log_exchange(conn, msg, response, outcome, elapsed, None, False, error)

    async def _request(self, conn: Connection, msg: Message) -> None:
        t0 = trio.current_time()
        arrived = time.time()  # for the recording: the order requests came in
        rule = first_match(self.rules, msg, self.rng) if self.rules else None
        settings = self.settings
        outcome, response, used_hook, error = "answered", None, False, None
        try:
            delay = settings.latency.sample(self.rng)
            if rule is not None and rule.delay is not None:
                delay += rule.delay.sample(self.rng)
            if delay > 0:
                await trio.sleep(delay)
            if settings.disconnect_rate and self.rng.random() < settings.disconnect_rate:
                raise _Close
            if settings.drop_rate and self.rng.random() < settings.drop_rate:
                outcome = "dropped"
            elif rule is not None and rule.close:
                raise _Close
            elif rule is not None and rule.drop:
                outcome = "dropped"
            elif rule is not None and rule.response is not None:
                response = self.coded_response(msg, rule.response)
            else:
                if self.hook is not None:
                    used_hook = True
                    result, error = await self._run_hook(conn, msg)
                    if result is DROP:
                        outcome = "dropped"
                    elif result is CLOSE:
                        raise _Close
                    elif isinstance(result, Message):
                        response = result
                if response is None and outcome == "answered":
                    response = await self.process(msg)
            if response is not None:
                response, body, problem = self._sendable(msg, response)
                error = error or problem
                await conn.send_encoded(body)
        except _Close:
            outcome = "closed"
            conn.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            outcome = "unsent"
        except Exception as e:  # a bug of ours: no answer, keep going
            outcome = "error"
            response = None
            log.exception("request failed", conn=conn.number, mti=msg.mti, error=str(e))
        finally:
            self.stats[outcome] += 1
            elapsed = trio.current_time() - t0
            self._log_exchange(
                conn, msg, response, outcome, elapsed, rule, used_hook, error, arrived=arrived
            )

    async def _run_hook(self, conn: Connection, msg: Message):
        """(what the hook asked for, an error text). A hook that raises or returns something
        that is not a response code, a Message, None, DROP or CLOSE gets the request a 96, and
        one log line saying what it did, so a script's bug is visible, not a silent timeout."""
        try:
            result = await self.hook(msg, self._hook_context(conn))
        except Exception as e:
            self.stats["hook_errors"] += 1
            error = f"on_request raised {type(e).__name__}: {e}"
            log.error("hook failed, answering 96", conn=conn.number, mti=msg.mti, error=error)
            return self.coded_response(msg, "96"), error
        if result is None or result is DROP or result is CLOSE or isinstance(result, Message):
            return result, None
        if isinstance(result, str) and RESPONSE_CODE.fullmatch(result):
            return self.coded_response(msg, result), None
        self.stats["hook_errors"] += 1
        error = f"on_request returned {result!r}, not a 2-character response code or a Message"
        log.error("hook answer refused, answering 96", conn=conn.number, mti=msg.mti, error=error)
        return self.coded_response(msg, "96"), error

    def _sendable(self, msg: Message, response: Message) -> tuple[Message, bytes, str | None]:
        """(response, its encoding, error): the response with ISO 8583:1987's MTI (a repeat
        0401 is answered 0410, not 0411), or a 96 when it cannot be encoded (a hook's Message
        with a bad field)."""
        if response.mti == response_mti(msg.mti):
            response = response.with_mti(answer_mti(msg.mti))
        try:
            return response, issuer.encode(response), None
        except CodecError as e:
            self.stats["hook_errors"] += 1
            error = f"response cannot be encoded: {e}"
            log.error("unencodable response, answering 96", mti=msg.mti, error=error)
            response = self.coded_response(msg, "96")
            return response, issuer.encode(response), error

    def _log_exchange(
        self, conn, msg, response, outcome, elapsed, rule, used_hook, error=None, arrived=None
    ) -> None:
        pan = msg.get(2)
        log.info(
            "exchange",
            conn=conn.number,
            mti=msg.mti,
            stan=msg.get(11),
            tid=msg.get(41),
            pan=mask_pan(pan) if isinstance(pan, str) else None,
            amount=msg.get(4),
            nmc=msg.get(70),
            rsp=response.get(39) if response is not None else None,
            outcome=outcome,
            rule=rule.name if rule is not None else None,
            hook=used_hook,
            error=error,
            ms=round(elapsed * 1000, 1),
        )
        if self.recorder is not None:
            self.recorder.record(
                conn=conn.number,
                request=msg,
                response=response,
                outcome=outcome,
                elapsed=elapsed,
                rule=rule.name if rule is not None else None,
                hook=used_hook,
                error=error,
                arrived=arrived,
            )

    def _hook_context(self, conn: Connection) -> HookContext:
        return HookContext(
            state=self.hook_state,
            connection=conn.number,
            settings=self.settings,
            default=self.process,
            card=self.card,
        )

    # ---- default processing --------------------------------------------------------------

    def coded_response(self, msg: Message, code: str) -> Message:
        """A response with a given code and no ledger effect (rules, hooks, format errors)."""
        msg = msg.with_mti(base_request_mti(msg.mti))
        if msg.mti[:2] == "08":
            return msg.response(code, echo=NETWORK_ECHO)
        extra = {38: _auth_code(self.rng)} if code == "00" else None
        return msg.response(code, echo=ECHO, extra=extra)

    async def process(self, msg: Message) -> Message:
        """The default response to a request, with its ledger effect applied exactly once."""
        if msg.mti[:2] == "08":
            return self._network(msg)
        req = d.parse_request(msg)
        msg = msg.with_mti(base_request_mti(msg.mti))  # answers: 0401 -> 0410 (ISO 8583:1987)
        if req.kind == d.NETWORK:
            return msg.response("12", echo=NETWORK_ECHO)
        if missing_fields(req):
            return msg.response("30", echo=ECHO)
        pin_block = msg.get(52)

        def pin_check(card: d.CardState) -> bool:
            return self.keys.verify_pin(pin_block, card.pan, card.pvki, card.pvv)

        outcome = await self.db(
            self.ledger.process, req, pin_check, self.config.completion_tolerance_pct
        )
        extra: dict = {}
        if outcome.auth_code:
            extra[38] = outcome.auth_code
        if outcome.balances:
            extra[54] = outcome.balances
        return msg.response(outcome.code, echo=ECHO, extra=extra or None)

    def _network(self, msg: Message) -> Message:
        code70 = msg.get(70)
        if code70 in ("001", "002", "301"):
            return msg.response("00", echo=NETWORK_ECHO)
        if code70 == "101":
            data = str(msg.get(48) or "")
            if len(data) != 38:
                return msg.response("30", echo=NETWORK_ECHO)
            ok = self.keys.exchange_zpk(data[:32], data[32:])
            if not ok:
                return msg.response("A7", echo=NETWORK_ECHO)
            log.info("zpk changed", kcv=data[32:].upper())
            return msg.response("00", echo=NETWORK_ECHO, extra={48: data[32:].upper()})
        return msg.response("12", echo=NETWORK_ECHO)


def base_request_mti(mti: str) -> str:
    """The request MTI with the repeat flag cleared (0401 -> 0400): its answer is then the
    ISO 8583:1987 one (0410), which strict clients expect; other MTIs unchanged."""
    return mti[:3] + "0" if mti[3:] == "1" and mti[2] in "02468" else mti


def answer_mti(mti: str) -> str:
    """0200 -> 0210, 0401 -> 0410, 0421 -> 0430, 0221 -> 0230."""
    return response_mti(base_request_mti(mti))


def missing_fields(req: d.AuthRequest) -> list[int]:
    """Mandatory fields a financial request lacks (each makes it a 30): 3, 11 and 41 always;
    a card number (2, or a track 2 to take it from) unless it is a reversal; a transfer's
    payee (103)."""
    missing = [n for n, v in ((3, req.proc), (11, req.stan), (41, req.tid)) if not v]
    if req.kind != d.REVERSAL and not req.pan:
        missing.append(2)
    if req.kind == d.TRANSFER and not req.payee:
        missing.append(103)
    return missing


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "?"


async def run_simulator(config: SimConfig | None = None, *, task_status=trio.TASK_STATUS_IGNORED):
    """Run a simulator until cancelled; ``await nursery.start(run_simulator, config)`` returns
    the bound port. For access to balances and holds, build a :class:`Simulator` and start
    ``sim.serve`` instead."""
    sim = Simulator(config)
    await sim.serve(task_status=task_status)
