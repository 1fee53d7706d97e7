"""The flow table: transaction type name -> ordered steps. Adding a transaction type is adding
a row here (and, if it needs one, a small step); the engine (``host.flow.engine``) stays
as it is."""

from __future__ import annotations

from host.flow import batch as st
from host.flow import management as m
from host.flow import originals as o
from host.flow import payee as pay
from host.flow import qr as q
from host.flow import session_guard as g
from host.flow import steps as s
from host.flow.engine import Flow
from host.merchant import activation as act
from host.merchant import business_day as b
from host.merchant import operators as op
from host.merchant import risk as r
from host.merchant import tills as t

# Who is speaking, and may it transact? Every financial flow starts with these (and, once the
# request is authenticated, opens an encrypted track through the HSM).
_SESSION = (s.identify_terminal, s.require_session, s.verify_mac, s.open_track)
# The batch and the business day, then the amount limits.
_CHECKS = (s.check_batch, b.check_business_day, s.check_amount)
_FINANCIAL_END = (s.journal_outcome, r.release_limits, s.respond)
_ISSUER = (s.select_route, s.translate_pin)


def _financial(name: str, *find_original, journal=s.journal_request, qr=()) -> Flow:
    """MAC, batch/day, amount, (original), route, PIN, journal, issuer; journal + answer. With
    ``qr``: the steps after the original when it is a QR sale (the wallet, not the issuer)."""
    to_issuer = (r.check_limits, *_ISSUER, journal, s.authorize)
    tail = (q.by_channel(card=to_issuer, qr=qr),) if qr else to_issuer
    return Flow(name, (*_SESSION, op.require_supervisor, *_CHECKS, *find_original, *tail),
                _FINANCIAL_END)  # fmt: skip


# QR wallet payments (docs/qr.md): the wallet link instead of an issuer.
_TO_WALLET = (q.select_wallet, s.journal_request)


FLOWS: dict[str, Flow] = {
    "purchase": _financial("purchase"),
    "transfer": _financial("transfer", pay.check_payee),
    "balance_inquiry": Flow(
        "balance_inquiry",
        (*_SESSION, s.check_batch, b.check_business_day, *_ISSUER, s.journal_request,
         s.authorize),
        _FINANCIAL_END,
    ),
    "void": _financial(
        "void", o.find_purchase_to_void, t.check_till_policy,
        qr=(q.wallet_of_original, s.journal_request, q.wallet_refund),
    ),
    "refund": _financial(
        "refund", o.replay_advice, o.find_sale_to_refund, t.check_till_policy,
        journal=o.journal_advice,
        qr=(q.wallet_of_original, o.journal_advice, q.wallet_refund),
    ),
    "qr_pay": Flow(
        "qr_pay",
        (*_SESSION, op.require_supervisor, *_CHECKS, q.read_payment_code, r.check_limits,
         *_TO_WALLET, q.wallet_pay),
        _FINANCIAL_END,
    ),
    "qr_order": Flow(
        "qr_order",
        (*_SESSION, op.require_supervisor, *_CHECKS, *_TO_WALLET, q.wallet_order),
        _FINANCIAL_END,
    ),
    "qr_query": Flow("qr_query", (*_SESSION, q.find_order, q.query_order), (s.respond,)),
    "preauth": _financial("preauth"),
    "preauth_cancel": _financial("preauth_cancel", o.find_preauth_to_cancel),
    "completion": _financial("completion", o.find_preauth_to_complete),
    "completion_void": _financial(
        "completion_void", o.find_completion_to_void, t.check_till_policy
    ),
    "completion_advice": _financial(
        "completion_advice",
        o.replay_advice,
        o.find_preauth_to_complete,
        journal=o.journal_advice,
    ),
    "reversal": Flow(
        "reversal",
        (*_SESSION, o.check_reversible, m.find_original_for_reversal, m.reverse_original),
        (s.respond,),
    ),
    "settlement": Flow(
        "settlement", (s.identify_terminal, s.require_session, st.settle), (s.respond,)
    ),
    "batch_upload": Flow(
        "batch_upload", (s.identify_terminal, s.require_session, st.batch_upload), (s.respond,)
    ),
    "batch_upload_detail": Flow(
        "batch_upload_detail",
        (s.identify_terminal, s.require_session, s.open_track, st.batch_upload_detail),
        (s.respond,),
    ),
    "batch_upload_end": Flow(
        "batch_upload_end",
        (s.identify_terminal, s.require_session, st.batch_upload_end),
        (s.respond,),
    ),
    "sign_on": Flow(
        "sign_on",
        (s.identify_terminal, g.limit_sign_on, op.check_operator, m.sign_on),
        (s.respond,),
    ),
    "activation": Flow("activation", (s.identify_terminal, act.activate), (s.respond,)),
    "sign_off": Flow(
        "sign_off", (s.identify_terminal, g.limit_sign_off, m.sign_off), (s.respond,)
    ),
    "echo": Flow("echo", (s.identify_terminal, m.echo), (s.respond,)),
    "parameter_download": Flow(
        "parameter_download", (s.identify_terminal, m.parameter_download), (s.respond,)
    ),
}  # fmt: skip
