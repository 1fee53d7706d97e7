"""The QR journal writes on both backends: each moves a row only from the state its flow saw,
so the notification, the terminal's query, the validity watch and a reversal racing for one
order move it once (docs/qr.md)."""

from tests.store.test_journal import txn


def _order(store, stan: str, txn_type: str = "qr_pay", **kw) -> int:
    return store.insert_pending(txn(stan, txn_type, pan_masked=None, pan_fingerprint=None, **kw))


def test_an_order_is_opened_then_completed_once(sync_store):
    i = _order(sync_store, "000001")
    assert sync_store.qr_open(i, rrn="000000000101", extra={"order": "A1"})
    row = sync_store.get_transaction(i)
    assert (row.status, row.rrn, row.extra) == ("pending", "000000000101", {"order": "A1"})
    assert sync_store.qr_complete(i, auth_code="W00001", extra={"order": "A1", "paid": True})
    assert not sync_store.qr_complete(i, auth_code="W00002", extra={})  # the second loses
    row = sync_store.get_transaction(i)
    assert (row.status, row.response_code, row.auth_code) == ("approved", "00", "W00001")
    assert row.settlement_date == row.business_date  # none given: the business date
    assert not sync_store.qr_open(i, rrn="000000000999", extra={})  # not pending any more


def test_closing_an_unpaid_order_queues_its_cancel_once(sync_store):
    i = _order(sync_store, "000002")
    assert sync_store.qr_close(i, "validity over", link="wallet", payload=b"{}",
                               response_code="09")  # fmt: skip
    assert not sync_store.qr_close(i, "again", link="wallet", payload=b"{}", response_code="09")
    assert not sync_store.qr_complete(i, auth_code="W1", extra={})  # a late payment: refunded
    row = sync_store.get_transaction(i)
    assert (row.status, row.response_code) == ("reversed", "09")
    assert sync_store.get_reversal(i) is not None
    assert [item.transaction_id for item in sync_store.saf_due(now=2**62)] == [i]


def test_a_forwarded_refund_is_retried_then_settled_once_and_voids_its_sale(sync_store):
    sale = _order(sync_store, "000003")
    sync_store.qr_complete(sale, auth_code="W3", extra={})
    void = _order(sync_store, "000004", "void", original_id=sale)
    saf_id = sync_store.qr_forward(void, "no answer", link="wallet", payload=b"{}",
                                   rrn="000000000104", settlement_date=None)  # fmt: skip
    assert saf_id and sync_store.get_transaction(void).status == "timeout"
    assert sync_store.saf_get(saf_id).kind == "forward"
    assert sync_store.qr_forward_done(void, approved=True, response_code="00",
                                      original_status="voided")  # fmt: skip
    assert not sync_store.qr_forward_done(void, approved=False, response_code="05",
                                          original_status=None)  # fmt: skip
    assert sync_store.get_transaction(void).status == "approved"
    assert sync_store.get_transaction(sale).status == "voided"
