"""Frozen values of the merchant-operations tables (risk limits and events, merchant terms,
settlement records, activation codes, API tokens). Amounts are integer minor units (fen);
``*_at`` are UTC epoch milliseconds; dates ``YYYYMMDD``. Secrets are stored hashed and left out
of ``repr``."""

from __future__ import annotations

from typing import Any

import attrs

LIMIT_FIELDS = (
    "min_amount",
    "max_amount",
    "daily_amount",
    "monthly_amount",
    "velocity_count",
    "velocity_amount",
    "velocity_window",
    "refund_ratio_pct",
)
TERMS_FIELDS = (
    "cycle",
    "fee_rate",
    "d0_fee_rate",
    "min_payout",
    "require_operator",
    "supervisor_types",
    "qr_fee_rate",
    "qr_d0_fee_rate",
    # what a secondary terminal may undo (docs/tills.md)
    "secondary_may_void_others",
    "secondary_may_refund",
    "secondary_may_refund_others",
)
# Terms that are yes/no, stored as INTEGER 0/1 (None: the configured default).
BOOL_TERMS = (
    "require_operator",
    "secondary_may_void_others",
    "secondary_may_refund",
    "secondary_may_refund_others",
)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


@attrs.frozen(kw_only=True)
class RiskLimitRow:
    """One override row: ``scope`` 'mcc' (key = MCC) or 'merchant' (key = MID). A None field
    inherits from the level below (merchant <- MCC row <- config MCC <- config default)."""

    scope: str
    key: str
    min_amount: int | None = None
    max_amount: int | None = None
    daily_amount: int | None = None
    monthly_amount: int | None = None
    velocity_count: int | None = None
    velocity_amount: int | None = None
    velocity_window: int | None = None
    refund_ratio_pct: int | None = None
    updated_at: int = 0

    def values(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in LIMIT_FIELDS if getattr(self, f) is not None}


@attrs.frozen(kw_only=True)
class RiskEvent:
    id: int
    mid: str
    tid: str
    business_date: str
    txn_type: str
    amount: int
    rule: str
    response_code: str
    detail: str
    pan_masked: str | None
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class SecurityEvent:
    """Refused or suspicious attempts of one kind from one peer (and terminal), counted over
    one flush interval of the host's security monitor."""

    id: int
    kind: str
    peer: str | None
    tid: str | None
    detail: str
    count: int
    first_at: int
    last_at: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class MerchantTerms:
    """Per-merchant overrides; None means the configured default."""

    mid: str
    cycle: str | None = None
    fee_rate: str | None = None
    d0_fee_rate: str | None = None
    min_payout: int | None = None
    require_operator: bool | None = attrs.field(default=None, converter=_optional_bool)
    supervisor_types: str | None = None
    secondary_may_void_others: bool | None = attrs.field(default=None, converter=_optional_bool)
    secondary_may_refund: bool | None = attrs.field(default=None, converter=_optional_bool)
    secondary_may_refund_others: bool | None = attrs.field(default=None, converter=_optional_bool)
    updated_at: int = 0
    qr_fee_rate: str | None = None
    qr_d0_fee_rate: str | None = None


def fee_for(gross: int, rate_pct: str) -> int:
    """The fee on a merchant's daily gross: gross x rate / 100, rounded HALF UP to the fen
    (``decimal.ROUND_HALF_UP``: 0.5 fen goes away from zero; a negative gross — more refunds
    than sales — gives a negative fee, the fee handed back). One rounding per merchant and
    business date, never per transaction; no floats anywhere."""
    from decimal import ROUND_HALF_UP, Decimal

    fee = (Decimal(gross) * Decimal(rate_pct) / Decimal(100)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return int(fee)


def yuan(fen: int) -> str:
    """Minor units formatted: -1234 -> '-12.34'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@attrs.frozen(kw_only=True)
class MerchantSettlement:
    """One merchant's settlement record for one business date (unique per (mid, date))."""

    id: int
    mid: str
    business_date: str
    cycle: str
    payout_date: str
    debit_count: int
    debit_amount: int
    credit_count: int
    credit_amount: int
    gross: int  # debit_amount - credit_amount
    fee_rate: str  # percent
    fee: int
    net: int  # gross - fee
    carried_in: int  # the previous record's carried_out
    payout: int  # net + carried_in when that reaches the minimum payout, else 0
    carried_out: int  # net + carried_in - payout
    status: str  # paid | carried
    created_at: int
    # One line per payment channel with counted transactions (card, qr): each channel's fee
    # at its own rate. Empty for records made before channels existed (all cards, fee_rate).
    channels: tuple[ChannelSettlement, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class ChannelSettlement:
    """A channel's share of a merchant settlement record."""

    channel: str
    debit_count: int
    debit_amount: int
    credit_count: int
    credit_amount: int
    gross: int
    fee_rate: str  # percent
    fee: int


@attrs.frozen
class DayTotals:
    debit_count: int = 0
    debit_amount: int = 0
    credit_count: int = 0
    credit_amount: int = 0

    @property
    def gross(self) -> int:
        return self.debit_amount - self.credit_amount


@attrs.frozen(kw_only=True)
class TillTotals:
    """One terminal's settled approved rows of a business date, under the master they were
    journalled with (a terminal moved during the day has one line per master)."""

    mid: str
    tid: str
    master_tid: str | None
    debit_count: int = 0
    debit_amount: int = 0
    credit_count: int = 0
    credit_amount: int = 0

    @property
    def rolls_up_to(self) -> str:
        return self.master_tid or self.tid

    @property
    def gross(self) -> int:
        return self.debit_amount - self.credit_amount


@attrs.frozen(kw_only=True)
class Device:
    serial: str
    transport_token: str = attrs.field(repr=False)
    created_at: int


@attrs.frozen(kw_only=True)
class ActivationCode:
    id: int
    tid: str
    code_hash: str = attrs.field(repr=False)
    serial: str | None
    expires_at: int
    tries: int
    max_tries: int
    used_at: int | None
    created_at: int


@attrs.frozen(kw_only=True)
class ApiToken:
    id: int
    mid: str
    token_hash: str = attrs.field(repr=False)
    label: str | None
    created_at: int
    revoked_at: int | None
    expires_at: int | None = None
