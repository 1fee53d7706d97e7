"""Small SQL helpers the query modules share (column names are ours, never user input)."""

from __future__ import annotations

from typing import Any

from codec import txntypes
from codec.txntypes import sql_list

# Debits and credits as the registry says (approved ones only: voided/reversed rows are not
# 'approved'). The IN lists are the registry's own names, never input.
DEBITS, CREDITS = sql_list(txntypes.DEBITS), sql_list(txntypes.CREDITS)
SETTLED, CARD_DEBITS = sql_list(txntypes.SETTLED), sql_list(txntypes.CARD_DEBITS)
# The four sums every total of the journal is made of (batch, merchant day, channel, till):
# SELECT <grouping columns>,\n{MONEY_SUMS}FROM transactions ...
MONEY_SUMS = f"""\
  SUM(CASE WHEN txn_type IN {DEBITS} THEN 1 ELSE 0 END) AS debit_count,
  SUM(CASE WHEN txn_type IN {DEBITS} THEN amount ELSE 0 END) AS debit_amount,
  SUM(CASE WHEN txn_type IN {CREDITS} THEN 1 ELSE 0 END) AS credit_count,
  SUM(CASE WHEN txn_type IN {CREDITS} THEN amount ELSE 0 END) AS credit_amount
"""


def where_clause(**filters: Any) -> tuple[str, dict[str, Any]]:
    """`` WHERE a = :a AND b = :b`` for the filters that are not None (column names are ours,
    never user input)."""
    params = {k: v for k, v in filters.items() if v is not None}
    if not params:
        return "", {}
    return " WHERE " + " AND ".join(f"{k} = :{k}" for k in params), params


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
