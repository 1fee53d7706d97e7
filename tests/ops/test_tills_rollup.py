"""The roll-up of per-till lines under masters (host/merchant/tills.py) is pure: for any lines,
each line lands in exactly one group, the group of its master (or of itself), and the groups
add up to the lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from host.merchant.tills import add_up, roll_up
from host.store.merchant_records import DayTotals, TillTotals

TIDS = st.sampled_from(["T1", "T2", "T3", "T4"])
AMOUNTS = st.integers(min_value=0, max_value=10**12)


@st.composite
def till_lines(draw) -> list[TillTotals]:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["M1", "M2"]), TIDS, st.none() | TIDS),
            unique=True,
            max_size=12,
        )
    )
    return [
        TillTotals(mid=mid, tid=tid, master_tid=master,
                   debit_count=draw(st.integers(0, 1000)), debit_amount=draw(AMOUNTS),
                   credit_count=draw(st.integers(0, 1000)), credit_amount=draw(AMOUNTS))
        for mid, tid, master in keys
    ]  # fmt: skip


@given(till_lines())
def test_every_line_rolls_up_once_under_its_master(lines):
    groups = roll_up(lines)
    placed = [line for g in groups for line in g.tills]
    assert sorted(placed, key=repr) == sorted(lines, key=repr)
    for g in groups:
        assert all(
            line.mid == g.mid and (line.master_tid or line.tid) == g.master for line in g.tills
        )
        assert g.totals == add_up(g.tills)
        assert all(
            g.role(line) == ("secondary" if line.master_tid else "master") for line in g.tills
        )
    assert [(g.mid, g.master) for g in groups] == sorted({(g.mid, g.master) for g in groups})
    assert add_up(g.totals for g in groups) == add_up(lines)
    for mid in {line.mid for line in lines}:
        mine = [g.totals for g in groups if g.mid == mid]
        theirs = [line for line in lines if line.mid == mid]
        assert add_up(mine).debit_amount - add_up(mine).credit_amount == sum(
            line.gross for line in theirs
        )


def test_no_lines_no_groups():
    assert roll_up([]) == []
    assert add_up([]) == DayTotals()
