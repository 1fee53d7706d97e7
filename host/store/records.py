"""Frozen values the store returns (and the one it takes to journal a request).

Timestamps (``*_at``) are UTC epoch milliseconds; dates are ``YYYYMMDD``; amounts are integer
minor units. Key tokens are opaque ``KeyToken.to_text()`` strings and are left out of ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import operator
from typing import Any

import attrs

from codec import txntypes

# The journal's transaction types and settlement buckets come from the registry.
TXN_TYPES = txntypes.JOURNALLED
TXN_STATUSES = ("pending", "approved", "declined", "timeout", "reversed", "voided", "error")
KEY_MODES = ("001", "003", "004", "dukpt")
ROLES = ("operator", "supervisor")
CARD_GROUPS = ("domestic", "foreign")
# How the customer paid: a card, or a QR wallet. Each channel has its own fee rate in the
# merchant terms and its own line in a merchant settlement (host/merchant/settlement.py).
CHANNELS = ("card", "qr")
BATCH_STATUSES = ("open", "closed", "unbalanced", "flagged")

# Settlement: which approved transactions count as debits and which as credits.
DEBIT_TYPES = txntypes.DEBITS
CREDIT_TYPES = txntypes.CREDITS


def pan_fingerprint(pan: str, key: bytes) -> str:
    """A keyed hash of a PAN (HMAC-SHA-256, hex) that lets the journal match one card's rows
    without storing the PAN. The key is the caller's secret: without it the fingerprint cannot
    be checked against guessed PANs."""
    if len(key) < 16:
        raise ValueError("the fingerprint key must be at least 16 bytes")
    return hmac.new(key, pan.encode("ascii"), hashlib.sha256).hexdigest()


class PanFingerprinter:
    """``pan_fingerprint`` with the key fixed, for the host's hot path: the keyed HMAC state is
    built once and copied per PAN (``copy()`` skips hashing the padded key twice, which was
    most of the cost of a fresh ``hmac.new`` per purchase)."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the fingerprint key must be at least 16 bytes")
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(self, pan: str) -> str:
        h = self._keyed.copy()
        h.update(pan.encode("ascii"))
        return h.hexdigest()

    def __repr__(self) -> str:
        return "PanFingerprinter(<key>)"


