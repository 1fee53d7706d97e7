import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.store import (
    AlreadyReversed,
    BatchTotals,
    DuplicateTransaction,
    GroupTotals,
    NewTransaction,
    NotFound,
    SyncStore,
    pan_fingerprint,
)
from host.store.records import CREDIT_TYPES, DEBIT_TYPES, TXN_TYPES, PanFingerprinter

DATE = "20261125"


def txn(stan: str, txn_type: str = "purchase", **kw) -> NewTransaction:
    fields = dict(
        tid="T1",
        mid="M1",
        batch="000001",
        stan=stan,
        business_date=DATE,
        txn_type=txn_type,
        mti="0200",
        amount=1000,
        pan_masked="622848******1234",
        pan_fingerprint="fp-abc",
    )
    fields.update(kw)
    return NewTransaction(**fields)


@pytest.fixture
def clocked(url):
    now = [1_700_000_000_000]
    with SyncStore.open(url, clock=lambda: now[0]) as store:
        yield store, now


def test_insert_and_read_back(sync_store):
    big = 999_999_999_999  # n12: more than 32 bits
    i = sync_store.insert_pending(
        txn("000001", amount=big, rrn="000000000001", extra={"entry_mode": "051"})
    )
    t = sync_store.get_transaction(i)
    assert (t.id, t.status, t.amount, t.pan_masked, t.rrn) == (
        i, "pending", big, "622848******1234", "000000000001",
    )  # fmt: skip
    assert isinstance(t.amount, int)
    assert t.extra == {"entry_mode": "051"}
    assert "fp-abc" not in repr(t) and "pan_fingerprint" not in t.to_dict()
    assert sync_store.insert_pending(txn("000002")) > i
    with pytest.raises(NotFound):
        sync_store.get_transaction(987654)


def test_amounts_must_be_integer_minor_units():
    with pytest.raises(ValueError):
        txn("000001", amount=10.5)
    with pytest.raises(ValueError):
        txn("000001", txn_type="cash_advance")


def test_a_clear_pan_is_refused():
    with pytest.raises(ValueError):
        txn("000001", pan_masked="6228480402564890018")
    assert txn("000001", pan_masked="622848*********0018").pan_masked.endswith("0018")


def test_duplicate_is_detected(sync_store):
    first = sync_store.insert_pending(txn("000001"))
    with pytest.raises(DuplicateTransaction) as info:
        sync_store.insert_pending(txn("000001", amount=2))
    assert info.value.existing_id == first
    # the same STAN in another batch, on another day or at another terminal is no duplicate
    sync_store.insert_pending(txn("000001", batch="000002"))
    sync_store.insert_pending(txn("000001", business_date="20261126"))
    sync_store.insert_pending(txn("000001", tid="T2"))
    assert len(sync_store.list_transactions()) == 4


def test_record_outcome(clocked):
    store, now = clocked
    i = store.insert_pending(txn("000001"))
    now[0] += 250
    store.record_outcome(
        i, status="approved", response_code="00", auth_code="A1B2C3", rrn="123456789012",
        issuer_link="cup", issuer_stan="000042", settlement_date="20261126",
    )  # fmt: skip
    t = store.get_transaction(i)
    assert (t.status, t.response_code, t.auth_code, t.rrn, t.issuer_stan) == (
        "approved", "00", "A1B2C3", "123456789012", "000042",
    )  # fmt: skip
    assert (t.responded_at - t.requested_at, t.latency_ms) == (250, 250)
    # None keeps what is there
    store.record_outcome(i, status="reversed", latency_ms=7)
    t = store.get_transaction(i)
    assert (t.status, t.auth_code, t.latency_ms) == ("reversed", "A1B2C3", 7)
    with pytest.raises(NotFound):
        store.record_outcome(4242, status="approved")
    with pytest.raises(ValueError):
        store.record_outcome(i, status="great")


