"""The webhook outbox in the journal (host/store/webhooks.py), on both backends: an event is
part of the outcome's own transaction, only money-moving rows of subscribed merchants make
one, and the retry/give-up bookkeeping."""

import json

import pytest

from host.merchant.webhooks import retry_delay_ms
from host.store import NewTransaction
from host.store.db import connect
from host.store.webhooks import NOTIFIED

MID, OTHER = "100000000000001", "100000000000002"
DATE = "20250310"


@pytest.fixture
def store(sync_store):
    for mid in (MID, OTHER):
        sync_store.add_merchant(mid, "SHOP", "5411")
    sync_store.set_webhook(MID, "https://merchant.example/hook", "s1:sealed", "ABC123")
    return sync_store


def _pending(store, mid=MID, txn_type="purchase", stan="000001", amount=1_000, **kw):
    return store.insert_pending(
        NewTransaction(tid="T0000001", mid=mid, batch="000001", stan=stan, business_date=DATE,
                       txn_type=txn_type, mti="0200", amount=amount,
                       pan_masked="622202******0001", **kw)
    )  # fmt: skip


def test_outcomes_of_a_subscribed_merchant_become_events_with_a_fixed_body(store):
    sale = _pending(store)
    store.record_outcome(sale, status="approved", response_code="00", rrn="R1", auth_code="A1")
    declined = _pending(store, stan="000002")
    store.record_outcome(declined, status="declined", response_code="51")
    void = _pending(store, txn_type="void", stan="000003", original_id=sale)
    store.record_outcome(void, status="approved", response_code="00", original_status="voided")
    refund = _pending(store, txn_type="refund", stan="000004", amount=300, original_id=sale)
    store.record_outcome(refund, status="approved", response_code="00")
    inquiry = _pending(store, txn_type="balance_inquiry", stan="000005", amount=0)
    store.record_outcome(inquiry, status="approved", response_code="00")  # no money: no event
    theirs = _pending(store, mid=OTHER, stan="000006")
    store.record_outcome(theirs, status="approved", response_code="00")  # no webhook: no event
    events = sorted(store.list_webhook_events(), key=lambda e: e.id)
    assert [(e.transaction_id, e.kind) for e in events] == [
        (sale, "transaction.approved"), (declined, "transaction.declined"),
        (void, "transaction.voided"), (refund, "transaction.refunded"),
    ]  # fmt: skip
    body = json.loads(events[0].payload)
    assert body["id"] == events[0].event_id and body["type"] == "transaction.approved"
    txn = body["data"]["transaction"]
    assert (txn["rrn"], txn["auth_code"], txn["amount"], txn["channel"]) == ("R1", "A1", 1_000,
                                                                               "card")  # fmt: skip
    assert "pan_fingerprint" not in txn and "extra" not in txn
    assert json.loads(events[2].payload)["data"]["transaction"]["original_rrn"] == "R1"
    assert all(e.status == "pending" and e.attempts == 0 for e in events)
    assert "balance_inquiry" not in NOTIFIED and "purchase" in NOTIFIED


def test_an_unknown_outcome_is_one_reversed_event_and_a_second_reversal_none(store):
    sale = _pending(store)
    store.record_unknown_outcome(sale, "98 timeout", link="sim", payload=b"x")
    kinds = [e.kind for e in store.list_webhook_events()]
    assert kinds == ["transaction.reversed"]  # not also a 'declined' for the 98
    store.record_reversal(_pending(store, stan="000002"), "terminal 0400")
    assert len(store.list_webhook_events()) == 2


def test_the_event_commits_or_rolls_back_with_its_outcome(store, url):
    sale = _pending(store)
    db = connect(url)
    try:
        db.begin(immediate=True)
        from host.store import ops, webhooks

        ops.record_outcome(db, sale, status="approved", response_code="00")
        assert len(webhooks.list_webhook_events(db)) == 1  # inside the transaction
        db.rollback()  # the crash before the commit
    finally:
        db.close()
    assert store.get_transaction(sale).status == "pending"
    assert store.list_webhook_events() == []


def test_attempts_retry_then_give_up_and_a_resend_starts_again(store):
    sale = _pending(store)
    store.record_outcome(sale, status="approved", response_code="00")
    (event,) = store.claim_webhook_events(60_000)
    assert store.claim_webhook_events(60_000) == []  # held while in flight
    state = store.record_webhook_attempt(
        event.event_id, url="https://merchant.example/hook", status_code=None, latency_ms=3,
        error="ConnectError", delivered=False, retry_in_ms=1_000, give_up_after_ms=86_400_000,
    )  # fmt: skip
    assert state == "pending"
    state = store.record_webhook_attempt(
        event.event_id, url="https://merchant.example/hook", status_code=503, latency_ms=9,
        error="HTTP 503", delivered=False, retry_in_ms=2_000, give_up_after_ms=1_000,
    )  # fmt: skip
    assert state == "failed"  # the next attempt would be past the give-up time
    failed = store.get_webhook_event(event.event_id)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 2, "HTTP 503")
    again = store.resend_webhook_event(event.event_id)
    assert again.status == "pending" and again.payload == event.payload
    (claimed,) = store.claim_webhook_events(60_000)
    assert claimed.event_id == event.event_id
    assert store.record_webhook_attempt(
        event.event_id, url="https://merchant.example/hook", status_code=200, latency_ms=5,
        error=None, delivered=True,
    ) == "delivered"  # fmt: skip
    log = store.list_webhook_deliveries(event_id=event.event_id)
    assert [(d.attempt, d.status_code) for d in log] == [(3, 200), (2, 503), (1, None)]
    assert store.count_webhook_events(MID) == {"pending": 0, "delivered": 1, "failed": 0}


def test_retry_schedule_doubles_up_to_the_cap():
    assert [retry_delay_ms(n, 1.0, 3600.0) for n in (1, 2, 3, 4, 12, 13, 40)] == [
        1_000, 2_000, 4_000, 8_000, 2_048_000, 3_600_000, 3_600_000,
    ]  # fmt: skip


def test_a_cleared_webhook_makes_no_more_events(store):
    assert "s1:sealed" not in repr(store.get_webhook(MID))  # the sealed secret stays out
    store.clear_webhook(MID)
    sale = _pending(store)
    store.record_outcome(sale, status="approved", response_code="00")
    assert store.list_webhook_events() == [] and store.get_webhook(MID) is None