def _json_in(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _secret():
    return attrs.field(default=None, repr=False)


@attrs.frozen
class Merchant:
    mid: str
    name: str
    mcc: str
    status: str
    created_at: int


@attrs.frozen
class Terminal:
    tid: str
    mid: str
    key_mode: str
    current_batch: str
    status: str
    created_at: int
    serial: str | None = None
    tmk_token: str | None = _secret()
    bdk_token: str | None = _secret()
    pik_token: str | None = _secret()
    mak_token: str | None = _secret()
    tdk_token: str | None = _secret()
    signed_on: bool = attrs.field(default=False, converter=bool)
    operator: str | None = None
    signed_on_at: int | None = None
    # A sign-on's keys while the terminal has not proven them (host/flow/management.py).
    pending_pik_token: str | None = _secret()
    pending_mak_token: str | None = _secret()
    pending_tdk_token: str | None = _secret()
    pending_operator: str | None = None
    pending_at: int | None = None  # host clock, epoch ms
    balance_entries: int | None = None  # field 54 entries this terminal takes (None: 1)
    master_tid: str | None = None  # the master of a secondary terminal (docs/tills.md)


@attrs.frozen
class Operator:
    tid: str
    operator_no: str
    role: str
    status: str
    created_at: int
    password_hash: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class NewTransaction:
    """A request about to be sent on: what ``insert_pending`` journals (status ``pending``)."""

    tid: str
    mid: str
    batch: str
    stan: str
    business_date: str
    txn_type: str = attrs.field(validator=attrs.validators.in_(TXN_TYPES))
    mti: str
    amount: int = attrs.field(default=0)
    currency: str = "156"
    processing_code: str | None = None
    condition_code: str | None = None
    pan_masked: str | None = attrs.field(default=None)
    pan_fingerprint: str | None = attrs.field(default=None, repr=False)
    card_group: str = attrs.field(default="domestic", validator=attrs.validators.in_(CARD_GROUPS))
    rrn: str | None = None
    original_id: int | None = None
    issuer_link: str | None = None
    issuer_stan: str | None = None
    requested_at: int | None = None  # default: the store's clock
    extra: dict[str, Any] | None = None
    master_tid: str | None = None  # the terminal's master, if it is a secondary (docs/tills.md)
    channel: str = attrs.field(default="card", validator=attrs.validators.in_(CHANNELS))

    @pan_masked.validator
    def _pan_is_masked(self, _attr, value):
        # 6 + 4 digits at most: refuse to journal what looks like a clear PAN.
        if value is not None and sum(c.isdigit() for c in value) > 10:
            raise ValueError("pan_masked shows more than 6 + 4 digits: mask the PAN first")

    @amount.validator
    def _amount_is_int(self, _attr, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"amount must be a non-negative int in minor units, got {value!r}")

    def __reduce__(self):
        # Two of these cross to the journal's writer process per purchase: a flat tuple pickles
        # and unpickles in half the time of attrs' state dict (the values were validated here).
        return _restore_new_transaction, _NEW_TRANSACTION_VALUES(self)


_NEW_TRANSACTION_FIELDS = tuple(a.name for a in attrs.fields(NewTransaction))
_NEW_TRANSACTION_VALUES = operator.attrgetter(*_NEW_TRANSACTION_FIELDS)


def _restore_new_transaction(*values: Any) -> NewTransaction:
    txn = object.__new__(NewTransaction)
    for name, value in zip(_NEW_TRANSACTION_FIELDS, values, strict=True):
        object.__setattr__(txn, name, value)
    return txn


@attrs.frozen(kw_only=True)
class Transaction:
    """One journal row."""

    id: int
    tid: str
    mid: str
    batch: str
    stan: str
    business_date: str
    txn_type: str
    mti: str
    processing_code: str | None
    condition_code: str | None
    amount: int
    currency: str
    pan_masked: str | None
    pan_fingerprint: str | None = attrs.field(repr=False)
    card_group: str
    rrn: str | None
    auth_code: str | None
    response_code: str | None
    status: str
    original_id: int | None
    issuer_link: str | None
    issuer_stan: str | None
    requested_at: int
    responded_at: int | None
    latency_ms: int | None
    settlement_date: str | None
    extra: dict[str, Any] | None = attrs.field(converter=_json_in)
    channel: str = "card"
    # The master the terminal had when this row was written (None: the terminal was no one's
    # secondary); the row rolls up under ``master_tid or tid`` (docs/tills.md).
    master_tid: str | None = None

    @property
    def rolls_up_to(self) -> str:
        return self.master_tid or self.tid

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the PAN is masked already (the journal never holds a clear PAN)."""
        return attrs.asdict(self, filter=lambda a, _v: a.name != "pan_fingerprint")


@attrs.frozen
class Reversal:
    id: int
    original_id: int
    reason: str
    created_at: int
    saf_id: int | None = None  # the SAF row queued with it, if any


@attrs.frozen(kw_only=True)
class SafItem:
    id: int
    transaction_id: int | None
    link: str
    kind: str
    payload: bytes = attrs.field(repr=False, converter=bytes)
    attempts: int
    next_attempt_at: int
    status: str
    last_error: str | None
    created_at: int
    acked_at: int | None


@attrs.frozen
class GroupTotals:
    """Settlement totals of one card group, in the shape of field 48's halves."""

    debit_amount: int = 0
    debit_count: int = 0
    credit_amount: int = 0
    credit_count: int = 0


@attrs.frozen
class BatchTotals:
    domestic: GroupTotals = GroupTotals()
    foreign: GroupTotals = GroupTotals()

    def to_dict(self) -> dict[str, dict[str, int]]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class Batch:
    tid: str
    batch: str
    status: str
    opened_at: int
    closed_at: int | None
    business_date: str
    host_totals: dict[str, Any] | None = attrs.field(converter=_json_in)
    terminal_totals: dict[str, Any] | None = attrs.field(converter=_json_in)


@attrs.frozen
class BatchUploadRecord:
    tid: str
    batch: str
    seq: int
    record: dict[str, Any] = attrs.field(converter=_json_in)
    agrees: bool = attrs.field(converter=bool)


@attrs.frozen
class BusinessDay:
    business_date: str
    settlement_date: str
    cutover_at: int | None
