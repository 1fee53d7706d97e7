"""The journal operations the flows added, on both backends (SQLite always; PostgreSQL when
reachable, as in tests/store): sibling guard, reversal of an undo, settle_batch, finders."""

import pytest

from host.store import NewTransaction, SyncStore
from host.store.errors import OriginalConflict
from tests.store.conftest import pg_schema_url  # noqa: F401  (fixture)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/journal.sqlite"
    else:
        url = request.getfixturevalue("pg_schema_url")
    with SyncStore.open(url) as s:
        yield s


def row(stan, txn_type="purchase", amount=1000, original_id=None, **kw) -> NewTransaction:
    return NewTransaction(
        tid="12345678", mid="123456789012345", batch="000001", stan=stan,
        business_date="20250310", txn_type=txn_type, mti="0200", amount=amount,
        original_id=original_id, **kw,
    )  # fmt: skip


def approved(store, txn: NewTransaction, **guard) -> int:
    insert = store.insert_pending_child if guard else store.insert_pending
    txn_id = insert(txn, **guard)
    store.record_outcome(txn_id, status="approved", response_code="00", auth_code="123456")
    return txn_id


def test_sibling_guards(store):
    sale = approved(store, row("000001"))
    approved(store, row("000002", "refund", 600, sale), sibling_types=("refund",), max_amount=1000)
    with pytest.raises(OriginalConflict):
        store.insert_pending_child(
            row("000003", "refund", 401, sale), sibling_types=("refund",), max_amount=1000
        )
    approved(store, row("000004", "refund", 400, sale), sibling_types=("refund",), max_amount=1000)
    void = approved(store, row("000005", "void", 1000, sale), sibling_types=("void",))
    store.set_status(sale, "voided")
    with pytest.raises(OriginalConflict):
        store.insert_pending_child(row("000006", "void", 1000, sale), sibling_types=("void",))
    assert store.find_transaction("12345678", "000001", "000006", "20250310") is None

    # reversing the void puts the sale back to approved, in the same transaction
    store.record_reversal(void, "terminal reversal")
    assert store.get_transaction(void).status == "reversed"
    assert store.get_transaction(sale).status == "approved"
    # ...and a reversed sibling no longer blocks a new void
    store.insert_pending_child(row("000007", "void", 1000, sale), sibling_types=("void",))


def test_finders_and_settle_batch(store):
    store.add_merchant("123456789012345", "SHOP", "5411")
    store.add_terminal("12345678", "123456789012345", "003")
    pre = approved(store, row("000001", "preauth", 500))
    assert [t.id for t in store.find_in_batch("12345678", "000001", "000001")] == [pre]
    assert [t.id for t in store.find_by_auth_code("12345678", "preauth", "123456")] == [pre]
    assert store.find_by_auth_code("12345678", "purchase", "123456") == []
    store.settle_batch(
        "12345678", "000001", next_batch="000002", business_date="20250310", status="closed",
        host_totals=store.batch_totals("12345678", "000001"), terminal_totals=None,
    )  # fmt: skip
    assert store.get_batch("12345678", "000001").status == "closed"
    assert store.get_batch("12345678", "000002").status == "open"
