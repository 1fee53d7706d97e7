"""The storage fixtures of the store tests (both backends), for merchant-operations tests."""

from tests.store.conftest import sync_store, url  # noqa: F401  (fixture re-exports)
