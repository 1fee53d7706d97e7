"""The catalogue of the store's operations: which functions write and which read.

The SQL lives in one module per section of the schema: ``estate`` (merchants, terminals,
operators), ``journal`` (transactions, batches, the business day), ``reversals`` (reversals and
store-and-forward), ``merchant_ops`` (risk, security events, terms, merchant settlement),
``access`` (activation, back-office tokens) and ``tills`` (masters and secondaries, per-till
totals). Each function takes a :class:`~host.store.db.Db` first. Write functions never begin or
commit: the caller (the writer thread or process, or the synchronous store) runs them inside a
transaction and a savepoint, so a function that raises
leaves no partial change behind. Expected conflicts (duplicates, a second reversal) are detected
with ``ON CONFLICT DO NOTHING`` and reported as exceptions from Python, so they never abort the
surrounding group transaction.

Only what is listed here can be called through the store: the writer process runs a write by
its name from ``WRITES_BY_NAME`` and nothing else, and the two faces of the store
(``host.store.facade``) have one typed method per entry, which a test holds in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from host.store.access import (
    activate_terminal,
    add_activation_code,
    add_api_token,
    count_activation_try,
    enroll_device,
    get_api_token,
    get_device,
    latest_activation_code,
    list_api_tokens,
    rehash_api_token,
    revoke_api_token,
)
from host.store.estate import (
    add_merchant,
    add_operator,
    add_terminal,
    disable_merchant,
    disable_operator,
    disable_terminal,
    drop_pending_keys,
    enable_merchant,
    enable_operator,
    enable_terminal,
    get_merchant,
    get_operator,
    get_terminal,
    list_merchants,
    list_operators,
    list_terminals,
    promote_keys,
    set_current_batch,
    set_merchant_status,
    set_operator_status,
    set_terminal_keys,
    set_terminal_profile,
    set_terminal_status,
    sign_off,
    sign_on,
)
from host.store.journal import (
    add_batch_upload_record,
    batch_totals,
    close_batch,
    find_by_auth_code,
    find_by_original,
    find_by_rrn,
    find_in_batch,
    find_transaction,
    get_batch,
    get_business_day,
    get_transaction,
    insert_pending,
    insert_pending_child,
    list_batch_upload_records,
    list_batches,
    list_transactions,
    open_batch,
    record_outcome,
    set_business_day,
    set_status,
    settle_batch,
)
from host.store.merchant_ops import (
    add_risk_event,
    add_security_events,
    counted_transactions,
    delete_risk_limits,
    get_merchant_settlement,
    get_merchant_terms,
    get_risk_limit_rows,
    list_merchant_settlements,
    list_risk_events,
    list_risk_limits,
    list_security_events,
    merchant_day_totals,
    merchant_risk_totals,
    recent_card_debits,
    set_merchant_terms,
    set_risk_limits,
    settle_merchant,
    settlement_candidates,
)
from host.store.qr import qr_close, qr_complete, qr_forward, qr_forward_done, qr_open
from host.store.reversals import (
    get_reversal,
    record_reversal,
    record_unknown_outcome,
    saf_ack,
    saf_due,
    saf_enqueue,
    saf_fail,
    saf_get,
    saf_mark_attempt,
)
from host.store.tills import list_secondaries, set_master, till_day_totals

WRITES: tuple[Callable[..., Any], ...] = (
    # estate
    add_merchant,
    set_merchant_status,
    disable_merchant,
    enable_merchant,
    add_terminal,
    set_terminal_status,
    set_terminal_profile,
    disable_terminal,
    enable_terminal,
    set_terminal_keys,
    set_master,
    sign_on,
    sign_off,
    promote_keys,
    drop_pending_keys,
    set_current_batch,
    add_operator,
    set_operator_status,
    disable_operator,
    enable_operator,
    # journal
    insert_pending,
    insert_pending_child,
    record_outcome,
    set_status,
    record_reversal,
    record_unknown_outcome,
    # store-and-forward
    saf_enqueue,
    saf_mark_attempt,
    saf_ack,
    saf_fail,
    # batches and business day
    open_batch,
    close_batch,
    settle_batch,
    add_batch_upload_record,
    set_business_day,
    # merchant operations
    set_risk_limits,
    delete_risk_limits,
    add_risk_event,
    add_security_events,
    set_merchant_terms,
    settle_merchant,
    enroll_device,
    add_activation_code,
    count_activation_try,
    activate_terminal,
    add_api_token,
    rehash_api_token,
    revoke_api_token,
    # the QR wallet flows (host/store/qr.py)
    qr_open,
    qr_complete,
    qr_close,
    qr_forward,
    qr_forward_done,
)
READS: tuple[Callable[..., Any], ...] = (
    get_merchant,
    list_merchants,
    get_terminal,
    list_terminals,
    list_secondaries,
    get_operator,
    list_operators,
    get_transaction,
    find_transaction,
    find_by_rrn,
    find_by_original,
    find_in_batch,
    find_by_auth_code,
    list_transactions,
    batch_totals,
    get_reversal,
    saf_due,
    saf_get,
    get_batch,
    list_batches,
    list_batch_upload_records,
    get_business_day,
    # merchant operations
    get_risk_limit_rows,
    list_risk_limits,
    merchant_risk_totals,
    recent_card_debits,
    list_risk_events,
    list_security_events,
    get_merchant_terms,
    merchant_day_totals,
    settlement_candidates,
    get_merchant_settlement,
    list_merchant_settlements,
    counted_transactions,
    till_day_totals,
    get_device,
    latest_activation_code,
    get_api_token,
    list_api_tokens,
)
WRITES_BY_NAME: dict[str, Callable[..., Any]] = {fn.__name__: fn for fn in WRITES}
