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

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog

from codec import responses as codes
from codec.message import FieldValue, Message
from codec.subfields import Field60

if TYPE_CHECKING:
    from codec.framing import Envelope
    from codec.txntypes import TxnType
    from host.app import Host
    from host.clock import Moment
    from host.edge.server import Connection
    from host.merchant.risk import RiskHold
    from host.store.records import Merchant, Operator, Terminal, Transaction


log = structlog.get_logger("poshost.flow")


class Decline(Exception):
    """Ends a flow with a response code. `reason` is for the log line, never for the wire."""

    def __init__(self, code: str, reason: str = "", *, processing: int | None = None):
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason
        self.processing = processing


class NotIdentified(RuntimeError):
    """A step read the terminal or merchant before ``identify_terminal`` found them: a flow
    row in the wrong order, so a bug (the engine answers 96)."""


# -- the parts of an exchange -----------------------------------------------------------------
# Each part is what one concern of the flow learns and what later steps read; a step fills its
# part, and a reader gets a typed attribute instead of a string key in a shared bag.


@attrs.define
class Card:
    """The card, each reading done at most once per exchange: the PAN (field 2, else track 2;
    for a QR payment the customer's payment code, masked like a PAN), the clear track 2
    (decrypted when 53 says so), the keyed fingerprint; ``group`` is the settlement card group
    when a step knows it (a QR payment is domestic). Never in a repr."""

    pan: str | None = attrs.field(default=None, repr=False)
    track2: str | None = attrs.field(default=None, repr=False)
    fingerprint: str | None = attrs.field(default=None, repr=False)
    group: str | None = None


@attrs.define
class IssuerLeg:
    """What goes to the issuer and what came back. ``mti`` and ``extra`` override the request's
    MTI and add fields (90 naming an original); ``transmission`` is field 7, fixed when the
    request is journalled so a later void, completion or reversal names it exactly; ``tid`` is
    the terminal (41) the issuer knows the original under when that is another till (a master
    voiding its secondary's sale)."""

    mti: str | None = None
    tid: str | None = None
    extra: dict[int, FieldValue] | None = None
    transmission: str | None = None
    request: Message | None = None
    response: Message | None = None


@attrs.frozen
class ChildGuard:
    """The limit a void, refund or completion must keep against its original's other children,
    checked in the same database transaction as its insert (``insert_pending_child``): a
    second void (any sibling of ``sibling_types`` in ``statuses``), or refunds beyond
    ``max_amount``. ``code`` answers a refusal."""

    sibling_types: tuple[str, ...]
    code: str
    statuses: tuple[str, ...] = ("pending", "approved", "timeout")  # in flight, done, unknown
    max_amount: int | None = None


@attrs.define
class OriginalLink:
    """The transaction this one refers to (void, refund, completion, reversal): its journal
    row, the guard its insert keeps, what an approval marks it (``marks``: 'voided'), and for a
    reversal, the type the terminal says it reverses (3, 25, 60.1 of the original)."""

    row: Transaction | None = None
    guard: ChildGuard | None = None
    marks: str | None = None
    reverses: str | None = None


Failure = Literal["declined", "error", "timeout"]
Channel = Literal["card", "qr"]


@attrs.define
class JournalEntry:
    """This exchange's journal row: its id once inserted; ``retry_of`` when a repeated advice
    goes on under its first row; ``failure`` the status a non-approval records ('error': the
    link was down, 'timeout': the outcome is unknown); ``outcome_recorded`` once a step wrote
    the outcome itself (with a queued reversal), so ``journal_outcome`` leaves it alone;
    ``outcome_extra`` what the outcome adds to the row's extras (a QR sale's order numbers)."""

    id: int | None = None
    retry_of: Transaction | None = None
    failure: Failure = "declined"
    outcome_recorded: bool = False
    outcome_extra: dict[str, Any] | None = None


@attrs.define
class Exchange:
    """Everything one request gathers on its way through a flow."""

    envelope: Envelope
    request: Message
    txn: TxnType
    conn: Connection
    started: float
    found_terminal: Terminal | None = None  # set by identify_terminal, read as ``terminal``
    found_merchant: Merchant | None = None
    code: str | None = None
    reason: str = ""
    processing: int | None = None  # header nibble for the response (3 = sign on again)
    response_fields: dict[int, FieldValue | None] = attrs.field(factory=dict)
    rrn: str | None = None
    auth_code: str | None = None
    link: str | None = None
    channel: Channel = "card"  # how the customer pays: a card, or a wallet's QR (docs/qr.md)
    translated_pin: bytes | None = attrs.field(default=None, repr=False)
    # a transfer's payee card (registry ``payee`` field): clear only here and in the issuer
    # request; the journal keeps its mask (docs/terminal-dialect.md, "Transfer")
    payee_pan: str | None = attrs.field(default=None, repr=False)
    mac_ok: bool = False
    # The business date the exchange is journalled and answered under (15 of the response);
    # text (YYYYMMDD, MMDD) only where it meets the journal's SQL and the wire.
    business_date: dt.date | None = None
    moment: Moment | None = None  # the host's clock for this exchange, read once
    f60: Field60 | None = None  # field 60 parsed, once
    card: Card = attrs.field(factory=Card)
    issuer: IssuerLeg = attrs.field(factory=IssuerLeg)
    original: OriginalLink = attrs.field(factory=OriginalLink)
    journal: JournalEntry = attrs.field(factory=JournalEntry)
    risk: RiskHold | None = None  # the amounts check_limits reserved, until release_limits
    operator: Operator | None = None  # the operator check_operator accepted at sign-on
    response: Message | None = None  # built by respond, encoded by the dispatcher

    @property
    def terminal(self) -> Terminal:
        """The terminal ``identify_terminal`` found (every flow starts with that step)."""
        if self.found_terminal is None:
            raise NotIdentified("no terminal identified yet")
        return self.found_terminal

    @terminal.setter
    def terminal(self, terminal: Terminal) -> None:
        self.found_terminal = terminal

    @property
    def merchant(self) -> Merchant:
        if self.found_merchant is None:
            raise NotIdentified("no merchant identified yet")
        return self.found_merchant

    @merchant.setter
    def merchant(self, merchant: Merchant) -> None:
        self.found_merchant = merchant

    def decline(self, exc: Decline) -> None:
        self.code = exc.code
        self.reason = exc.reason
        if exc.processing is not None:
            self.processing = exc.processing

    @property
    def approved(self) -> bool:
        return self.code == "00"


Step = Callable[["Host", Exchange], Awaitable[None]]


@attrs.frozen
class Flow:
    name: str
    steps: tuple[Step, ...]
    always: tuple[Step, ...] = ()


async def run_flow(flow: Flow, host: Host, ex: Exchange) -> None:
    """Run the steps, then every ``always`` step whatever happened. Never raises but for
    cancellation."""
    await _run_steps(flow, flow.steps, host, ex, stop_at_decline=True)
    await _run_steps(flow, flow.always, host, ex, stop_at_decline=False)


async def _run_steps(
    flow: Flow, steps: tuple[Step, ...], host: Host, ex: Exchange, *, stop_at_decline: bool
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
