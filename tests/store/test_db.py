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
