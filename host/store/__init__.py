"""Durable storage of the host: the transaction journal and the merchant estate.

One API, two backends (SQLite file with WAL, or PostgreSQL via psycopg 3), two faces:
:class:`Store` for Trio code (writes group-committed by one writer thread, reads in worker
threads) and :class:`SyncStore` for blocking tools. Both have the methods named in
``host.store.ops.WRITES`` / ``READS`` (typed in ``host.store.facade``); the SQL is in one
module per section of the schema, listed in ``host.store.ops``.

Conventions: amounts are integer minor units; ``*_at`` columns are UTC epoch milliseconds;
dates are ``YYYYMMDD`` text; key tokens are opaque ``KeyToken.to_text()`` strings.
"""

from host.store.db import DEFAULT_URL, epoch_ms
from host.store.errors import (
    AlreadyExists,
    AlreadyReversed,
    DuplicateTransaction,
    NotFound,
    SchemaTooNew,
    StoreClosed,
    StoreError,
)
from host.store.passwords import hash_password, verify_password
from host.store.records import (
    Batch,
    BatchTotals,
    BatchUploadRecord,
    BusinessDay,
    GroupTotals,
    Merchant,
    NewTransaction,
    Operator,
    Reversal,
    SafItem,
    Terminal,
    Transaction,
    pan_fingerprint,
)
from host.store.schema import CURRENT_VERSION
from host.store.store import Store, SyncStore, default_url, open_store
from host.store.writer import WriterStats

__all__ = [
    "CURRENT_VERSION",
    "DEFAULT_URL",
    "AlreadyExists",
    "AlreadyReversed",
    "Batch",
    "BatchTotals",
    "BatchUploadRecord",
    "BusinessDay",
    "DuplicateTransaction",
    "GroupTotals",
    "Merchant",
    "NewTransaction",
    "NotFound",
    "Operator",
    "Reversal",
    "SafItem",
    "SchemaTooNew",
    "Store",
    "StoreClosed",
    "StoreError",
    "SyncStore",
    "Terminal",
    "Transaction",
    "WriterStats",
    "default_url",
    "epoch_ms",
    "hash_password",
    "open_store",
    "pan_fingerprint",
    "verify_password",
]
