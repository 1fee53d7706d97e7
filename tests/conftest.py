"""Suite-wide fixtures. The PostgreSQL fixtures live with the store tests; they are re-exported
here so host end-to-end tests can run on both journal backends."""

import pytest

from tests.store.conftest import pg_schema_url  # noqa: F401  (fixture re-export)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def journal_url(request, tmp_path):
    """A journal URL for the host, once per backend (PostgreSQL: a fresh schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/host-journal.sqlite"
    return request.getfixturevalue("pg_schema_url")
