"""Operators at sign-on, the supervisor role, and a merchant's terms.

Sign-on field 63 (request): the operator number an3, then the operator's password (ans, up to
12 characters; our extension — the dialect has only the number). The host checks it against the
scrypt hash in ``operators`` (``poshost estate operator add``):

* 55 — unknown operator or wrong password (one code for both, so a caller learns nothing about
  which operators exist);
* 58 — the operator is disabled.

Whether a terminal must name a valid operator with the password is a merchant term
(``require_operator``, default ``merchant.require_operator``). When it is off, a sign-on that
names no operator, or one the host does not know, is accepted as before; a known operator
that is disabled is still refused (58) and a password, when one is sent, is still checked (55).

Supervisor role: the transaction types listed in the merchant's ``supervisor_types`` (e.g.
``void,refund``) need the operator signed on at that terminal to be a supervisor; otherwise 58.

Merchant terms (table ``merchant_terms``, ``poshost estate terms set``) override the
``[merchant]`` defaults of the config field by field: settlement cycle (T1 / D0), fee rates,
minimum payout, operator rules, what a secondary terminal may undo (docs/tills.md). Each payment
channel has its own fee rate: ``fee_rate`` / ``d0_fee_rate`` for cards, ``qr_fee_rate`` /
``qr_d0_fee_rate`` for QR wallet payments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio

from codec import responses as codes
from host.config import MerchantSettings
from host.flow.engine import Decline, Exchange
from host.store.errors import NotFound
from host.store.passwords import verify_password

if TYPE_CHECKING:
    from host.app import Host
    from host.store.merchant_records import MerchantTerms
    from host.store.records import Operator

log = structlog.get_logger("poshost.operators")


@attrs.frozen
class Terms:
    cycle: str
    fee_rate: str  # percent, decimal text: "0.60"
    d0_fee_rate: str
    min_payout: int
    require_operator: bool
    supervisor_types: tuple[str, ...]
    # what a secondary terminal may undo (host/merchant/tills.py, docs/tills.md)
    secondary_may_void_others: bool = False
    secondary_may_refund: bool = True
    secondary_may_refund_others: bool = False
    qr_fee_rate: str = "0.38"  # QR wallet payments, T1
    qr_d0_fee_rate: str = "0.48"  # QR wallet payments, D0

    def channel_rates(self) -> dict[str, str]:
        """The fee rate of each channel (card, qr) for this merchant's cycle."""
        if self.cycle == "D0":
            return {"card": self.d0_fee_rate, "qr": self.qr_d0_fee_rate}
        return {"card": self.fee_rate, "qr": self.qr_fee_rate}


def effective_terms(base: MerchantSettings, row: MerchantTerms | None) -> Terms:
    """Config ``[merchant]`` defaults overridden by the merchant's row (None = default)."""

    def pick(name: str) -> Any:
        value = getattr(row, name, None) if row is not None else None
        return getattr(base, name) if value is None else value

    types = pick("supervisor_types")
    if isinstance(types, str):
        types = [t.strip() for t in types.split(",") if t.strip()]
    return Terms(
        cycle=str(pick("cycle")),
        fee_rate=str(pick("fee_rate")),
        d0_fee_rate=str(pick("d0_fee_rate")),
        min_payout=int(pick("min_payout")),
        require_operator=bool(pick("require_operator")),
        supervisor_types=tuple(types),
        qr_fee_rate=str(pick("qr_fee_rate")),
        qr_d0_fee_rate=str(pick("qr_d0_fee_rate")),
        secondary_may_void_others=bool(pick("secondary_may_void_others")),
        secondary_may_refund=bool(pick("secondary_may_refund")),
        secondary_may_refund_others=bool(pick("secondary_may_refund_others")),
    )


@attrs.define
class TermsCache:
    """Each merchant's effective terms, kept a few seconds like the estate (changes made by
    `poshost estate terms set` apply within the estate's TTL)."""

    _terms: dict[str, tuple[Terms, float]] = attrs.field(factory=dict)

    async def get(self, host: Host, mid: str) -> Terms:
        now = trio.current_time()
        hit = self._terms.get(mid)
        if hit is not None and hit[1] > now:
            return hit[0]
        terms = effective_terms(host.settings.merchant, await host.store.get_merchant_terms(mid))
        self._terms[mid] = (terms, now + host.estate.ttl)
        return terms

    def clear(self) -> None:
        self._terms.clear()


async def merchant_terms(host: Host, mid: str) -> Terms:
    return await host.terms.get(host, mid)


def split_field63(value: object) -> tuple[str, str]:
    text = str(value or "")
    return text[:3].strip(), text[3:].strip()


async def check_operator(host: Host, ex: Exchange) -> None:
    """Before ``sign_on``: the operator named in 63 may sign on at this terminal."""
    number, password = split_field63(ex.request.get(63))
    terms = await merchant_terms(host, ex.terminal.mid)
    operator: Operator | None = None
    if number:
        try:
            operator = await host.store.get_operator(ex.terminal.tid, number)
        except NotFound:
            operator = None
    if operator is None:
        if terms.require_operator:
            _refuse(ex, codes.INCORRECT_PIN, "unknown_operator", number)
        return
    if operator.status != "active":
        _refuse(ex, codes.NOT_PERMITTED_TO_TERMINAL, "operator_disabled", number)
    if password or terms.require_operator:
        ok = await trio.to_thread.run_sync(verify_password, password, operator.password_hash)
        if not ok:
            _refuse(ex, codes.INCORRECT_PIN, "wrong_password", number)
    ex.operator = operator


def _refuse(ex: Exchange, code: str, why: str, number: str) -> None:
    log.warning("operator_refused", tid=ex.terminal.tid, operator=number, why=why, code=code)
    raise Decline(code, f"operator {number!r}: {why}")


async def require_supervisor(host: Host, ex: Exchange) -> None:
    """In the financial flows: types the merchant reserves for supervisors need one."""
    terms = await merchant_terms(host, ex.terminal.mid)
    if ex.txn.name not in terms.supervisor_types:
        return
    number = ex.terminal.operator
    role = None
    if number:
        try:
            operator = await host.store.get_operator(ex.terminal.tid, number)
            role = operator.role if operator.status == "active" else None
        except NotFound:
            role = None
    if role != "supervisor":
        log.warning("supervisor_required", tid=ex.terminal.tid, operator=number, txn=ex.txn.name)
        raise Decline(
            codes.NOT_PERMITTED_TO_TERMINAL,
            f"{ex.txn.name} needs a supervisor; operator {number!r} is not one",
        )
