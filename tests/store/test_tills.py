"""Master and secondary terminals in the store, on both backends: the estate rules (same
merchant, no chains, no cycles), two changes at once from two connections, the master each
journal row keeps, and the per-till totals of a day."""

from __future__ import annotations

import threading

import pytest

from host.store import NewTransaction, NotFound
from host.store import ops as store_ops
from host.store.db import connect
from host.store.errors import TillRefused
from host.store.schema import migrate

DAY = "20250310"


def _estate(store) -> None:
    store.add_merchant("M1", "Shop", "5411")
    store.add_merchant("M2", "Hotel", "7011")
    for tid in ("T1", "T2", "T3", "T4"):
        store.add_terminal(tid, "M1", "003")
    store.add_terminal("H1", "M2", "003")


def test_a_master_is_a_terminal_of_the_same_merchant_that_is_no_ones_secondary(sync_store):
    _estate(sync_store)
    assert sync_store.set_master("T2", "T1").master_tid == "T1"
    assert sync_store.add_terminal("T5", "M1", "001", master_tid="T1").master_tid == "T1"
    assert [t.tid for t in sync_store.list_secondaries("T1")] == ["T2", "T5"]

    refusals = {
        ("T1", "T1"): "its own master",
        ("H1", "T1"): "same merchant",
        ("T3", "T2"): "a secondary cannot be a master",  # a chain T3 -> T2 -> T1
        ("T1", "T3"): "a master cannot become a secondary",  # a chain T2 -> T1 -> T3
        ("T1", "T2"): "a secondary cannot be a master",  # a cycle T1 -> T2 -> T1
    }
    for (tid, master), why in refusals.items():
        with pytest.raises(TillRefused, match=why):
            sync_store.set_master(tid, master)
    with pytest.raises(TillRefused, match="a secondary cannot be a master"):
        sync_store.add_terminal("T6", "M1", "003", master_tid="T2")
    with pytest.raises(NotFound):
        sync_store.get_terminal("T6")  # refused: nothing was added
    with pytest.raises(NotFound):
        sync_store.set_master("T3", "NOPE")
    with pytest.raises(NotFound):
        sync_store.set_master("NOPE", "T1")

    # nothing changed by the refusals
    masters = {t.tid: t.master_tid for t in sync_store.list_terminals()}
    assert masters == {"T1": None, "T2": "T1", "T3": None, "T4": None, "T5": "T1", "H1": None}
    # a secondary moves to another master, or stands alone; then its old master may move
    assert sync_store.set_master("T2", "T3").master_tid == "T3"
    assert sync_store.set_master("T5", None).master_tid is None
    assert sync_store.set_master("T1", "T3").master_tid == "T3"
    assert [t.tid for t in sync_store.list_secondaries("T3")] == ["T1", "T2"]


def test_two_changes_at_once_cannot_build_a_chain(url):
    """T2 -> T1 and T3 -> T2 are each allowed alone, together a chain: from two connections
    at once, the second waits for the first and then refuses."""
    first, second = connect(url, writer=True), connect(url, writer=True)
    try:
        migrate(first)
        first.begin()
        for tid in ("T1", "T2", "T3"):
            if tid == "T1":
                store_ops.add_merchant(first, "M1", "Shop", "5411")
            store_ops.add_terminal(first, tid, "M1", "003")
        first.commit()

        first.begin(immediate=True)
        store_ops.set_master(first, "T2", "T1")
        outcome: list[BaseException | str] = []

        def other() -> None:
            try:
                second.begin(immediate=True)
                store_ops.set_master(second, "T3", "T2")
                second.commit()
                outcome.append("committed")
            except BaseException as exc:
                second.rollback()
                outcome.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second change must wait for the first"
        first.commit()
        thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], TillRefused), outcome
        assert store_ops.get_terminal(first, "T3").master_tid is None
    finally:
        first.close()
        second.close()


def _sale(store, tid: str, stan: str, amount: int, master: str | None, kind="purchase") -> int:
    txn_id = store.insert_pending(
        NewTransaction(tid=tid, mid="M1", batch="000001", stan=stan, business_date=DAY,
                       txn_type=kind, mti="0200", amount=amount, master_tid=master)
    )  # fmt: skip
    store.record_outcome(txn_id, status="approved", response_code="00")
    return txn_id


def test_rows_keep_their_master_and_the_day_adds_up_per_till(sync_store):
    _estate(sync_store)
    sync_store.set_master("T2", "T1")
    _sale(sync_store, "T1", "000001", 1_000, None)
    _sale(sync_store, "T2", "000001", 500, "T1")
    _sale(sync_store, "T2", "000002", 120, "T1", kind="refund")
    # T2 moves to T3 during the day: its later rows roll up under T3, its earlier under T1
    sync_store.set_master("T2", "T3")
    _sale(sync_store, "T2", "000003", 300, "T3")
    _sale(sync_store, "T4", "000001", 70, None)
    declined = sync_store.insert_pending(
        NewTransaction(tid="T2", mid="M1", batch="000001", stan="000004", business_date=DAY,
                       txn_type="purchase", mti="0200", amount=999, master_tid="T3")
    )  # fmt: skip
    sync_store.record_outcome(declined, status="declined", response_code="51")

    lines = [
        (t.tid, t.master_tid, t.debit_count, t.debit_amount, t.credit_count, t.credit_amount)
        for t in sync_store.till_day_totals(DAY, "M1")
    ]
    assert lines == [
        ("T1", None, 1, 1_000, 0, 0),
        ("T2", "T1", 1, 500, 1, 120),
        ("T2", "T3", 1, 300, 0, 0),
        ("T4", None, 1, 70, 0, 0),
    ]
    day = sync_store.merchant_day_totals(DAY)["M1"]
    assert sum(t.debit_amount for t in sync_store.till_day_totals(DAY)) == day.debit_amount
    under_t1 = sync_store.list_transactions(mid="M1", rolls_up_to="T1")
    assert sorted((r.tid, r.stan) for r in under_t1) == [
        ("T1", "000001"), ("T2", "000001"), ("T2", "000002"),
    ]  # fmt: skip
    under_t3 = sync_store.list_transactions(rolls_up_to="T3", status="approved")
    assert [(r.tid, r.stan, r.rolls_up_to) for r in under_t3] == [("T2", "000003", "T3")]
