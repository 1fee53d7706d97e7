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
)


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


@attrs.frozen(kw_only=True)
class MerchantTerms:
    """Per-merchant overrides; None means the configured default."""

    mid: str
    cycle: str | None = None
    fee_rate: str | None = None
    d0_fee_rate: str | None = None
    min_payout: int | None = None
    require_operator: bool | None = attrs.field(
        default=None, converter=lambda v: None if v is None else bool(v)
    )
    supervisor_types: str | None = None
    updated_at: int = 0
