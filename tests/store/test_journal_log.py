"""The SQLite journal's write log (journal.durability = log): acknowledged writes survive the
writer's death and reach the tables exactly once, reads see every acknowledged write, the
Store API keeps its answers (ids, duplicates, errors), and the log file itself is checked and
reused. The writer runs as the real child process on a real SQLite file."""

import os
import signal

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from host.store import DuplicateTransaction, NotFound, StoreError, SyncStore, open_store, ops
from host.store.errors import OriginalConflict
from host.store.journal_log import JournalLog, decode_records, encode_record, log_path_for
from host.store.log_writer import LOG_NAME
from host.store.writer_process import WriterProcess, frame
from tests.store.test_writer import DATE, txn


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'journal.sqlite'}"


def log_store(url, **kw):
    return open_store(url, writer_process=True, durability="log", **kw)


def test_answers_are_those_of_the_database(url):
    async def main():
        async with log_store(url) as store:
            first = await store.insert_pending(txn("000001", pan_masked="622848******1234"))
            second = await store.insert_pending(txn("000002"))
            with pytest.raises(DuplicateTransaction) as dup:
                await store.insert_pending(txn("000001"))
            await store.record_outcome(first, status="approved", response_code="00",
                                       auth_code="123456", rrn="612300000001")  # fmt: skip
            with pytest.raises(ValueError):
                await store.record_outcome(second, status="no such status")
            with pytest.raises(NotFound):
                await store.record_outcome(99_999, status="approved")
            row = await store.get_transaction(first)  # a read sees the logged outcome
            return first, second, dup.value, row, store.writer_stats

    first, second, dup, row, stats = trio.run(main)
    assert second == first + 1 and dup.existing_id == first
    assert (row.status, row.auth_code, row.rrn, row.pan_masked) == (
        "approved", "123456", "612300000001", "622848******1234",
    )  # fmt: skip
    assert row.responded_at >= row.requested_at and row.latency_ms is not None
    assert stats.logged == 3  # two requests and one outcome went through the log
    with SyncStore.open(url) as store:  # another process sees them too (after the close)
        assert store.get_transaction(first).status == "approved"


def test_a_void_runs_in_the_database_after_what_was_logged_before_it(url):
    async def main():
        async with log_store(url) as store:
            sale = await store.insert_pending(txn("000001", amount=500))
            await store.record_outcome(sale, status="approved", response_code="00")
            void = await store.insert_pending_child(
                txn("000002", txn_type="void", original_id=sale, amount=500),
                sibling_types=("void",),
            )
            with pytest.raises(OriginalConflict):
                await store.insert_pending_child(
                    txn("000003", txn_type="void", original_id=sale, amount=500),
                    sibling_types=("void",),
                )
            await store.record_outcome(void, status="approved", original_status="voided")
            later = await store.insert_pending(txn("000004"))
            return sale, void, later, await store.get_transaction(sale)

    sale, void, later, original = trio.run(main)
    assert sale < void < later  # one id sequence, whichever way a row was written
    assert original.status == "voided"


def test_acknowledged_writes_survive_the_writer_killed_and_apply_once(url, tmp_path):
    async def write_then_kill():
        async with log_store(url) as store:
            ids = [await store.insert_pending(txn(f"{i:06d}")) for i in range(30)]
            for txn_id in ids[:20]:
                await store.record_outcome(txn_id, status="approved", response_code="00")
            # every answer above came after its fdatasync: kill before any batch is applied
            os.kill(store._process._proc.pid, signal.SIGKILL)
            return ids

    ids = trio.run(write_then_kill)

    async def reopen():
        async with log_store(url) as store:
            rows = await store.list_transactions(limit=1000)
            with pytest.raises(DuplicateTransaction):  # the keys came back with the rows
                await store.insert_pending(txn("000007"))
            nxt = await store.insert_pending(txn("000100"))
            return rows, nxt

    rows, nxt = trio.run(reopen)
    assert sorted(r.id for r in rows) == ids
    assert sum(r.status == "approved" for r in rows) == 20
    assert nxt > max(ids)

    async def again():  # a second restart applies nothing twice
        async with log_store(url) as store:
            return await store.list_transactions(limit=1000)

    assert len(trio.run(again)) == 31


def test_the_host_gone_without_goodbye_still_leaves_every_write_applied(url):
    SyncStore.open(url).close()  # the schema (the store migrates; the bare process does not)

    async def main():
        process = await WriterProcess.start(url, commit_delay=0.0, batch_cap=16,
                                            durability="log")  # fmt: skip
        await process.write(ops.insert_pending, (txn("000001"),), {})
        process._queue.append((999, "insert_pending", (txn("000002"),), {}))
        await process._send_all(frame(process._queue))
        process._close_socket()  # gone, without waiting for the answer
        return await trio.to_thread.run_sync(process._proc.wait, 10)

    assert trio.run(main) == 0
    with SyncStore.open(url) as store:
        assert store.find_transaction("T1", "000001", "000002", DATE) is not None
        row = store._connection().query_one(
            "SELECT applied_seq FROM journal_log WHERE log = :log", {"log": LOG_NAME}
        )
        assert row["applied_seq"] == 2


