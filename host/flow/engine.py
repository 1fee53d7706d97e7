"""The flow engine: a transaction type names a flow, a flow is an ordered list of small steps.

A step is an async function ``step(host, ex)`` that reads and updates the exchange. A step that
decides the outcome raises ``Decline(code)``; the remaining steps are skipped, but the flow's
``always`` steps (record the outcome, build and MAC the response) still run, so a declined
transaction is journalled and answered exactly like an approved one. Any other exception is a
bug: it becomes 96 and the ``always`` steps run all the same (jPOS's abort guarantee), so no row
stays ``pending`` and no risk reservation leaks. (The issuer step itself turns any failure
after its request may have left into 98 and a queued reversal.) New transaction types are
new table rows made of steps; the engine never learns their names (jPOS calls steps
"participants").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from codec import responses as codes
from codec.message import FieldValue, Message

if TYPE_CHECKING:
    from codec.framing import Envelope
    from codec.txntypes import TxnType
    from host.edge.server import Connection


log = structlog.get_logger("poshost.flow")


class Decline(Exception):
    """Ends a flow with a response code. `reason` is for the log line, never for the wire."""

    def __init__(self, code: str, reason: str = "", *, processing: int | None = None):
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason
        self.processing = processing


@attrs.define
class Exchange:
    """Everything one request gathers on its way through a flow."""

    envelope: Envelope
    request: Message
    txn: TxnType
    conn: Connection
    started: float
    terminal: Any = None  # store record of the terminal
    merchant: Any = None
    code: str | None = None
    reason: str = ""
    processing: int | None = None  # header nibble for the response (3 = sign on again)
    response_fields: dict[int, FieldValue | None] = attrs.field(factory=dict)
    journal_id: int | None = None
    original: Any = None  # journal record of the original (void, reversal, completion...)
    rrn: str | None = None
    auth_code: str | None = None
    link: str | None = None
    issuer_request: Message | None = None
    issuer_response: Message | None = None
    translated_pin: bytes | None = None
    mac_ok: bool = False
    business_date: str = ""
    moment: Any = None  # the host's clock for this exchange (host.app.Moment), read once
    notes: dict[str, Any] = attrs.field(factory=dict)

    def decline(self, exc: Decline) -> None:
        self.code = exc.code
        self.reason = exc.reason
        if exc.processing is not None:
            self.processing = exc.processing

    @property
    def approved(self) -> bool:
        return self.code == "00"


Step = Callable[[Any, Exchange], Awaitable[None]]


@attrs.frozen
class Flow:
    name: str
    steps: tuple[Step, ...]
    always: tuple[Step, ...] = ()


async def run_flow(flow: Flow, host: Any, ex: Exchange) -> None:
    """Run the steps, then every ``always`` step whatever happened. Never raises but for
    cancellation."""
    await _run_steps(flow, flow.steps, host, ex, stop_at_decline=True)
    await _run_steps(flow, flow.always, host, ex, stop_at_decline=False)


async def _run_steps(
    flow: Flow, steps: tuple[Step, ...], host: Any, ex: Exchange, *, stop_at_decline: bool
) -> None:
    for step in steps:
        try:
            await step(host, ex)
        except Decline as exc:
            ex.decline(exc)
            if stop_at_decline:
                return
        except Exception as exc:
            log.exception("step_failed", flow=flow.name, step=step.__name__)
            ex.decline(
                Decline(codes.SYSTEM_MALFUNCTION, f"{type(exc).__name__} in {step.__name__}")
            )
            if stop_at_decline:
                return


FlowTable = Mapping[str, Flow]
