import pytest

from host.store import CURRENT_VERSION, SchemaTooNew, SyncStore
from host.store.db import connect
from host.store.schema import MIGRATIONS, current_version, migrate


def _index_names(db) -> set[str]:
    if db.backend == "sqlite":
        rows = db.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = db.query(
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"
        )
    return {r["name"] for r in rows}


def test_migrations_are_numbered_in_order():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert CURRENT_VERSION >= 2


def test_upgrade_from_v1_keeps_data(url):
    db = connect(url, writer=True)
    try:
        assert migrate(db, target=1) == 1
        assert current_version(db) == 1
        assert "transactions_rrn" not in _index_names(db)
        # a v1 journal with one row in it, written with v1's columns (today's insert names
        # columns later migrations added)
        from host.store import ops

        db.begin()
        ops.add_merchant(db, "M1", "Old shop", "5411")
        row = db.query_one(
            "INSERT INTO transactions (tid, mid, batch, stan, business_date, txn_type, mti,"
            " amount, rrn, requested_at) VALUES ('T1', 'M1', '000001', '000007', '20260101',"
            " 'purchase', '0200', 500, 'RRN000000001', 0) RETURNING id"
        )
        assert row is not None
        txn_id = row["id"]
        db.commit()
    finally:
        db.close()

    with SyncStore.open(url) as store:  # opening migrates to the current version
        assert store.get_transaction(txn_id).amount == 500
        assert [t.id for t in store.find_by_rrn("RRN000000001")] == [txn_id]
        assert store.get_merchant("M1").name == "Old shop"
        assert store.get_transaction(txn_id).channel == "card"  # v13's default for old rows

    db = connect(url)
    try:
        assert current_version(db) == CURRENT_VERSION
        assert {
            "transactions_rrn", "saf_queue_due", "transactions_pan_fingerprint",
        } <= _index_names(db)  # fmt: skip
        versions = db.query("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in versions] == list(range(1, CURRENT_VERSION + 1))
        assert migrate(db) == CURRENT_VERSION  # idempotent
        assert len(db.query("SELECT version FROM schema_version")) == CURRENT_VERSION
    finally:
        db.close()


def test_a_newer_schema_is_refused(url):
    SyncStore.open(url).close()
    db = connect(url)
    db.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (999, 'future', 0)"
    )
    db.close()
    with pytest.raises(SchemaTooNew):
        SyncStore.open(url)


def test_concurrent_opens_migrate_once(url):
    """Several hosts (threads here) opening one fresh database at once: one migrates, the others
    wait for it and find the schema current."""
    import threading

    errors = []

    def open_it():
        try:
            SyncStore.open(url).close()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = connect(url)
    try:
        rows = db.query("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, CURRENT_VERSION + 1))
    finally:
        db.close()


def test_a_batch_is_read_through_the_journals_unique_key(tmp_path):
    """v8 dropped the (tid, batch, status) index: the unique key's first two columns find a
    batch's rows, so batch totals and lookups still search an index, never scan the journal."""
    url = f"sqlite:///{tmp_path / 'j.sqlite'}"
    SyncStore.open(url).close()
    db = connect(url)
    try:
        assert "transactions_batch_status" not in _index_names(db)
        for where in ("tid = 'T1' AND batch = '000001' AND status = 'approved'",
                      "tid = 'T1' AND batch = '000001' AND stan = '000007'"):  # fmt: skip
            (plan,) = db.query(f"EXPLAIN QUERY PLAN SELECT * FROM transactions WHERE {where}")
            assert plan["detail"].startswith("SEARCH transactions USING INDEX"), plan
    finally:
        db.close()