def test_finders_and_list(sync_store):
    a = sync_store.insert_pending(txn("000001", rrn="R1"))
    b = sync_store.insert_pending(txn("000002", rrn="R2", business_date="20261126"))
    c = sync_store.insert_pending(txn("000003", txn_type="void", rrn="R3", original_id=a))
    sync_store.insert_pending(txn("000004", tid="T2", mid="M2", rrn="R1", business_date="20261126"))
    sync_store.record_outcome(b, status="declined", response_code="51")

    assert sync_store.find_transaction("T1", "000001", "000002", "20261126").id == b
    assert sync_store.find_transaction("T1", "000001", "000002", DATE) is None
    assert len(sync_store.find_by_rrn("R1")) == 2
    assert [t.id for t in sync_store.find_by_rrn("R1", DATE)] == [a]
    assert [t.tid for t in sync_store.find_by_rrn("R1", tid="T2")] == ["T2"]
    assert [t.id for t in sync_store.find_by_original(a)] == [c]

    assert [t.id for t in sync_store.list_transactions(tid="T1")] == [c, b, a]  # newest first
    assert [t.id for t in sync_store.list_transactions(status="declined")] == [b]
    assert [t.id for t in sync_store.list_transactions(txn_type="void")] == [c]
    assert [t.mid for t in sync_store.list_transactions(mid="M2")] == ["M2"]
    assert [t.id for t in sync_store.list_transactions(business_date=DATE)] == [c, a]
    assert [t.id for t in sync_store.list_transactions(tid="T1", limit=1, offset=1)] == [b]
    assert [t.id for t in sync_store.list_transactions(rrn="R3")] == [c]


def test_batch_totals(sync_store):
    def approved(stan, txn_type="purchase", amount=1000, **kw):
        i = sync_store.insert_pending(txn(stan, txn_type, amount=amount, **kw))
        sync_store.record_outcome(i, status="approved", response_code="00")
        return i

    approved("000001", amount=1000)
    approved("000002", "completion", amount=250)
    approved("000003", "completion_advice", amount=50)
    approved("000004", "refund", amount=300)
    approved("000005", amount=7000, card_group="foreign")
    approved("000006", "refund", amount=100, card_group="foreign")
    voided = approved("000007", amount=99)
    approved("000008", "void", amount=99, original_id=voided)
    sync_store.record_outcome(
        sync_store.find_transaction("T1", "000001", "000008", DATE).id,
        status="approved",
        original_status="voided",
    )
    reversed_ = approved("000009", amount=55)
    sync_store.record_reversal(reversed_, "98")
    approved("000010", "preauth", amount=10_000)  # a hold, not a debit
    approved("000011", "balance_inquiry", amount=0)
    declined = sync_store.insert_pending(txn("000012", amount=1234))
    sync_store.record_outcome(declined, status="declined", response_code="51")
    sync_store.insert_pending(txn("000013", amount=4321))  # still pending
    approved("000014", amount=1111, batch="000002")  # another batch
    approved("000015", amount=2222, tid="T2")  # another terminal

    assert sync_store.get_transaction(voided).status == "voided"
    assert sync_store.batch_totals("T1", "000001") == BatchTotals(
        domestic=GroupTotals(debit_amount=1300, debit_count=3, credit_amount=300, credit_count=1),
        foreign=GroupTotals(debit_amount=7000, debit_count=1, credit_amount=100, credit_count=1),
    )
    assert sync_store.batch_totals("T1", "999999") == BatchTotals()


def test_reversal_exactly_once_with_saf_in_the_same_transaction(clocked):
    store, now = clocked
    i = store.insert_pending(txn("000001"))
    store.record_outcome(i, status="timeout", response_code="98")
    rev = store.record_reversal(i, "98", link="cup", payload=b"\x04\x00reversal")
    assert (rev.original_id, rev.reason) == (i, "98") and rev.saf_id is not None
    assert store.get_transaction(i).status == "reversed"
    assert store.get_reversal(i).id == rev.id
    with pytest.raises(AlreadyReversed) as info:
        store.record_reversal(i, "98", link="cup", payload=b"again")
    assert info.value.reversal_id == rev.id
    due = store.saf_due(now[0])
    assert [(s.id, s.transaction_id, s.payload) for s in due] == [
        (rev.saf_id, i, b"\x04\x00reversal")
    ]
    with pytest.raises(NotFound):
        store.record_reversal(424242, "98", link="cup", payload=b"x")
    assert store.get_reversal(424242) is None
    assert len(store.saf_due(now[0])) == 1


