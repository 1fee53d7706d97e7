"""The one step a transfer adds to a sale's flow: read the payee's card from the request (the
registry's ``payee`` field, 48 in the terminal dialect), check it, and keep it on the exchange
for the issuer request (103 in the issuer contract).

The clear payee PAN lives only on the exchange and in the issuer request. The journal row
keeps its mask (``extra.payee``, written by ``new_transaction``); a reversal does not need
more, because it names its original in 90 and the issuer knows the payee of that original.

Codes (docs/terminal-dialect.md, "Transfer"): 30 no payee field, 14 the payee is not a card
number (12-19 digits, check digit), 12 the payee is the paying card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codec import responses as codes
from codec.errors import CodecError
from codec.subfields import parse_payee
from host.flow.engine import Decline, Exchange
from host.flow.steps import card_pan

if TYPE_CHECKING:
    from host.app import Host


async def check_payee(host: Host, ex: Exchange) -> None:
    field = ex.txn.payee
    raw = ex.request.get(field) if field is not None else None
    if not raw:
        raise Decline(codes.FORMAT_ERROR, f"no payee PAN in field {field}")
    try:
        payee = parse_payee(str(raw))
    except CodecError as exc:
        raise Decline(codes.INVALID_CARD, exc.reason) from exc
    if payee == card_pan(host, ex):
        raise Decline(codes.INVALID_TRANSACTION, "the payee is the paying card")
    ex.payee_pan = payee
