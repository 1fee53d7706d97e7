"""Every storage test runs against both backends: SQLite (a temporary file, always) and
PostgreSQL at $POSHOST_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test), each test
in a fresh schema that is dropped afterwards. When PostgreSQL is unreachable its cases skip —
unless CI=true, where they fail instead."""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

PG_URL = os.environ.get("POSHOST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

_pg_problem: list[str] = []  # memo: [] untested, [""] reachable, ["reason"] unreachable


def _pg_unreachable() -> str:
    if not _pg_problem:
        try:
            import psycopg

            with psycopg.connect(PG_URL, connect_timeout=3):
                pass
            _pg_problem.append("")
        except Exception as exc:
            _pg_problem.append(f"PostgreSQL at {PG_URL} unreachable: {exc}".strip())
    return _pg_problem[0]


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_schema_url():
    """A PostgreSQL URL whose search_path is a brand-new schema, dropped after the test."""
    problem = _pg_unreachable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(PG_URL, schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    """A store URL for an empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/journal.sqlite"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def sync_store(url):
    from host.store import SyncStore

    with SyncStore.open(url) as store:
        yield store
