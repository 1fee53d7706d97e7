import pytest

from host.store.db import Url, redact, to_pyformat
from host.store.errors import StoreError


def test_named_parameters_become_pyformat():
    sql = "UPDATE t SET a = :a, b = COALESCE(:b_2, b) WHERE id = :id AND c = :a"
    assert to_pyformat(sql) == (
        "UPDATE t SET a = %(a)s, b = COALESCE(%(b_2)s, b) WHERE id = %(id)s AND c = %(a)s"
    )


def test_literal_percent_is_escaped_and_casts_are_left_alone():
    assert to_pyformat("SELECT 'a%' LIKE :p") == "SELECT 'a%%' LIKE %(p)s"
    assert to_pyformat("SELECT x::text FROM t") == "SELECT x::text FROM t"


def test_url_forms():
    assert Url.parse("sqlite:///var/poshost.sqlite") == Url("sqlite", "var/poshost.sqlite")
    assert Url.parse("sqlite:////tmp/j.sqlite") == Url("sqlite", "/tmp/j.sqlite")
    pg = "postgresql://postgres@127.0.0.1:5432/test"
    assert Url.parse(pg) == Url("postgresql", pg)
    for bad in ("sqlite:///:memory:", "sqlite:///", "mysql://x/y", "var/poshost.sqlite"):
        with pytest.raises(StoreError):
            Url.parse(bad)


def test_redact_hides_the_password():
    assert redact("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_new_sqlite_journal_is_the_owners_alone(tmp_path):
    """The journal, its WAL and shared-memory files and a folder made for them: 0600 / 0700."""
    import stat

    from host.store import SyncStore

    folder = tmp_path / "var"
    with SyncStore.open(f"sqlite:///{folder}/poshost.sqlite") as store:
        store.list_transactions(limit=1)
        from host.store.db import connect

        writer = connect(f"sqlite:///{folder}/poshost.sqlite", writer=True)  # WAL mode
        writer.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        writer.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes["poshost.sqlite"] == 0o600
    assert modes.get("poshost.sqlite-wal", 0o600) == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes
