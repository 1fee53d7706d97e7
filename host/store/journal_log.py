"""The SQLite journal's write log: an append-only file of checksummed records, the durable copy
of the requests and outcomes the journal's writer has acknowledged but not yet applied to the
tables (``host/store/log_writer.py``).

Why a log: a durable SQLite commit writes every page the transaction touched (the row, and a
leaf of each of the journal's indexes) to the WAL and fsyncs it; at a moderate rate each group
is one or two writes, so a purchase paid two such commits. Appending a few hundred bytes and
one ``fdatasync`` costs about half the CPU of a commit on the benchmark machine, and the rows
then reach the tables in batches of hundreds, committed without an fsync of their own (they
become durable at the next checkpoint, which fsyncs; until then this file holds them).

A record is ``b"PJ"``, a version byte, a kind byte, the body's length (4 bytes, big endian),
a CRC-32 (4 bytes, over version, kind and body), and the body: the sequence number of its first
operation (8 bytes) and the payload (JSON). A crash can leave a torn record at the
end: reading stops at the first record whose length or checksum does not hold, and the file is
cut there (nothing after it was acknowledged: a group is answered only after its ``fdatasync``).

The file has a fixed size, written with zeros once, and records overwrite it from the start
again once everything in it has been applied: an ``fdatasync`` that only overwrites data costs
~30 % less CPU than one that also grows the file (measured: 68 against 96 us). Reading stops at
the first record that does not follow on (bad magic or checksum, or a sequence number that does
not grow): what lies beyond it is an older pass over the file, applied long ago.

One writer per log: the file is locked (``flock``) while a writer holds it, so a second host
on the same SQLite journal waits, then fails with a clear message instead of interleaving.

Other processes (the CLI, the back office, a test's own connection) read the tables directly.
So that they too see every write the host acknowledged, the writer keeps the sequence number of
the last durable record in ``<journal>-log.seq`` (8 bytes, rewritten before each
``fdatasync``); a reader that finds it ahead of the ``journal_log`` row waits the moment it takes
the writer to apply the batch (:func:`wait_applied`).
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
import zlib
from pathlib import Path

import structlog

from host.store.errors import StoreError

log = structlog.get_logger(__name__)

_HEAD = struct.Struct(">2sBBII")  # magic, version, kind, length, crc32
MAGIC = b"PJ"
VERSION = 1
LOG_NAME = "journal"  # the journal_log row of the one write log of a SQLite journal
KIND_OPS = 1  # a group of journal operations (JSON array of [seq, name, args, kwargs, now])
MAX_RECORD = 64 << 20


_SEQ = struct.Struct(">Q")


def _crc(kind: int, body: bytes) -> int:
    return zlib.crc32(body, zlib.crc32(bytes((VERSION, kind))))


def encode_record(payload: bytes, first_seq: int, kind: int = KIND_OPS) -> bytes:
    """A record: its header, then the first sequence number it holds, then the payload (the
    checksum covers the version, the kind, the sequence number and the payload)."""
    body = _SEQ.pack(first_seq) + payload
    return _HEAD.pack(MAGIC, VERSION, kind, len(body), _crc(kind, body)) + body


def decode_records(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The records at the start of ``data`` that follow on from each other, as (kind,
    payload), and the offset where they end (a torn or corrupt record, zeros, or an older
    record left from the previous pass over the file)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    last_seq = -1
    while len(data) - pos >= _HEAD.size:
        magic, version, kind, length, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        if magic != MAGIC or version != VERSION or not _SEQ.size <= length <= MAX_RECORD:
            break
        body = data[start : start + length]
        if len(body) != length or _crc(kind, body) != crc:
            break
        (first_seq,) = _SEQ.unpack_from(body)
        if first_seq <= last_seq:
            break
        last_seq = first_seq
        out.append((kind, bytes(body[_SEQ.size :])))
        pos = start + length
    return out, pos


def log_path_for(db_path: str | os.PathLike[str]) -> Path:
    """``var/poshost.sqlite`` -> ``var/poshost.sqlite-log`` (next to SQLite's -wal and -shm)."""
    return Path(f"{os.fspath(db_path)}-log")


def seq_path_for(log_path: Path) -> Path:
    return Path(f"{log_path}.seq")


def wait_applied(db, db_path: str, *, timeout: float = 2.0) -> None:
    """Before a read from outside the writer: wait until the tables hold every record the
    journal's write log has made durable (the writer applies a batch within ~50 ms). At once
    when there is no log, or no writer holds it (a stopped host applies its log when it starts
    again)."""
    log_path = log_path_for(db_path)
    try:
        with open(seq_path_for(log_path), "rb") as fh:
            head = fh.read(_SEQ.size)
    except OSError:
        return
    if len(head) != _SEQ.size:
        return
    (durable,) = _SEQ.unpack(head)
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        row = db.query_one(
            "SELECT applied_seq FROM journal_log WHERE log = :log", {"log": LOG_NAME}
        )
        if row is not None and int(row["applied_seq"]) >= durable:
            return
        if not _held(log_path) or time.monotonic() > deadline:
            if time.monotonic() > deadline:
                log.warning("journal_log.read_before_applied", durable=durable,
                            applied=row["applied_seq"] if row else 0)  # fmt: skip
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _held(log_path: Path) -> bool:
    """Does a writer hold the log (is anyone going to apply it)?"""
    try:
        fd = os.open(log_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class JournalLog:
    """The open log file of one writer: ``recover()`` once, then ``append()`` and ``sync()``
    per group; ``wrap()`` starts again at the beginning once every record is applied."""

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self._fd = fd
        self._seq_fd = os.open(seq_path_for(path), os.O_RDWR | os.O_CREAT, 0o600)
        self._last_seq = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self.capacity = size
        self.position = 0  # where the next record goes
        self.syncs = 0

    @classmethod
    def open(cls, path: Path, *, size: int = 16 << 20, wait: float = 30.0) -> JournalLog:
        """Open (creating it owner-only, ``size`` bytes of zeros) and lock the log; waits up to
        ``wait`` seconds for a writer that is still finishing (a host's writer outlives it by
        a moment)."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreError(
                        f"the journal's write log {path} is held by another writer: one host"
                        " (with its workers) per SQLite journal in journal.durability = log;"
                        " several hosts share a PostgreSQL journal"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        have = os.fstat(fd).st_size
        if have < size:
            _zero_fill(fd, have, size)
        return cls(path, fd, max(size, have))

    def recover(self) -> list[tuple[int, bytes]]:
        """The records of the current pass over the file; the next record goes after them."""
        with open(self._fd, "rb", closefd=False) as fh:
            fh.seek(0)
            data = fh.read()
        records, end = decode_records(data)
        self.position = end
        return records

    def append(self, payload: bytes, first_seq: int, last_seq: int, kind: int = KIND_OPS) -> None:
        self._last_seq = max(self._last_seq, last_seq)
        record = encode_record(payload, first_seq, kind)
        self._buffer.append(record)
        self._buffered += len(record)

    def fits(self, more: int = 0) -> bool:
        """Do the buffered records (and ``more`` bytes) fit before the end of the file?"""
        return self.position + self._buffered + more <= self.capacity

    def sync(self) -> None:
        """Write what was appended and make it durable (one write, one fdatasync). Past the
        preallocated end the file grows (the caller wraps before that whenever it can)."""
        if not self._buffer:
            return
        data = b"".join(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer.clear()
        self._buffered = 0
        view = memoryview(data)
        position = self.position
        while view:
            written = os.pwrite(self._fd, view, position)
            view = view[written:]
            position += written
        self.published(self._last_seq)
        os.fdatasync(self._fd)
        self.position = position
        self.capacity = max(self.capacity, position)
        self.syncs += 1

    def wrap(self) -> None:
        """Start again at the beginning: only once every record is applied, durably. (Older
        records stay behind the new ones until overwritten; reading stops before them.)"""
        if self._buffer:
            raise StoreError("the write log cannot wrap with records not yet written")
        self.position = 0

    def published(self, seq: int) -> None:
        """Tell readers in other processes how far the log goes (a hint: not fsynced)."""
        self._last_seq = max(self._last_seq, seq)
        os.pwrite(self._seq_fd, _SEQ.pack(self._last_seq), 0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # the lock goes with the descriptor
            os.close(self._seq_fd)
            self._fd = -1


def _zero_fill(fd: int, start: int, end: int) -> None:
    chunk = bytes(1 << 20)
    position = start
    while position < end:
        position += os.pwrite(fd, chunk[: min(len(chunk), end - position)], position)
    os.fsync(fd)
