"""What only the writer process has: errors that cross the process boundary intact, a child
that dies, a host that goes away, and operations the child refuses to call."""

import os
import pickle
import signal
import threading

import outcome
import pytest
import trio

from host.store import (
    AlreadyReversed,
    DuplicateTransaction,
    StoreError,
    SyncStore,
    open_store,
    ops,
)
from host.store.errors import OriginalConflict
from host.store.writer import Op, WriterStats
from host.store.writer_process import FrameReader, WriterProcess, _results_frame, frame
from tests.store.test_writer import DATE, txn


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    SyncStore.open(url).close()
    return url


@pytest.mark.parametrize(
    "error",
    [
        DuplicateTransaction("T1", "000001", "000042", DATE, 7),
        AlreadyReversed(7, 9),
        OriginalConflict(7, "100 + 50 exceeds 120"),
    ],
)
def test_store_errors_survive_pickling_with_their_fields(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_frames_split_anywhere_come_out_whole():
    data = frame(["a", 1]) + frame(("b", {"c": b"\x00"})) + frame(None)
    for cut in range(len(data) + 1):
        reader = FrameReader()
        got = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert got == [["a", 1], ("b", {"c": b"\x00"}), None]


def test_a_result_that_does_not_pickle_comes_back_as_a_store_error():
    class Unpicklable(Exception):
        def __init__(self):
            super().__init__("driver trouble")
            self.lock = threading.Lock()

    items = [
        (Op(None, (), {}, None, 1), outcome.Value(41)),
        (Op(None, (), {}, None, 2), outcome.Error(Unpicklable())),
    ]
    (message,) = FrameReader().feed(_results_frame(items, WriterStats()))
    (seq1, ok1, value1), (seq2, ok2, error) = message[1]
    assert (seq1, ok1, value1) == (1, True, 41)
    assert (seq2, ok2) == (2, False)
    assert isinstance(error, StoreError) and "driver trouble" in str(error)


def test_a_duplicate_raised_in_the_child_reaches_the_caller_intact(sqlite_url):
    async def main():
        async with open_store(sqlite_url, writer_process=True) as store:
            first = await store.insert_pending(txn("000001"))
            with pytest.raises(DuplicateTransaction) as caught:
                await store.insert_pending(txn("000001"))
            return first, caught.value

    first, error = trio.run(main)
    assert error.existing_id == first
    assert (error.tid, error.stan) == ("T1", "000001")


def test_a_dead_child_fails_waiting_and_later_writes_at_once(sqlite_url):
    async def main():
        async with open_store(sqlite_url, writer_process=True) as store:
            await store.insert_pending(txn("000001"))
            os.kill(store._process._proc.pid, signal.SIGKILL)
            with trio.fail_after(10):  # never a hang
                with pytest.raises(StoreError, match="writer process"):
                    await store.insert_pending(txn("000002"))
                with pytest.raises(StoreError, match="writer process"):
                    await store.insert_pending(txn("000003"))

    trio.run(main)


def test_the_child_outlives_ctrl_c_and_sigterm_until_its_host_closes(sqlite_url):
    async def main():
        async with open_store(sqlite_url, writer_process=True) as store:
            await store.insert_pending(txn("000001"))  # the child has set up its signals
            for sig in (signal.SIGINT, signal.SIGTERM):
                os.kill(store._process._proc.pid, sig)
            await trio.sleep(0.2)
            return await store.insert_pending(txn("000002"))

    assert trio.run(main) > 0


def test_the_store_url_never_shows_on_the_childs_command_line(sqlite_url):
    """A PostgreSQL URL can carry a password, and any local user can read a command line."""

    async def main():
        process = await WriterProcess.start(sqlite_url, commit_delay=0.0, batch_cap=16)
        try:
            with open(f"/proc/{process._proc.pid}/cmdline", "rb") as fh:
                return fh.read()
        finally:
            await process.aclose()

    cmdline = trio.run(main)
    assert b"writer_process" in cmdline
    assert sqlite_url.encode() not in cmdline and b"journal.sqlite" not in cmdline


def test_the_child_calls_nothing_but_store_operations(sqlite_url):
    def _private(db):
        raise AssertionError("never called")

    def nonexistent(db):
        raise AssertionError("never called")

    async def main():
        process = await WriterProcess.start(sqlite_url, commit_delay=0.0, batch_cap=16)
        try:
            for fn in (_private, nonexistent, os.system):
                with pytest.raises(StoreError, match="no store operation"):
                    await process.write(fn, ("echo never",), {})
        finally:
            await process.aclose()

    trio.run(main)


def test_the_child_commits_what_it_read_and_exits_when_the_host_goes_away(sqlite_url):
    """The host's end of the socket closes without a goodbye (as when the host is killed):
    the child still commits the writes it had read, then exits by itself."""

    async def main():
        process = await WriterProcess.start(sqlite_url, commit_delay=0.0, batch_cap=16)
        await process.write(ops.insert_pending, (txn("000001"),), {})
        process._queue.append((999, "insert_pending", (txn("000002"),), {}))
        await process._send_all(frame(process._queue))
        process._close_socket()  # gone, without waiting for the answer
        return await trio.to_thread.run_sync(process._proc.wait, 10)

    assert trio.run(main) == 0
    with SyncStore.open(sqlite_url) as store:
        assert store.find_transaction("T1", "000001", "000002", DATE) is not None


def test_a_child_that_cannot_open_the_journal_fails_the_start_with_its_reason(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'journal.sqlite'}"

    async def main():
        with pytest.raises(StoreError, match=r"failed to start: .*Error"):
            await WriterProcess.start(url, commit_delay=0.0, batch_cap=16)

    trio.run(main)
