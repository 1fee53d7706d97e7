"""The store's exception family. Messages name rows by their keys, never by secrets."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class NotFound(StoreError):
    """The row asked for (or a row it refers to) does not exist."""


class AlreadyExists(StoreError):
    """An estate row (merchant, terminal, operator) with this key exists already."""


class TillRefused(StoreError, ValueError):
    """A master/secondary change the estate rules refuse: a master of another merchant, a
    chain (a secondary as master, a master as secondary) or a terminal as its own master."""


class DuplicateTransaction(StoreError):
    """A transaction with the same (tid, batch, stan, business_date) is journalled already."""

    def __init__(self, tid: str, batch: str, stan: str, business_date: str, existing_id: int):
        super().__init__(
            f"duplicate transaction tid={tid} batch={batch} stan={stan} "
            f"date={business_date} (existing id {existing_id})"
        )
        self.tid = tid
        self.batch = batch
        self.stan = stan
        self.business_date = business_date
        self.existing_id = existing_id

    def __reduce__(self):  # pickled by the writer process: rebuilt from its own arguments
        args = (self.tid, self.batch, self.stan, self.business_date, self.existing_id)
        return type(self), args


class AlreadyReversed(StoreError):
    """The original transaction has a reversal row already (exactly-once reversal)."""

    def __init__(self, original_id: int, reversal_id: int):
        super().__init__(f"transaction {original_id} is already reversed (reversal {reversal_id})")
        self.original_id = original_id
        self.reversal_id = reversal_id

    def __reduce__(self):
        return type(self), (self.original_id, self.reversal_id)


class OriginalConflict(StoreError):
    """A void/refund/completion would exceed what its original allows (already voided,
    completed, cancelled, or refunded in full); nothing was journalled."""

    def __init__(self, original_id: int, reason: str):
        super().__init__(f"transaction {original_id}: {reason}")
        self.original_id = original_id
        self.reason = reason

    def __reduce__(self):
        return type(self), (self.original_id, self.reason)


class StoreClosed(StoreError):
    """The store was closed; no more operations are accepted."""


class SchemaTooNew(StoreError):
    """The database has a schema version this code does not know (written by a newer host)."""