def test_another_process_reads_every_acknowledged_write_at_once(url):
    """The CLI or the back office reads the tables directly: its read waits the moment the
    writer takes to apply what it acknowledged, so the first read already sees the row."""

    async def main():
        async with log_store(url) as store:
            found = []
            for i in range(5):
                txn_id = await store.insert_pending(txn(f"{i:06d}"))
                await store.record_outcome(txn_id, status="approved", response_code="00")

                def read(txn_id=txn_id):
                    with SyncStore.open(url) as other:
                        return other.get_transaction(txn_id).status

                found.append(await trio.to_thread.run_sync(read))
            return found

    assert trio.run(main) == ["approved"] * 5


def test_a_second_log_writer_on_one_journal_is_refused_with_the_reason(url):
    async def main():
        async with log_store(url):
            with pytest.raises(StoreError, match="another writer"):
                JournalLog.open(log_path_for(url[len("sqlite:///") :]), wait=0.2)

    trio.run(main)


def test_log_mode_needs_sqlite_and_the_writer_process(url):
    async def main(**kw):
        async with open_store(url, durability="log", **kw):
            pass

    with pytest.raises(ValueError):
        trio.run(lambda: main(writer_process=False))


# -- the file format ------------------------------------------------------------------------


@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cut=st.integers(min_value=0, max_value=2000),
)
def test_a_torn_tail_loses_only_the_records_it_tore(payloads, cut):
    data = b"".join(encode_record(p, seq) for seq, p in enumerate(payloads, start=1))
    cut = min(cut, len(data))
    records, end = decode_records(data[:cut])
    assert [p for _kind, p in records] == payloads[: len(records)]
    assert end <= cut
    whole = 0
    for seq, p in enumerate(payloads, start=1):
        size = len(encode_record(p, seq))
        if whole + size > cut:
            break
        whole += size
    assert end == whole


@given(
    data=st.binary(max_size=400),
    flip=st.integers(min_value=0, max_value=10_000),
    bit=st.integers(min_value=0, max_value=7),
)
def test_a_damaged_record_is_never_read(data, flip, bit):
    record = bytearray(encode_record(data, 1))
    record[flip % len(record)] ^= 1 << bit
    assert decode_records(bytes(record)) == ([], 0)


def test_reading_stops_at_an_older_pass_over_the_file(tmp_path):
    """After a wrap the new records overwrite the old ones from the top; what is left of the
    older pass behind them has smaller sequence numbers and is not read."""
    old = b"".join(encode_record(b"old %d" % i, i) for i in range(1, 50))
    new = encode_record(b"new", 60) + encode_record(b"newer", 61)
    records, end = decode_records(new + old[len(new) :])
    assert [p for _k, p in records] == [b"new", b"newer"] and end == len(new)


def test_the_log_is_owner_only_preallocated_and_reused(tmp_path):
    path = tmp_path / "j.sqlite-log"
    log = JournalLog.open(path, size=1 << 16)
    try:
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.stat().st_size == 1 << 16
        log.append(b"a" * 100, 1, 1)
        log.sync()
        assert log.recover() == [(1, b"a" * 100)]
        log.wrap()
        log.append(b"b", 2, 2)
        log.sync()
        assert [p for _k, p in log.recover()] == [b"b"]
        assert path.stat().st_size == 1 << 16  # overwritten in place, never grown
    finally:
        log.close()


def test_one_writer_serves_every_worker_with_one_duplicate_check(url):
    """`serve --workers`: each worker has a socket of its own to the one journal writer; the
    same request journalled by two workers at once is accepted exactly once, and a worker that
    stops does not wait for the others."""
    SyncStore.open(url).close()

    async def main():
        parent = await WriterProcess.start(url, commit_delay=0.0, batch_cap=64,
                                           durability="log", workers=2)  # fmt: skip
        a, b = [await WriterProcess.attach(s) for s in parent.worker_sockets]
        outcomes: list = []

        async def insert(handle, stan):
            try:
                outcomes.append((stan, await handle.write(ops.insert_pending, (txn(stan),), {})))
            except DuplicateTransaction:
                outcomes.append((stan, "duplicate"))

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(insert, a, f"{i:06d}")
                nursery.start_soon(insert, b, f"{39 - i:06d}")
        with trio.fail_after(10):
            await a.aclose()  # one worker stops; the other keeps writing
        late = await b.write(ops.insert_pending, (txn("000100"),), {})
        await b.aclose()
        await parent.aclose()
        return outcomes, late

    outcomes, late = trio.run(main)
    ids = [r for _stan, r in outcomes if r != "duplicate"]
    assert len(ids) == 40 and len(set(ids)) == 40 and late > max(ids)
    for i in range(40):
        results = [r for stan, r in outcomes if stan == f"{i:06d}"]
        assert sorted(map(str, results)).count("duplicate") == 1, results
    with SyncStore.open(url) as store:
        assert len(store.list_transactions(limit=1000)) == 41
