"""The two faces of the store as typed methods, one per operation of ``host.store.ops``.

Written out rather than installed at import time, so that an editor, a reader and the type
checker see every method with its parameters and its result. ``tests/store/test_facade.py``
fails when an operation is added to ``ops.WRITES``/``ops.READS`` without its method here (or
with different parameters), and checks that each method goes the right way: writes through the
writer, reads through the read connections.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, TypeVar

from host.store import access, estate, journal, merchant_ops, qr, reversals, tills, webhooks
from host.store.merchant_records import TillTotals
from host.store.records import (
    Batch,
    BatchTotals,
    BatchUploadRecord,
    BusinessDay,
    Merchant,
    NewTransaction,
    Operator,
    Reversal,
    SafItem,
    Terminal,
    Transaction,
)
from host.store.webhooks import MerchantWebhook, WebhookDelivery, WebhookEvent

T = TypeVar("T")


class AsyncFacade(abc.ABC):
    """The Trio face: every call awaits the writer (writes) or a reader thread (reads); how is
    ``Store``'s to say (the two hooks below)."""

    @abc.abstractmethod
    async def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    @abc.abstractmethod
    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    # -- writes: committed (durably) before they return

    async def add_merchant(self, mid: str, name: str, mcc: str) -> Merchant:
        return await self._write(estate.add_merchant, mid, name, mcc)

    async def set_merchant_status(self, mid: str, status: str) -> None:
        return await self._write(estate.set_merchant_status, mid, status)

    async def disable_merchant(self, mid: str) -> None:
        return await self._write(estate.disable_merchant, mid)

    async def enable_merchant(self, mid: str) -> None:
        return await self._write(estate.enable_merchant, mid)

    async def add_terminal(
        self,
        tid: str,
        mid: str,
        key_mode: str,
        *,
        serial: str | None = None,
        current_batch: str = "000001",
        master_tid: str | None = None,
    ) -> Terminal:
        return await self._write(
            estate.add_terminal,
            tid,
            mid,
            key_mode,
            serial=serial,
            current_batch=current_batch,
            master_tid=master_tid,
        )

    async def set_terminal_status(self, tid: str, status: str) -> None:
        return await self._write(estate.set_terminal_status, tid, status)

    async def set_terminal_profile(self, tid: str, *, balance_entries: int | None) -> None:
        return await self._write(estate.set_terminal_profile, tid, balance_entries=balance_entries)

    async def disable_terminal(self, tid: str) -> None:
        return await self._write(estate.disable_terminal, tid)

    async def enable_terminal(self, tid: str) -> None:
        return await self._write(estate.enable_terminal, tid)

    async def set_terminal_keys(
        self,
        tid: str,
        *,
        tmk_token: str | None = None,
        bdk_token: str | None = None,
    ) -> None:
        return await self._write(
            estate.set_terminal_keys,
            tid,
            tmk_token=tmk_token,
            bdk_token=bdk_token,
        )

    async def set_master(self, tid: str, master_tid: str | None) -> Terminal:
        return await self._write(tills.set_master, tid, master_tid)

    async def sign_on(
        self,
        tid: str,
        *,
        pik_token: str,
        mak_token: str,
        tdk_token: str | None = None,
        operator: str | None = None,
        now: int | None = None,
    ) -> str:
        return await self._write(
            estate.sign_on,
            tid,
            pik_token=pik_token,
            mak_token=mak_token,
            tdk_token=tdk_token,
            operator=operator,
            now=now,
        )

    async def sign_off(self, tid: str) -> None:
        return await self._write(estate.sign_off, tid)

    async def promote_keys(self, tid: str, mak_token: str) -> bool:
        return await self._write(estate.promote_keys, tid, mak_token)

    async def drop_pending_keys(self, tid: str, mak_token: str) -> bool:
        return await self._write(estate.drop_pending_keys, tid, mak_token)

    async def set_current_batch(self, tid: str, batch: str) -> None:
        return await self._write(estate.set_current_batch, tid, batch)

    async def add_operator(
        self,
        tid: str,
        operator_no: str,
        password_hash: str,
        role: str,
    ) -> Operator:
        return await self._write(estate.add_operator, tid, operator_no, password_hash, role)

    async def set_operator_status(self, tid: str, operator_no: str, status: str) -> None:
        return await self._write(estate.set_operator_status, tid, operator_no, status)

    async def disable_operator(self, tid: str, operator_no: str) -> None:
        return await self._write(estate.disable_operator, tid, operator_no)

    async def enable_operator(self, tid: str, operator_no: str) -> None:
        return await self._write(estate.enable_operator, tid, operator_no)

    async def insert_pending(self, txn: NewTransaction, *, txn_id: int | None = None) -> int:
        if txn_id is None:  # the common call, as the journal's writer logs it
            return await self._write(journal.insert_pending, txn)
        return await self._write(journal.insert_pending, txn, txn_id=txn_id)

    async def insert_pending_child(
        self,
        txn: NewTransaction,
        *,
        sibling_types: tuple[str, ...],
        statuses: tuple[str, ...] = ("pending", "approved", "timeout"),
        max_amount: int | None = None,
        txn_id: int | None = None,
    ) -> int:
        return await self._write(
            journal.insert_pending_child,
            txn,
            sibling_types=sibling_types,
            statuses=statuses,
            max_amount=max_amount,
            txn_id=txn_id,
        )

    async def record_outcome(
        self,
        txn_id: int,
        *,
        status: str,
        response_code: str | None = None,
        auth_code: str | None = None,
        rrn: str | None = None,
        issuer_link: str | None = None,
        issuer_stan: str | None = None,
        settlement_date: str | None = None,
        responded_at: int | None = None,
        latency_ms: int | None = None,
        extra: dict[str, Any] | None = None,
        original_status: str | None = None,
        notify: bool = True,
    ) -> None:
        return await self._write(
            journal.record_outcome,
            txn_id,
            status=status,
            response_code=response_code,
            auth_code=auth_code,
            rrn=rrn,
            issuer_link=issuer_link,
            issuer_stan=issuer_stan,
            settlement_date=settlement_date,
            responded_at=responded_at,
            latency_ms=latency_ms,
            extra=extra,
            original_status=original_status,
            notify=notify,
        )

    async def set_status(self, txn_id: int, status: str) -> None:
        return await self._write(journal.set_status, txn_id, status)

    async def record_reversal(
        self,
        original_id: int,
        reason: str,
        *,
        link: str | None = None,
        payload: bytes | None = None,
        next_attempt_at: int | None = None,
    ) -> Reversal:
        return await self._write(
            reversals.record_reversal,
            original_id,
            reason,
            link=link,
            payload=payload,
            next_attempt_at=next_attempt_at,
        )

    async def record_unknown_outcome(
        self,
        txn_id: int,
        reason: str,
        *,
        link: str,
        payload: bytes,
        rrn: str | None = None,
        settlement_date: str | None = None,
    ) -> Reversal | None:
        return await self._write(
            reversals.record_unknown_outcome,
            txn_id,
            reason,
            link=link,
            payload=payload,
            rrn=rrn,
            settlement_date=settlement_date,
        )

    async def saf_enqueue(
        self,
        transaction_id: int | None,
        link: str,
        payload: bytes,
        *,
        kind: str = "reversal",
        next_attempt_at: int | None = None,
    ) -> int:
        return await self._write(
            reversals.saf_enqueue,
            transaction_id,
            link,
            payload,
            kind=kind,
            next_attempt_at=next_attempt_at,
        )

    async def saf_mark_attempt(
        self,
        saf_id: int,
        next_attempt_at: int,
        error: str | None = None,
    ) -> None:
        return await self._write(reversals.saf_mark_attempt, saf_id, next_attempt_at, error)

    async def saf_ack(self, saf_id: int) -> None:
        return await self._write(reversals.saf_ack, saf_id)

    async def saf_fail(self, saf_id: int, error: str) -> None:
        return await self._write(reversals.saf_fail, saf_id, error)

    async def open_batch(self, tid: str, batch: str, business_date: str) -> Batch:
        return await self._write(journal.open_batch, tid, batch, business_date)

    async def close_batch(
        self,
        tid: str,
        batch: str,
        *,
        status: str,
        host_totals: BatchTotals | dict[str, Any] | None = None,
        terminal_totals: BatchTotals | dict[str, Any] | None = None,
    ) -> None:
        return await self._write(
            journal.close_batch,
            tid,
            batch,
            status=status,
            host_totals=host_totals,
            terminal_totals=terminal_totals,
        )

    async def settle_batch(
        self,
        tid: str,
        batch: str,
        *,
        next_batch: str,
        business_date: str,
        status: str,
        host_totals: BatchTotals | dict[str, Any] | None,
        terminal_totals: BatchTotals | dict[str, Any] | None,
    ) -> None:
        return await self._write(
            journal.settle_batch,
            tid,
            batch,
            next_batch=next_batch,
            business_date=business_date,
            status=status,
            host_totals=host_totals,
            terminal_totals=terminal_totals,
        )

    async def add_batch_upload_record(
        self,
        tid: str,
        batch: str,
        seq: int,
        record: dict[str, Any],
        agrees: bool,
    ) -> None:
        return await self._write(journal.add_batch_upload_record, tid, batch, seq, record, agrees)

    async def set_business_day(
        self,
        business_date: str,
        settlement_date: str,
        cutover_at: int | None = None,
    ) -> BusinessDay:
        return await self._write(
            journal.set_business_day,
            business_date,
            settlement_date,
            cutover_at,
        )

    async def set_risk_limits(self, scope: str, key: str, values: dict[str, int | None]) -> None:
        return await self._write(merchant_ops.set_risk_limits, scope, key, values)

    async def delete_risk_limits(self, scope: str, key: str) -> None:
        return await self._write(merchant_ops.delete_risk_limits, scope, key)

    async def add_risk_event(
        self,
        *,
        mid: str,
        tid: str,
        business_date: str,
        txn_type: str,
        amount: int,
        rule: str,
        response_code: str,
        detail: str,
        pan_masked: str | None = None,
    ) -> int:
        return await self._write(
            merchant_ops.add_risk_event,
            mid=mid,
            tid=tid,
            business_date=business_date,
            txn_type=txn_type,
            amount=amount,
            rule=rule,
            response_code=response_code,
            detail=detail,
            pan_masked=pan_masked,
        )

    async def add_security_events(self, events: list[dict[str, Any]]) -> None:
        return await self._write(merchant_ops.add_security_events, events)

    async def set_merchant_terms(self, mid: str, values: dict[str, Any]) -> None:
        return await self._write(merchant_ops.set_merchant_terms, mid, values)

    async def settle_merchant(
        self,
        mid: str,
        business_date: str,
        *,
        cycle: str,
        fee_rate: str,
        min_payout: int,
        payout_date: str,
        channel_rates: dict[str, str] | None = None,
    ) -> Any:
        return await self._write(
            merchant_ops.settle_merchant,
            mid,
            business_date,
            cycle=cycle,
            fee_rate=fee_rate,
            min_payout=min_payout,
            payout_date=payout_date,
            channel_rates=channel_rates,
        )

    async def enroll_device(
        self,
        serial: str,
        transport_token: str,
        *,
        replace: bool = False,
    ) -> None:
        return await self._write(access.enroll_device, serial, transport_token, replace=replace)

    async def add_activation_code(
        self,
        tid: str,
        code_hash: str,
        *,
        expires_at: int,
        max_tries: int,
        serial: str | None,
    ) -> int:
        return await self._write(
            access.add_activation_code,
            tid,
            code_hash,
            expires_at=expires_at,
            max_tries=max_tries,
            serial=serial,
        )

    async def count_activation_try(self, code_id: int) -> int:
        return await self._write(access.count_activation_try, code_id)

    async def activate_terminal(
        self,
        code_id: int,
        tid: str,
        *,
        tmk_token: str,
        serial: str,
        now: int,
    ) -> bool:
        return await self._write(
            access.activate_terminal,
            code_id,
            tid,
            tmk_token=tmk_token,
            serial=serial,
            now=now,
        )

    async def add_api_token(
        self,
        mid: str,
        token_hash: str,
        label: str | None = None,
        expires_at: int | None = None,
    ) -> int:
        return await self._write(access.add_api_token, mid, token_hash, label, expires_at)

    async def rehash_api_token(self, token_id: int, old_hash: str, new_hash: str) -> bool:
        return await self._write(access.rehash_api_token, token_id, old_hash, new_hash)

    async def revoke_api_token(self, token_id: int) -> None:
        return await self._write(access.revoke_api_token, token_id)

    async def set_webhook(self, mid: str, url: str, sealed_secret: str, secret_check: str) -> None:
        return await self._write(webhooks.set_webhook, mid, url, sealed_secret, secret_check)

    async def clear_webhook(self, mid: str) -> None:
        return await self._write(webhooks.clear_webhook, mid)

    async def claim_webhook_events(self, hold_ms: int, limit: int = 50) -> list[WebhookEvent]:
        return await self._write(webhooks.claim_webhook_events, hold_ms, limit)

    async def record_webhook_attempt(
        self,
        event_id: str,
        *,
        url: str,
        status_code: int | None,
        latency_ms: int,
        error: str | None,
        delivered: bool,
        retry_in_ms: int = 0,
        give_up_after_ms: int = 86400000,
    ) -> str:
        return await self._write(
            webhooks.record_webhook_attempt,
            event_id,
            url=url,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
            delivered=delivered,
            retry_in_ms=retry_in_ms,
            give_up_after_ms=give_up_after_ms,
        )

    async def resend_webhook_event(self, event_id: str) -> WebhookEvent:
        return await self._write(webhooks.resend_webhook_event, event_id)

    # -- the QR wallet flows (host/store/qr.py)

    async def qr_open(self, txn_id: int, *, rrn: str, extra: dict[str, Any]) -> bool:
        return await self._write(qr.qr_open, txn_id, rrn=rrn, extra=extra)

    async def qr_complete(
        self,
        txn_id: int,
        *,
        auth_code: str | None,
        extra: dict[str, Any],
        settlement_date: str | None = None,
    ) -> bool:
        return await self._write(
            qr.qr_complete,
            txn_id,
            auth_code=auth_code,
            extra=extra,
            settlement_date=settlement_date,
        )

    async def qr_close(
        self, txn_id: int, reason: str, *, link: str, payload: bytes, response_code: str
    ) -> bool:
        return await self._write(
            qr.qr_close, txn_id, reason, link=link, payload=payload, response_code=response_code
        )

    async def qr_forward(
        self,
        txn_id: int,
        reason: str,
        *,
        link: str,
        payload: bytes,
        rrn: str | None,
        settlement_date: str | None,
    ) -> int:
        return await self._write(
            qr.qr_forward,
            txn_id,
            reason,
            link=link,
            payload=payload,
            rrn=rrn,
            settlement_date=settlement_date,
        )

    async def qr_forward_done(
        self, txn_id: int, *, approved: bool, response_code: str, original_status: str | None
    ) -> bool:
        return await self._write(
            qr.qr_forward_done,
            txn_id,
            approved=approved,
            response_code=response_code,
            original_status=original_status,
        )

    # -- reads

    async def get_merchant(self, mid: str) -> Merchant:
        return await self._read(estate.get_merchant, mid)

    async def list_merchants(self, status: str | None = None) -> list[Merchant]:
        return await self._read(estate.list_merchants, status)

    async def get_terminal(self, tid: str) -> Terminal:
        return await self._read(estate.get_terminal, tid)

    async def list_terminals(
        self,
        mid: str | None = None,
        status: str | None = None,
    ) -> list[Terminal]:
        return await self._read(estate.list_terminals, mid, status)

    async def list_secondaries(self, master_tid: str) -> list[Terminal]:
        return await self._read(tills.list_secondaries, master_tid)

    async def get_operator(self, tid: str, operator_no: str) -> Operator:
        return await self._read(estate.get_operator, tid, operator_no)

    async def list_operators(self, tid: str | None = None) -> list[Operator]:
        return await self._read(estate.list_operators, tid)

    async def get_transaction(self, txn_id: int) -> Transaction:
        return await self._read(journal.get_transaction, txn_id)

    async def find_transaction(
        self,
        tid: str,
        batch: str,
        stan: str,
        business_date: str,
    ) -> Transaction | None:
        return await self._read(journal.find_transaction, tid, batch, stan, business_date)

    async def find_by_rrn(
        self,
        rrn: str,
        business_date: str | None = None,
        tid: str | None = None,
    ) -> list[Transaction]:
        return await self._read(journal.find_by_rrn, rrn, business_date, tid)

    async def find_by_original(self, original_id: int) -> list[Transaction]:
        return await self._read(journal.find_by_original, original_id)

    async def find_in_batch(self, tid: str, batch: str, stan: str) -> list[Transaction]:
        return await self._read(journal.find_in_batch, tid, batch, stan)

    async def find_by_auth_code(self, tid: str, txn_type: str, auth_code: str) -> list[Transaction]:
        return await self._read(journal.find_by_auth_code, tid, txn_type, auth_code)

    async def list_transactions(
        self,
        *,
        tid: str | None = None,
        mid: str | None = None,
        business_date: str | None = None,
        status: str | None = None,
        rrn: str | None = None,
        txn_type: str | None = None,
        batch: str | None = None,
        pan_fingerprint: str | None = None,
        channel: str | None = None,
        rolls_up_to: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Transaction]:
        return await self._read(
            journal.list_transactions,
            tid=tid,
            mid=mid,
            business_date=business_date,
            status=status,
            rrn=rrn,
            txn_type=txn_type,
            batch=batch,
            pan_fingerprint=pan_fingerprint,
            channel=channel,
            rolls_up_to=rolls_up_to,
            limit=limit,
            offset=offset,
        )

    async def batch_totals(self, tid: str, batch: str) -> BatchTotals:
        return await self._read(journal.batch_totals, tid, batch)

    async def get_reversal(self, original_id: int) -> Reversal | None:
        return await self._read(reversals.get_reversal, original_id)

    async def saf_due(
        self,
        now: int | None = None,
        limit: int = 100,
        link: str | None = None,
    ) -> list[SafItem]:
        return await self._read(reversals.saf_due, now, limit, link)

    async def saf_get(self, saf_id: int) -> SafItem:
        return await self._read(reversals.saf_get, saf_id)

    async def get_batch(self, tid: str, batch: str) -> Batch:
        return await self._read(journal.get_batch, tid, batch)

    async def list_batches(self, tid: str | None = None, status: str | None = None) -> list[Batch]:
        return await self._read(journal.list_batches, tid, status)

    async def list_batch_upload_records(self, tid: str, batch: str) -> list[BatchUploadRecord]:
        return await self._read(journal.list_batch_upload_records, tid, batch)

    async def get_business_day(self) -> BusinessDay | None:
        return await self._read(journal.get_business_day)

    async def get_risk_limit_rows(self, mid: str, mcc: str) -> list[Any]:
        return await self._read(merchant_ops.get_risk_limit_rows, mid, mcc)

    async def list_risk_limits(self) -> list[Any]:
        return await self._read(merchant_ops.list_risk_limits)

    async def merchant_risk_totals(
        self,
        mid: str,
        business_date: str,
        month_start: str,
    ) -> dict[str, int]:
        return await self._read(merchant_ops.merchant_risk_totals, mid, business_date, month_start)

    async def recent_card_debits(self, since_ms: int) -> list[tuple[str, int, int]]:
        return await self._read(merchant_ops.recent_card_debits, since_ms)

    async def list_risk_events(
        self,
        *,
        mid: str | None = None,
        business_date: str | None = None,
        tid: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Any]:
        return await self._read(
            merchant_ops.list_risk_events,
            mid=mid,
            business_date=business_date,
            tid=tid,
            limit=limit,
            offset=offset,
        )

    async def list_security_events(
        self,
        *,
        kind: str | None = None,
        tid: str | None = None,
        peer: str | None = None,
        limit: int = 100,
    ) -> list[Any]:
        return await self._read(
            merchant_ops.list_security_events,
            kind=kind,
            tid=tid,
            peer=peer,
            limit=limit,
        )

    async def get_merchant_terms(self, mid: str) -> Any:
        return await self._read(merchant_ops.get_merchant_terms, mid)

    async def merchant_day_totals(
        self,
        business_date: str,
        mid: str | None = None,
    ) -> dict[str, Any]:
        return await self._read(merchant_ops.merchant_day_totals, business_date, mid)

    async def settlement_candidates(self, business_date: str) -> list[str]:
        return await self._read(merchant_ops.settlement_candidates, business_date)

    async def get_merchant_settlement(self, mid: str, business_date: str) -> Any:
        return await self._read(merchant_ops.get_merchant_settlement, mid, business_date)

    async def list_merchant_settlements(
        self,
        *,
        mid: str | None = None,
        business_date: str | None = None,
        limit: int = 1000,
    ) -> list[Any]:
        return await self._read(
            merchant_ops.list_merchant_settlements,
            mid=mid,
            business_date=business_date,
            limit=limit,
        )

    async def counted_transactions(self, mid: str, business_date: str) -> list[Transaction]:
        return await self._read(merchant_ops.counted_transactions, mid, business_date)

    async def till_day_totals(self, business_date: str, mid: str | None = None) -> list[TillTotals]:
        return await self._read(tills.till_day_totals, business_date, mid)

    async def get_device(self, serial: str) -> Any:
        return await self._read(access.get_device, serial)

    async def latest_activation_code(self, tid: str) -> Any:
        return await self._read(access.latest_activation_code, tid)

    async def get_api_token(self, token_id: int) -> Any:
        return await self._read(access.get_api_token, token_id)

    async def list_api_tokens(self, mid: str | None = None) -> list[Any]:
        return await self._read(access.list_api_tokens, mid)

    async def merchant_channel_totals(self, business_date: str, mid: str) -> dict[str, Any]:
        return await self._read(merchant_ops.merchant_channel_totals, business_date, mid)

    async def get_webhook(self, mid: str) -> MerchantWebhook | None:
        return await self._read(webhooks.get_webhook, mid)

    async def get_webhook_event(self, event_id: str) -> WebhookEvent:
        return await self._read(webhooks.get_webhook_event, event_id)

    async def list_webhook_events(
        self,
        *,
        mid: str | None = None,
        transaction_id: int | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[WebhookEvent]:
        return await self._read(
            webhooks.list_webhook_events,
            mid=mid,
            transaction_id=transaction_id,
            status=status,
            limit=limit,
        )

    async def list_webhook_deliveries(
        self, *, mid: str | None = None, event_id: str | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        return await self._read(
            webhooks.list_webhook_deliveries, mid=mid, event_id=event_id, limit=limit
        )

    async def count_webhook_events(self, mid: str) -> dict[str, int]:
        return await self._read(webhooks.count_webhook_events, mid)

    async def webhook_events_due(
        self,
    ) -> bool:
        return await self._read(
            webhooks.webhook_events_due,
        )


class SyncFacade(abc.ABC):
    """The blocking face for tools: one connection, one transaction per write; how is
    ``SyncStore``'s to say (the two hooks below)."""

    @abc.abstractmethod
    def _transact(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    @abc.abstractmethod
    def _read_now(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    # -- writes: committed (durably) before they return

    def add_merchant(self, mid: str, name: str, mcc: str) -> Merchant:
        return self._transact(estate.add_merchant, mid, name, mcc)

    def set_merchant_status(self, mid: str, status: str) -> None:
        return self._transact(estate.set_merchant_status, mid, status)

    def disable_merchant(self, mid: str) -> None:
        return self._transact(estate.disable_merchant, mid)

    def enable_merchant(self, mid: str) -> None:
        return self._transact(estate.enable_merchant, mid)

    def add_terminal(
        self,
        tid: str,
        mid: str,
        key_mode: str,
        *,
        serial: str | None = None,
        current_batch: str = "000001",
        master_tid: str | None = None,
    ) -> Terminal:
        return self._transact(
            estate.add_terminal,
            tid,
            mid,
            key_mode,
            serial=serial,
            current_batch=current_batch,
            master_tid=master_tid,
        )

    def set_terminal_status(self, tid: str, status: str) -> None:
        return self._transact(estate.set_terminal_status, tid, status)

    def set_terminal_profile(self, tid: str, *, balance_entries: int | None) -> None:
        return self._transact(estate.set_terminal_profile, tid, balance_entries=balance_entries)

    def disable_terminal(self, tid: str) -> None:
        return self._transact(estate.disable_terminal, tid)

    def enable_terminal(self, tid: str) -> None:
        return self._transact(estate.enable_terminal, tid)

    def set_terminal_keys(
        self,
        tid: str,
        *,
        tmk_token: str | None = None,
        bdk_token: str | None = None,
    ) -> None:
        return self._transact(
            estate.set_terminal_keys,
            tid,
            tmk_token=tmk_token,
            bdk_token=bdk_token,
        )

    def set_master(self, tid: str, master_tid: str | None) -> Terminal:
        return self._transact(tills.set_master, tid, master_tid)

    def sign_on(
        self,
        tid: str,
        *,
        pik_token: str,
        mak_token: str,
        tdk_token: str | None = None,
        operator: str | None = None,
        now: int | None = None,
    ) -> str:
        return self._transact(
            estate.sign_on,
            tid,
            pik_token=pik_token,
            mak_token=mak_token,
            tdk_token=tdk_token,
            operator=operator,
            now=now,
        )

    def sign_off(self, tid: str) -> None:
        return self._transact(estate.sign_off, tid)

    def promote_keys(self, tid: str, mak_token: str) -> bool:
        return self._transact(estate.promote_keys, tid, mak_token)

    def drop_pending_keys(self, tid: str, mak_token: str) -> bool:
        return self._transact(estate.drop_pending_keys, tid, mak_token)

    def set_current_batch(self, tid: str, batch: str) -> None:
        return self._transact(estate.set_current_batch, tid, batch)

    def add_operator(self, tid: str, operator_no: str, password_hash: str, role: str) -> Operator:
        return self._transact(estate.add_operator, tid, operator_no, password_hash, role)

    def set_operator_status(self, tid: str, operator_no: str, status: str) -> None:
        return self._transact(estate.set_operator_status, tid, operator_no, status)

    def disable_operator(self, tid: str, operator_no: str) -> None:
        return self._transact(estate.disable_operator, tid, operator_no)

    def enable_operator(self, tid: str, operator_no: str) -> None:
        return self._transact(estate.enable_operator, tid, operator_no)

    def insert_pending(self, txn: NewTransaction, *, txn_id: int | None = None) -> int:
        return self._transact(journal.insert_pending, txn, txn_id=txn_id)

    def insert_pending_child(
        self,
        txn: NewTransaction,
        *,
        sibling_types: tuple[str, ...],
        statuses: tuple[str, ...] = ("pending", "approved", "timeout"),
        max_amount: int | None = None,
        txn_id: int | None = None,
    ) -> int:
        return self._transact(
            journal.insert_pending_child,
            txn,
            sibling_types=sibling_types,
            statuses=statuses,
            max_amount=max_amount,
            txn_id=txn_id,
        )

    def record_outcome(
        self,
        txn_id: int,
        *,
        status: str,
        response_code: str | None = None,
        auth_code: str | None = None,
        rrn: str | None = None,
        issuer_link: str | None = None,
        issuer_stan: str | None = None,
        settlement_date: str | None = None,
        responded_at: int | None = None,
        latency_ms: int | None = None,
        extra: dict[str, Any] | None = None,
        original_status: str | None = None,
        notify: bool = True,
    ) -> None:
        return self._transact(
            journal.record_outcome,
            txn_id,
            status=status,
            response_code=response_code,
            auth_code=auth_code,
            rrn=rrn,
            issuer_link=issuer_link,
            issuer_stan=issuer_stan,
            settlement_date=settlement_date,
            responded_at=responded_at,
            latency_ms=latency_ms,
            extra=extra,
            original_status=original_status,
            notify=notify,
        )

    def set_status(self, txn_id: int, status: str) -> None:
        return self._transact(journal.set_status, txn_id, status)

    def record_reversal(
        self,
        original_id: int,
        reason: str,
        *,
        link: str | None = None,
        payload: bytes | None = None,
        next_attempt_at: int | None = None,
    ) -> Reversal:
        return self._transact(
            reversals.record_reversal,
            original_id,
            reason,
            link=link,
            payload=payload,
            next_attempt_at=next_attempt_at,
        )

    def record_unknown_outcome(
        self,
        txn_id: int,
        reason: str,
        *,
        link: str,
        payload: bytes,
        rrn: str | None = None,
        settlement_date: str | None = None,
    ) -> Reversal | None:
        return self._transact(
            reversals.record_unknown_outcome,
            txn_id,
            reason,
            link=link,
            payload=payload,
            rrn=rrn,
            settlement_date=settlement_date,
        )

    def saf_enqueue(
        self,
        transaction_id: int | None,
        link: str,
        payload: bytes,
        *,
        kind: str = "reversal",
        next_attempt_at: int | None = None,
    ) -> int:
        return self._transact(
            reversals.saf_enqueue,
            transaction_id,
            link,
            payload,
            kind=kind,
            next_attempt_at=next_attempt_at,
        )

    def saf_mark_attempt(self, saf_id: int, next_attempt_at: int, error: str | None = None) -> None:
        return self._transact(reversals.saf_mark_attempt, saf_id, next_attempt_at, error)

    def saf_ack(self, saf_id: int) -> None:
        return self._transact(reversals.saf_ack, saf_id)

    def saf_fail(self, saf_id: int, error: str) -> None:
        return self._transact(reversals.saf_fail, saf_id, error)

    def open_batch(self, tid: str, batch: str, business_date: str) -> Batch:
        return self._transact(journal.open_batch, tid, batch, business_date)

    def close_batch(
        self,
        tid: str,
        batch: str,
        *,
        status: str,
        host_totals: BatchTotals | dict[str, Any] | None = None,
        terminal_totals: BatchTotals | dict[str, Any] | None = None,
    ) -> None:
        return self._transact(
            journal.close_batch,
            tid,
            batch,
            status=status,
            host_totals=host_totals,
            terminal_totals=terminal_totals,
        )

    def settle_batch(
        self,
        tid: str,
        batch: str,
        *,
        next_batch: str,
        business_date: str,
        status: str,
        host_totals: BatchTotals | dict[str, Any] | None,
        terminal_totals: BatchTotals | dict[str, Any] | None,
    ) -> None:
        return self._transact(
            journal.settle_batch,
            tid,
            batch,
            next_batch=next_batch,
            business_date=business_date,
            status=status,
            host_totals=host_totals,
            terminal_totals=terminal_totals,
        )

    def add_batch_upload_record(
        self,
        tid: str,
        batch: str,
        seq: int,
        record: dict[str, Any],
        agrees: bool,
    ) -> None:
        return self._transact(journal.add_batch_upload_record, tid, batch, seq, record, agrees)

    def set_business_day(
        self,
        business_date: str,
        settlement_date: str,
        cutover_at: int | None = None,
    ) -> BusinessDay:
        return self._transact(journal.set_business_day, business_date, settlement_date, cutover_at)

    def set_risk_limits(self, scope: str, key: str, values: dict[str, int | None]) -> None:
        return self._transact(merchant_ops.set_risk_limits, scope, key, values)

    def delete_risk_limits(self, scope: str, key: str) -> None:
        return self._transact(merchant_ops.delete_risk_limits, scope, key)

    def add_risk_event(
        self,
        *,
        mid: str,
        tid: str,
        business_date: str,
        txn_type: str,
        amount: int,
        rule: str,
        response_code: str,
        detail: str,
        pan_masked: str | None = None,
    ) -> int:
        return self._transact(
            merchant_ops.add_risk_event,
            mid=mid,
            tid=tid,
            business_date=business_date,
            txn_type=txn_type,
            amount=amount,
            rule=rule,
            response_code=response_code,
            detail=detail,
            pan_masked=pan_masked,
        )

    def add_security_events(self, events: list[dict[str, Any]]) -> None:
        return self._transact(merchant_ops.add_security_events, events)

    def set_merchant_terms(self, mid: str, values: dict[str, Any]) -> None:
        return self._transact(merchant_ops.set_merchant_terms, mid, values)

    def settle_merchant(
        self,
        mid: str,
        business_date: str,
        *,
        cycle: str,
        fee_rate: str,
        min_payout: int,
        payout_date: str,
        channel_rates: dict[str, str] | None = None,
    ) -> Any:
        return self._transact(
            merchant_ops.settle_merchant,
            mid,
            business_date,
            cycle=cycle,
            fee_rate=fee_rate,
            min_payout=min_payout,
            payout_date=payout_date,
            channel_rates=channel_rates,
        )

    def enroll_device(self, serial: str, transport_token: str, *, replace: bool = False) -> None:
        return self._transact(access.enroll_device, serial, transport_token, replace=replace)

    def add_activation_code(
        self,
        tid: str,
        code_hash: str,
        *,
        expires_at: int,
        max_tries: int,
        serial: str | None,
    ) -> int:
        return self._transact(
            access.add_activation_code,
            tid,
            code_hash,
            expires_at=expires_at,
            max_tries=max_tries,
            serial=serial,
        )

    def count_activation_try(self, code_id: int) -> int:
        return self._transact(access.count_activation_try, code_id)

    def activate_terminal(
        self,
        code_id: int,
        tid: str,
        *,
        tmk_token: str,
        serial: str,
        now: int,
    ) -> bool:
        return self._transact(
            access.activate_terminal,
            code_id,
            tid,
            tmk_token=tmk_token,
            serial=serial,
            now=now,
        )

    def add_api_token(
        self,
        mid: str,
        token_hash: str,
        label: str | None = None,
        expires_at: int | None = None,
    ) -> int:
        return self._transact(access.add_api_token, mid, token_hash, label, expires_at)

    def rehash_api_token(self, token_id: int, old_hash: str, new_hash: str) -> bool:
        return self._transact(access.rehash_api_token, token_id, old_hash, new_hash)

    def revoke_api_token(self, token_id: int) -> None:
        return self._transact(access.revoke_api_token, token_id)

    def set_webhook(self, mid: str, url: str, sealed_secret: str, secret_check: str) -> None:
        return self._transact(webhooks.set_webhook, mid, url, sealed_secret, secret_check)

    def clear_webhook(self, mid: str) -> None:
        return self._transact(webhooks.clear_webhook, mid)

    def claim_webhook_events(self, hold_ms: int, limit: int = 50) -> list[WebhookEvent]:
        return self._transact(webhooks.claim_webhook_events, hold_ms, limit)

    def record_webhook_attempt(
        self,
        event_id: str,
        *,
        url: str,
        status_code: int | None,
        latency_ms: int,
        error: str | None,
        delivered: bool,
        retry_in_ms: int = 0,
        give_up_after_ms: int = 86400000,
    ) -> str:
        return self._transact(
            webhooks.record_webhook_attempt,
            event_id,
            url=url,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
            delivered=delivered,
            retry_in_ms=retry_in_ms,
            give_up_after_ms=give_up_after_ms,
        )

    def resend_webhook_event(self, event_id: str) -> WebhookEvent:
        return self._transact(webhooks.resend_webhook_event, event_id)

    # -- the QR wallet flows (host/store/qr.py)

    def qr_open(self, txn_id: int, *, rrn: str, extra: dict[str, Any]) -> bool:
        return self._transact(qr.qr_open, txn_id, rrn=rrn, extra=extra)

    def qr_complete(
        self,
        txn_id: int,
        *,
        auth_code: str | None,
        extra: dict[str, Any],
        settlement_date: str | None = None,
    ) -> bool:
        return self._transact(
            qr.qr_complete,
            txn_id,
            auth_code=auth_code,
            extra=extra,
            settlement_date=settlement_date,
        )

    def qr_close(
        self, txn_id: int, reason: str, *, link: str, payload: bytes, response_code: str
    ) -> bool:
        return self._transact(
            qr.qr_close, txn_id, reason, link=link, payload=payload, response_code=response_code
        )

    def qr_forward(
        self,
        txn_id: int,
        reason: str,
        *,
        link: str,
        payload: bytes,
        rrn: str | None,
        settlement_date: str | None,
    ) -> int:
        return self._transact(
            qr.qr_forward,
            txn_id,
            reason,
            link=link,
            payload=payload,
            rrn=rrn,
            settlement_date=settlement_date,
        )

    def qr_forward_done(
        self, txn_id: int, *, approved: bool, response_code: str, original_status: str | None
    ) -> bool:
        return self._transact(
            qr.qr_forward_done,
            txn_id,
            approved=approved,
            response_code=response_code,
            original_status=original_status,
        )

    # -- reads

    def get_merchant(self, mid: str) -> Merchant:
        return self._read_now(estate.get_merchant, mid)

    def list_merchants(self, status: str | None = None) -> list[Merchant]:
        return self._read_now(estate.list_merchants, status)

    def get_terminal(self, tid: str) -> Terminal:
        return self._read_now(estate.get_terminal, tid)

    def list_terminals(self, mid: str | None = None, status: str | None = None) -> list[Terminal]:
        return self._read_now(estate.list_terminals, mid, status)

    def list_secondaries(self, master_tid: str) -> list[Terminal]:
        return self._read_now(tills.list_secondaries, master_tid)

    def get_operator(self, tid: str, operator_no: str) -> Operator:
        return self._read_now(estate.get_operator, tid, operator_no)

    def list_operators(self, tid: str | None = None) -> list[Operator]:
        return self._read_now(estate.list_operators, tid)

    def get_transaction(self, txn_id: int) -> Transaction:
        return self._read_now(journal.get_transaction, txn_id)

    def find_transaction(
        self,
        tid: str,
        batch: str,
        stan: str,
        business_date: str,
    ) -> Transaction | None:
        return self._read_now(journal.find_transaction, tid, batch, stan, business_date)

    def find_by_rrn(
        self,
        rrn: str,
        business_date: str | None = None,
        tid: str | None = None,
    ) -> list[Transaction]:
        return self._read_now(journal.find_by_rrn, rrn, business_date, tid)

    def find_by_original(self, original_id: int) -> list[Transaction]:
        return self._read_now(journal.find_by_original, original_id)

    def find_in_batch(self, tid: str, batch: str, stan: str) -> list[Transaction]:
        return self._read_now(journal.find_in_batch, tid, batch, stan)

    def find_by_auth_code(self, tid: str, txn_type: str, auth_code: str) -> list[Transaction]:
        return self._read_now(journal.find_by_auth_code, tid, txn_type, auth_code)

    def list_transactions(
        self,
        *,
        tid: str | None = None,
        mid: str | None = None,
        business_date: str | None = None,
        status: str | None = None,
        rrn: str | None = None,
        txn_type: str | None = None,
        batch: str | None = None,
        pan_fingerprint: str | None = None,
        channel: str | None = None,
        rolls_up_to: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Transaction]:
        return self._read_now(
            journal.list_transactions,
            tid=tid,
            mid=mid,
            business_date=business_date,
            status=status,
            rrn=rrn,
            txn_type=txn_type,
            batch=batch,
            pan_fingerprint=pan_fingerprint,
            channel=channel,
            rolls_up_to=rolls_up_to,
            limit=limit,
            offset=offset,
        )

    def batch_totals(self, tid: str, batch: str) -> BatchTotals:
        return self._read_now(journal.batch_totals, tid, batch)

    def get_reversal(self, original_id: int) -> Reversal | None:
        return self._read_now(reversals.get_reversal, original_id)

    def saf_due(
        self,
        now: int | None = None,
        limit: int = 100,
        link: str | None = None,
    ) -> list[SafItem]:
        return self._read_now(reversals.saf_due, now, limit, link)

    def saf_get(self, saf_id: int) -> SafItem:
        return self._read_now(reversals.saf_get, saf_id)

    def get_batch(self, tid: str, batch: str) -> Batch:
        return self._read_now(journal.get_batch, tid, batch)

    def list_batches(self, tid: str | None = None, status: str | None = None) -> list[Batch]:
        return self._read_now(journal.list_batches, tid, status)

    def list_batch_upload_records(self, tid: str, batch: str) -> list[BatchUploadRecord]:
        return self._read_now(journal.list_batch_upload_records, tid, batch)

    def get_business_day(self) -> BusinessDay | None:
        return self._read_now(journal.get_business_day)

    def get_risk_limit_rows(self, mid: str, mcc: str) -> list[Any]:
        return self._read_now(merchant_ops.get_risk_limit_rows, mid, mcc)

    def list_risk_limits(self) -> list[Any]:
        return self._read_now(merchant_ops.list_risk_limits)

    def merchant_risk_totals(
        self,
        mid: str,
        business_date: str,
        month_start: str,
    ) -> dict[str, int]:
        return self._read_now(merchant_ops.merchant_risk_totals, mid, business_date, month_start)

    def recent_card_debits(self, since_ms: int) -> list[tuple[str, int, int]]:
        return self._read_now(merchant_ops.recent_card_debits, since_ms)

    def list_risk_events(
        self,
        *,
        mid: str | None = None,
        business_date: str | None = None,
        tid: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Any]:
        return self._read_now(
            merchant_ops.list_risk_events,
            mid=mid,
            business_date=business_date,
            tid=tid,
            limit=limit,
            offset=offset,
        )

    def list_security_events(
        self,
        *,
        kind: str | None = None,
        tid: str | None = None,
        peer: str | None = None,
        limit: int = 100,
    ) -> list[Any]:
        return self._read_now(
            merchant_ops.list_security_events,
            kind=kind,
            tid=tid,
            peer=peer,
            limit=limit,
        )

    def get_merchant_terms(self, mid: str) -> Any:
        return self._read_now(merchant_ops.get_merchant_terms, mid)

    def merchant_day_totals(self, business_date: str, mid: str | None = None) -> dict[str, Any]:
        return self._read_now(merchant_ops.merchant_day_totals, business_date, mid)

    def settlement_candidates(self, business_date: str) -> list[str]:
        return self._read_now(merchant_ops.settlement_candidates, business_date)

    def get_merchant_settlement(self, mid: str, business_date: str) -> Any:
        return self._read_now(merchant_ops.get_merchant_settlement, mid, business_date)

    def list_merchant_settlements(
        self,
        *,
        mid: str | None = None,
        business_date: str | None = None,
        limit: int = 1000,
    ) -> list[Any]:
        return self._read_now(
            merchant_ops.list_merchant_settlements,
            mid=mid,
            business_date=business_date,
            limit=limit,
        )

    def counted_transactions(self, mid: str, business_date: str) -> list[Transaction]:
        return self._read_now(merchant_ops.counted_transactions, mid, business_date)

    def till_day_totals(self, business_date: str, mid: str | None = None) -> list[TillTotals]:
        return self._read_now(tills.till_day_totals, business_date, mid)

    def get_device(self, serial: str) -> Any:
        return self._read_now(access.get_device, serial)

    def latest_activation_code(self, tid: str) -> Any:
        return self._read_now(access.latest_activation_code, tid)

    def get_api_token(self, token_id: int) -> Any:
        return self._read_now(access.get_api_token, token_id)

    def list_api_tokens(self, mid: str | None = None) -> list[Any]:
        return self._read_now(access.list_api_tokens, mid)

    def merchant_channel_totals(self, business_date: str, mid: str) -> dict[str, Any]:
        return self._read_now(merchant_ops.merchant_channel_totals, business_date, mid)

    def get_webhook(self, mid: str) -> MerchantWebhook | None:
        return self._read_now(webhooks.get_webhook, mid)

    def get_webhook_event(self, event_id: str) -> WebhookEvent:
        return self._read_now(webhooks.get_webhook_event, event_id)

    def list_webhook_events(
        self,
        *,
        mid: str | None = None,
        transaction_id: int | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[WebhookEvent]:
        return self._read_now(
            webhooks.list_webhook_events,
            mid=mid,
            transaction_id=transaction_id,
            status=status,
            limit=limit,
        )

    def list_webhook_deliveries(
        self, *, mid: str | None = None, event_id: str | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        return self._read_now(
            webhooks.list_webhook_deliveries, mid=mid, event_id=event_id, limit=limit
        )

    def count_webhook_events(self, mid: str) -> dict[str, int]:
        return self._read_now(webhooks.count_webhook_events, mid)

    def webhook_events_due(
        self,
    ) -> bool:
        return self._read_now(
            webhooks.webhook_events_due,
        )
