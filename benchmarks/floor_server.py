"""A second baseline, between the echo server and the host: what the I/O a purchase cannot avoid
costs on this machine, with none of the host's checks, crypto or codec.

``relay`` mode: each frame from a terminal goes to an upstream peer (an echo server standing in
for the issuer) and its answer goes back: the two socket legs of every authorization.
``journal`` mode adds the host's two durable journal writes around the upstream leg, through the
real store (the same writer process, group commit, commit delay and fsync as the host): a
pending row before the frame leaves, its outcome before the terminal is answered.
``journal-thread`` does the same with the writer as a thread of the process and a 2 ms commit
delay (``journal.writer = "thread"``).

    python benchmarks/floor_server.py PORT UPSTREAM_PORT relay
    python benchmarks/floor_server.py PORT UPSTREAM_PORT journal|journal-thread DATA_DIR

(The journal's writer, durability and commit delay are the host's defaults,
``journal.writer``, ``journal.durability`` and ``journal.commit_delay_ms``: the write log on
SQLite.)

One upstream connection per terminal connection (each terminal has one request outstanding), so
there is no matching of answers to requests to pay for: a floor, not a rival design.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import trio

from codec.framing import LengthPrefixedDecoder, prefix_length
from host.config import DEFAULTS
from host.store import open_store
from host.store.errors import AlreadyExists
from host.store.records import NewTransaction

MID, TID = "123456789012345", "FLOOR001"
_stans = itertools.count(1)


def _row() -> NewTransaction:
    n = next(_stans)
    return NewTransaction(
        tid=TID, mid=MID, batch=f"{n // 1_000_000:06d}", stan=f"{n % 1_000_000:06d}",
        business_date="20261125", txn_type="purchase", mti="0200", amount=100, currency="156",
        processing_code="000000", condition_code="00", pan_masked="622202******0019",
        pan_fingerprint=None, card_group="domestic", issuer_link="sim", original_id=None,
        extra={"f7": "1125120000"},
    )  # fmt: skip


async def _relay(stream: trio.SocketStream, up_port: int, store) -> None:
    upstream = await trio.open_tcp_stream("127.0.0.1", up_port)
    inbound, outbound = LengthPrefixedDecoder(65535), LengthPrefixedDecoder(65535)
    try:
        while data := await stream.receive_some(65536):
            for body in inbound.feed(data):
                txn_id = await store.insert_pending(_row()) if store else 0
                await upstream.send_all(prefix_length(body))
                answers: list[bytes] = []
                while not answers:
                    answers = outbound.feed(await upstream.receive_some(65536))
                if store:
                    await store.record_outcome(
                        txn_id, status="approved", response_code="00", rrn=f"{txn_id:012d}",
                        settlement_date="20261125",
                    )  # fmt: skip
                await stream.send_all(prefix_length(answers[0]))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await upstream.aclose()


async def main(port: int, up_port: int, mode: str, data_dir: str = "") -> None:
    if mode == "relay":
        await trio.serve_tcp(lambda s: _relay(s, up_port, None), port, host="127.0.0.1")
        return
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{Path(data_dir) / f'floor-{mode}.sqlite'}"
    if mode == "journal-thread":  # the writer as a thread, with a 2 ms commit delay
        delay, process, durability = 0.002, False, "database"
    else:
        delay = DEFAULTS["journal"]["commit_delay_ms"] / 1000
        process = DEFAULTS["journal"]["writer"] == "process"
        durability = DEFAULTS["journal"]["durability"] if process else "database"
    async with open_store(
        url, commit_delay=delay, writer_process=process, durability=durability
    ) as store:
        try:
            await store.add_merchant(MID, "FLOOR SHOP", "5411")
            await store.add_terminal(TID, MID, "003", current_batch="000001")
        except AlreadyExists:
            pass
        await trio.serve_tcp(lambda s: _relay(s, up_port, store), port, host="127.0.0.1")


if __name__ == "__main__":
    port, up_port, mode, *data_dir = sys.argv[1:]
    trio.run(main, int(port), int(up_port), mode, *data_dir)
