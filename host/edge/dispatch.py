"""From one framed request to one framed response: decode, identify, run the flow, encode.

Bad content inside a well-formed frame gets a response with a defined code (30 format error,
12 invalid transaction, 40 function not supported) when the MTI can be read; otherwise the
connection is closed. One log line per exchange: terminal, STAN, type, code, amount, masked
PAN, latency; the masked dumps of request and response only when the answer is not 00 (or for
every exchange with ``log.dumps = "all"``, ``serve --trace``). Two dumps were a tenth of the
host's CPU per purchase, and an approval's line is read by nobody field by field.
"""

from __future__ import annotations

import structlog
import trio

from codec import terminal as terminal_codec
from codec.dump import mask_pan, masked_fields
from codec.errors import CodecError
from codec.framing import Envelope
from codec.message import Message, response_mti
from codec.txntypes import REQUEST_MTIS, UnknownTransaction, identify
from host.edge.server import CloseConnection, Connection
from host.flow.engine import Exchange, run_flow
from host.flow.steps import encode_response, queue_reversal
from host.hsm import HsmUnavailable
from keys.errors import KeysError

log = structlog.get_logger("poshost.txn")


def _readable_request_mti(payload: bytes) -> str | None:
    if len(payload) < 2:
        return None
    mti = payload[:2].hex()
    if not mti.isdecimal():
        return None
    try:
        response_mti(mti)
    except ValueError:
        return None
    return mti


class Dispatcher:
    def __init__(self, host) -> None:
        self.host = host
        self.dump_all = host.settings.log.dumps == "all"

    async def __call__(self, envelope: Envelope, conn: Connection) -> Envelope | None:
        started = trio.current_time()
        try:
            request = terminal_codec.decode(envelope.payload)
        except CodecError as exc:
            return self._format_error(envelope, conn, exc)
        if request.mti not in REQUEST_MTIS:
            # A response (0210, 0810...) or an unknown class is not a request: no flow, no
            # journal row, no issuer traffic; there is nothing to answer, so close.
            tid = request.get(41)
            raise CloseConnection(
                f"MTI {request.mti} is not a request (terminal {tid})", kind="not_a_request"
            )
        try:
            txn = identify(request)
        except UnknownTransaction as exc:
            return self._refuse(envelope, request, "12", str(exc), started)
        flow = self.host.flows.get(txn.name)
        if flow is None:
            return self._refuse(envelope, request, "40", f"{txn.name} not supported", started)
        ex = Exchange(envelope=envelope, request=request, txn=txn, conn=conn, started=started)
        await run_flow(flow, self.host, ex)
        try:
            payload = await encode_response(self.host, ex)
        except (CodecError, ValueError, KeyError, KeysError, HsmUnavailable) as exc:
            return await self._unanswerable(envelope, request, ex, exc, started)
        response = ex.response
        assert response is not None  # encode_response refuses an exchange without one
        code = response.get(39)
        latency_ms = round((trio.current_time() - started) * 1000, 2)
        if code != "00" or self.dump_all:
            log.info("txn", tid=request.get(41), stan=request.get(11), type=txn.name, code=code,
                     reason=ex.reason or None, latency_ms=latency_ms,
                     request=masked_fields(request), response=masked_fields(response))  # fmt: skip
        else:
            pan = ex.card.pan
            log.info("txn", tid=request.get(41), stan=request.get(11), type=txn.name, code=code,
                     amount=request.get(4), pan=mask_pan(pan) if pan else None,
                     latency_ms=latency_ms)  # fmt: skip
        return envelope.response(processing=ex.processing, payload=payload)

    async def _unanswerable(self, envelope, request: Message, ex: Exchange, exc, started):
        """The flow ran but its answer cannot be encoded (a value from the issuer that does not
        fit the terminal dialect, or a bug). The terminal gets 96; an approval it will never
        see is reversed at the issuer, so the card is not left debited."""
        log.error("response_unencodable", type=ex.txn.name, code=ex.code,
                  error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        if ex.approved and ex.txn.reversible and ex.journal.id is not None and ex.link:
            await queue_reversal(self.host, ex, reason="answer could not be sent to terminal")
        return self._refuse(envelope, request, "96", str(exc), started)

    def _refuse(self, envelope, request: Message, code: str, why: str, started) -> Envelope:
        response = request.response(code)
        log.info(
            "txn",
            tid=request.get(41),
            stan=request.get(11),
            type=None,
            code=code,
            reason=why,
            latency_ms=round((trio.current_time() - started) * 1000, 2),
            request=masked_fields(request),
        )
        return envelope.response(payload=terminal_codec.encode(response))

    def _format_error(self, envelope: Envelope, conn: Connection, exc: CodecError) -> Envelope:
        """A payload that does not decode is a security event, not a log line: a peer can send
        thousands. Answered 30 when the MTI can be read; else the server closes and records."""
        mti = _readable_request_mti(envelope.payload)
        if mti is None:
            raise CloseConnection(f"MTI unreadable, {exc}", kind="format_error")
        self.host.security.record("format_error", peer=conn.peer, detail=f"MTI {mti}, {exc}")
        readable = terminal_codec.readable_fields(envelope.payload)
        echoed = {n: readable[n] for n in (3, 4, 11, 41, 42) if n in readable}
        response = Message(response_mti(mti), {**echoed, 39: "30"})
        return envelope.response(payload=terminal_codec.encode(response))
