"""From one framed request to one framed response: decode, identify, run the flow, encode.

Bad content inside a well-formed frame gets a response with a defined code (30 format error,
12 invalid transaction, 40 function not supported) when the MTI can be read; otherwise the
connection is closed. One log line per exchange: masked dumps, terminal, STAN, type, code,
latency.
"""

from __future__ import annotations

import structlog
import trio

from codec import terminal as terminal_codec
from codec.dump import masked_fields
from codec.errors import CodecError
from codec.framing import Envelope
from codec.message import Message, response_mti
from codec.txntypes import UnknownTransaction, identify
from host.flow import Exchange, run_flow
from host.server import CloseConnection, Connection
from host.steps import encode_response

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

    async def __call__(self, envelope: Envelope, conn: Connection) -> Envelope | None:
        started = trio.current_time()
        try:
            request = terminal_codec.decode(envelope.payload)
        except CodecError as exc:
            return self._format_error(envelope, conn, exc)
        try:
            txn = identify(request)
        except UnknownTransaction as exc:
            return self._refuse(envelope, request, "12", str(exc), started)
        flow = self.host.flows.get(txn.name)
        if flow is None:
            return self._refuse(envelope, request, "40", f"{txn.name} not supported", started)
        ex = Exchange(envelope=envelope, request=request, txn=txn, conn=conn, started=started)
        try:
            await run_flow(flow, self.host, ex)
            payload = encode_response(self.host, ex)
        except (CodecError, ValueError, KeyError) as exc:
            # A request whose content the flow could not handle: answer 30, keep serving.
            log.warning("txn_failed", type=txn.name, error=f"{type(exc).__name__}: {exc}")
            return self._refuse(envelope, request, "30", str(exc), started)
        response: Message = ex.notes["response"]
        log.info(
            "txn",
            tid=request.get(41),
            stan=request.get(11),
            type=txn.name,
            code=response.get(39),
            reason=ex.reason or None,
            latency_ms=round((trio.current_time() - started) * 1000, 2),
            request=masked_fields(request),
            response=masked_fields(response),
        )
        return envelope.response(processing=ex.processing, payload=payload)

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
        response = Message(response_mti(mti), {39: "30"})
        return envelope.response(payload=terminal_codec.encode(response))
