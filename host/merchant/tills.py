"""Master and secondary terminals (tills): who may undo whose sale, and the day's roll-up.

A merchant with several tills makes one of them the master and the others its secondaries
(``poshost estate terminal set-master``; the rules are in host/store/tills.py). Every terminal
keeps its own batch and settles it; a journal row keeps the master its terminal had when it was
written, and rolls up under that master (or under its own terminal when it had none).

What a secondary may do besides its own sales is the merchant's policy, in its terms
(``poshost estate terms set``), enforced by ``check_till_policy`` in the void, completion void
and refund flows after the original is found:

* ``secondary_may_void_others`` (default no): void a sale of another till of its group;
* ``secondary_may_refund`` (default yes): refund its own sales;
* ``secondary_may_refund_others`` (default no): refund a sale of another till.

A master (and a terminal that is no one's secondary) is not restricted: it may void the sales of
its group's tills still in their open batches, and refund any sale of the merchant, as before.
A refused request gets 58 (transaction not permitted to the terminal) and nothing reaches the
issuer. Finding another till's sale for a void is in host/flow/originals.py, and its batch
upload in host/flow/batch.py (the flows do not import the merchant room); docs/tills.md has
the whole story, with what a void from another till does to the original till's settlement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs
import structlog

from codec import responses as codes
from codec import txntypes
from host.flow.engine import Decline, Exchange
from host.merchant.operators import merchant_terms
from host.store.merchant_records import DayTotals, TillTotals

if TYPE_CHECKING:
    from host.app import Host

log = structlog.get_logger("poshost.tills")

# The registry says which types undo a sale (void, completion void) and which are credits.
VOIDS = txntypes.UNDOING_SETTLED
CREDITS = txntypes.CREDITS


# -- the flows -------------------------------------------------------------------------------


def _kind(ex: Exchange) -> str | None:
    if ex.txn.name in VOIDS:
        return "void"
    if ex.txn.name in CREDITS:
        return "refund"
    return None


async def check_till_policy(host: Host, ex: Exchange) -> None:
    """After the original is found: may this terminal undo it? Only a secondary is limited."""
    original, me = ex.original.row, ex.terminal
    if original is None or me.master_tid is None:
        return
    kind = _kind(ex)
    if kind is None:
        return
    own = original.tid == me.tid
    if kind == "void" and own:
        return
    terms = await merchant_terms(host, me.mid)
    if kind == "void":
        allowed, term = terms.secondary_may_void_others, "secondary_may_void_others"
    elif own:
        allowed, term = terms.secondary_may_refund, "secondary_may_refund"
    else:
        allowed, term = terms.secondary_may_refund_others, "secondary_may_refund_others"
    if allowed:
        return
    log.warning("till_policy_refused", tid=me.tid, master=me.master_tid, txn=ex.txn.name,
                original_tid=original.tid, term=term)  # fmt: skip
    whose = "its own sale" if own else f"a sale of till {original.tid}"
    raise Decline(
        codes.NOT_PERMITTED_TO_TERMINAL,
        f"secondary {me.tid} may not {kind} {whose} ({term} is off): the master {me.master_tid}"
        " may",
    )


# -- the roll-up -----------------------------------------------------------------------------


@attrs.frozen
class TillGroup:
    """A master's line of the day: its own and its secondaries' lines, and their sum."""

    mid: str
    master: str
    tills: tuple[TillTotals, ...]
    totals: DayTotals

    def role(self, line: TillTotals) -> str:
        return "secondary" if line.master_tid else "master"


def add_up(lines: Iterable[TillTotals | DayTotals]) -> DayTotals:
    dc = da = cc = ca = 0
    for t in lines:
        dc, da = dc + t.debit_count, da + t.debit_amount
        cc, ca = cc + t.credit_count, ca + t.credit_amount
    return DayTotals(dc, da, cc, ca)


def roll_up(lines: Iterable[TillTotals]) -> list[TillGroup]:
    """Per-till lines of one day (``store.till_day_totals``) grouped under their masters, in
    merchant and master order; a terminal that was no one's secondary is the master of its own
    group. Pure: the same lines give the same groups wherever they are shown."""
    groups: dict[tuple[str, str], list[TillTotals]] = {}
    for line in lines:
        groups.setdefault((line.mid, line.rolls_up_to), []).append(line)
    return [
        TillGroup(mid, master, tuple(members), add_up(members))
        for (mid, master), members in sorted(groups.items())
    ]
