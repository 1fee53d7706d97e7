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
minimum payout, operator rules.
"""

from __future__ import annotations

import attrs
import structlog
import trio

from codec import responses as codes
from host.flow.engine import Decline, Exchange
from host.store.errors import NotFound
from host.store.passwords import verify_password

log = structlog.get_logger("poshost.operators")


@attrs.frozen
class Terms:
    cycle: str
    fee_rate: str  # percent, decimal text: "0.60"
    d0_fee_rate: str
    min_payout: int
    require_operator: bool
    supervisor_types: tuple[str, ...]


def effective_terms(settings, row) -> Terms:
    """Config ``[merchant]`` defaults overridden by the merchant's row (None = default)."""
    base = settings["merchant"]

    def pick(name):
        value = getattr(row, name, None) if row is not None else None
        return base[name] if value is None else value

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
    )


async def merchant_terms(host, mid: str) -> Terms:
    """Cached a few seconds like the estate (changes by `poshost estate` apply within TTL)."""
    cache = host.caches.setdefault("terms", {})
    now = trio.current_time()
    hit = cache.get(mid)
    if hit is not None and hit[1] > now:
        return hit[0]
    terms = effective_terms(host.settings, await host.store.get_merchant_terms(mid))
    cache[mid] = (terms, now + host.estate.ttl)
    return terms


def split_field63(value) -> tuple[str, str]:
    text = str(value or "")
    return text[:3].strip(), text[3:].strip()


async def check_operator(host, ex: Exchange) -> None:
    """Before ``sign_on``: the operator named in 63 may sign on at this terminal."""
    number, password = split_field63(ex.request.get(63))
    terms = await merchant_terms(host, ex.terminal.mid)
    operator = None
    if number:
        try:
            operator = await host.store.get_operator(ex.terminal.tid, number)
        except NotFound:
            operator = None
    if operator is None:
        if terms.require_operator:
            _refuse(ex, "55", "unknown_operator", number)
        return
    if operator.status != "active":
        _refuse(ex, "58", "operator_disabled", number)
    if password or terms.require_operator:
        ok = await trio.to_thread.run_sync(verify_password, password, operator.password_hash)
        if not ok:
            _refuse(ex, "55", "wrong_password", number)
    ex.notes["operator"] = operator


def _refuse(ex: Exchange, code: str, why: str, number: str) -> None:
    log.warning("operator_refused", tid=ex.terminal.tid, operator=number, why=why, code=code)
    raise Decline(code, f"operator {number!r}: {why}")


async def require_supervisor(host, ex: Exchange) -> None:
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