def test_a_failed_reversal_leaves_nothing_behind(sync_store):
    i = sync_store.insert_pending(txn("000001"))
    with pytest.raises(ValueError):  # payload without a link: refused after the insert
        sync_store.record_reversal(i, "98", payload=b"x")
    assert sync_store.get_reversal(i) is None
    assert sync_store.get_transaction(i).status == "pending"
    sync_store.record_reversal(i, "98")  # and it can still be reversed, once


def test_saf_queue(clocked):
    store, now = clocked
    t0 = now[0]
    a = store.saf_enqueue(None, "cup", b"first")
    b = store.saf_enqueue(None, "cup", b"later", next_attempt_at=t0 + 60_000)
    c = store.saf_enqueue(None, "visa", b"other link")
    assert [s.id for s in store.saf_due(t0)] == [a, c]
    assert [s.id for s in store.saf_due(t0, link="cup")] == [a]
    assert [s.id for s in store.saf_due(t0, limit=1)] == [a]
    assert [s.id for s in store.saf_due(t0 + 60_000)] == [a, c, b]

    store.saf_mark_attempt(a, t0 + 5_000, "no response")
    item = store.saf_get(a)
    assert (item.attempts, item.next_attempt_at, item.last_error) == (1, t0 + 5_000, "no response")
    assert [s.id for s in store.saf_due(t0)] == [c]

    now[0] = t0 + 6_000
    store.saf_ack(a)
    acked = store.saf_get(a)
    assert (acked.status, acked.attempts, acked.acked_at) == ("acked", 2, t0 + 6_000)
    with pytest.raises(NotFound):
        store.saf_ack(a)  # only pending items can be acked
    store.saf_fail(c, "link retired")
    assert store.saf_get(c).status == "failed"
    assert [s.id for s in store.saf_due(t0 + 60_000)] == [b]


def test_batches_and_upload(sync_store):
    b = sync_store.open_batch("T1", "000001", DATE)
    assert (b.status, b.closed_at, b.business_date) == ("open", None, DATE)
    assert sync_store.open_batch("T1", "000001", "20991231").opened_at == b.opened_at  # no-op
    host = BatchTotals(domestic=GroupTotals(100, 1, 0, 0))
    terminal = {"domestic": {"debit_amount": 90, "debit_count": 1}}
    sync_store.close_batch(
        "T1", "000001", status="unbalanced", host_totals=host, terminal_totals=terminal
    )
    b = sync_store.get_batch("T1", "000001")
    assert b.status == "unbalanced" and b.closed_at is not None
    assert b.host_totals == host.to_dict() and b.terminal_totals == terminal
    assert [x.batch for x in sync_store.list_batches(tid="T1", status="unbalanced")] == ["000001"]
    with pytest.raises(NotFound):
        sync_store.close_batch("T1", "000009", status="closed")

    sync_store.add_batch_upload_record("T1", "000001", 2, {"stan": "000002"}, agrees=False)
    sync_store.add_batch_upload_record("T1", "000001", 1, {"stan": "000001"}, agrees=True)
    sync_store.add_batch_upload_record("T1", "000001", 2, {"stan": "000002", "x": 1}, agrees=True)
    records = sync_store.list_batch_upload_records("T1", "000001")
    assert [(r.seq, r.record, r.agrees) for r in records] == [
        (1, {"stan": "000001"}, True),
        (2, {"stan": "000002", "x": 1}, True),
    ]


def test_business_day(sync_store):
    assert sync_store.get_business_day() is None
    sync_store.set_business_day(DATE, "20261126")
    sync_store.set_business_day("20261126", "20261127", cutover_at=123)
    day = sync_store.get_business_day()
    assert (day.business_date, day.settlement_date, day.cutover_at) == ("20261126", "20261127", 123)


