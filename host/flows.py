"""The flow table: transaction type name -> ordered steps. Adding a transaction type is adding
a row here (and, if it needs one, a small step); the engine in ``host.flow`` never changes."""

from __future__ import annotations

from host import management as m
from host import steps as s
from host.flow import Flow

# Who is speaking, and may it transact? Every financial flow starts with these.
_SESSION = (s.identify_terminal, s.require_session, s.verify_mac)
_FINANCIAL_END = (s.journal_outcome, s.respond)

FLOWS: dict[str, Flow] = {
    "purchase": Flow(
        "purchase",
        (*_SESSION, s.check_batch, s.check_amount, s.select_route, s.translate_pin,
         s.journal_request, s.authorize),
        _FINANCIAL_END,
    ),
    "balance_inquiry": Flow(
        "balance_inquiry",
        (*_SESSION, s.check_batch, s.select_route, s.translate_pin, s.journal_request,
         s.authorize),
        _FINANCIAL_END,
    ),
    "reversal": Flow(
        "reversal",
        (*_SESSION, m.find_original_for_reversal, m.reverse_original),
        (s.respond,),
    ),
    "sign_on": Flow("sign_on", (s.identify_terminal, m.sign_on), (s.respond,)),
    "sign_off": Flow("sign_off", (s.identify_terminal, m.sign_off), (s.respond,)),
    "echo": Flow("echo", (s.identify_terminal, m.echo), (s.respond,)),
}  # fmt: skip