_rows = st.lists(
    st.tuples(
        st.sampled_from(TXN_TYPES),
        st.sampled_from(["pending", "approved", "declined", "timeout", "reversed", "voided"]),
        st.sampled_from(["domestic", "foreign"]),
        st.integers(min_value=0, max_value=999_999_999_999),
    ),
    max_size=12,
)


def test_batch_totals_match_a_model(sync_store):
    """Random batches: the SQL totals equal the settlement rule computed in Python."""
    batches = iter(range(1, 1_000_000))

    @settings(max_examples=25, deadline=None)
    @given(_rows)
    def check(rows):
        batch = f"{next(batches):06d}"
        expected = {g: [0, 0, 0, 0] for g in ("domestic", "foreign")}
        for n, (txn_type, status, group, amount) in enumerate(rows):
            i = sync_store.insert_pending(
                txn(f"{n:06d}", txn_type, batch=batch, card_group=group, amount=amount)
            )
            if status != "pending":
                sync_store.set_status(i, status)
            if status == "approved" and txn_type in DEBIT_TYPES:
                expected[group][0] += amount
                expected[group][1] += 1
            if status == "approved" and txn_type in CREDIT_TYPES:
                expected[group][2] += amount
                expected[group][3] += 1
        assert sync_store.batch_totals("T1", batch) == BatchTotals(
            **{g: GroupTotals(*v) for g, v in expected.items()}
        )

    check()


def test_one_card_is_found_by_its_pan_fingerprint(sync_store):
    key = b"k" * 32
    card, other = "6228480402564890018", "6228480402564890026"
    fp = pan_fingerprint(card, key)
    assert fp == pan_fingerprint(card, key) != pan_fingerprint(other, key)
    assert fp != pan_fingerprint(card, b"another key 16 bytes")
    assert card not in fp
    a = sync_store.insert_pending(txn("000001", pan_fingerprint=fp))
    sync_store.insert_pending(txn("000002", pan_fingerprint=pan_fingerprint(other, key)))
    b = sync_store.insert_pending(txn("000003", pan_fingerprint=fp))
    assert [t.id for t in sync_store.list_transactions(pan_fingerprint=fp)] == [b, a]
    with pytest.raises(ValueError):
        pan_fingerprint(card, b"short")


@given(
    key=st.binary(min_size=16, max_size=80),
    pans=st.lists(st.text("0123456789", min_size=12, max_size=19), min_size=1, max_size=5),
)
def test_the_hosts_reused_hmac_gives_the_same_fingerprints(key, pans):
    """The host copies one keyed HMAC per PAN instead of keying a new one: same hex, every
    time, whatever came before (a copy never carries the previous PAN)."""
    fingerprint = PanFingerprinter(key)
    for pan in pans + pans:
        assert fingerprint(pan) == pan_fingerprint(pan, key)


def test_the_reused_hmac_refuses_a_short_key_and_hides_it():
    with pytest.raises(ValueError):
        PanFingerprinter(b"short")
    assert "k" * 16 not in repr(PanFingerprinter(b"k" * 16))


@given(
    stan=st.text("0123456789", min_size=6, max_size=6),
    amount=st.integers(min_value=0, max_value=10**12),
    pan_masked=st.none() | st.just("622848******1234"),
    extra=st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3),
)
def test_a_new_transaction_crosses_to_the_writer_process_unchanged(stan, amount, pan_masked, extra):
    import pickle

    txn_ = txn(stan, amount=amount, pan_masked=pan_masked, extra=extra)
    copy = pickle.loads(pickle.dumps(txn_, pickle.HIGHEST_PROTOCOL))
    assert copy == txn_ and type(copy) is NewTransaction
    assert [getattr(copy, a) for a in ("tid", "stan", "amount", "extra")] == [
        txn_.tid, stan, amount, extra,
    ]  # fmt: skip
