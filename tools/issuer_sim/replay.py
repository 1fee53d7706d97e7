"""Replay a ``--record`` file against an issuer (this simulator or another).

The record is masked, so a replay rebuilds what it can: a masked PAN (6+4) is resolved against a
card file (the one card with the same first six and last four digits); a request that carried a
PIN block gets a fresh one for ``pin`` under the ZPK (or none when no PIN is given); requests
whose content was hidden (a key exchange's 48) are skipped. Requests go out with their recorded
spacing divided by ``speed`` (0 = back to back), each waiting for its own answer, and the
replayed 39 is compared with the recorded one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from codec.message import Message
from keys import des, pinblock
from tools.issuer_sim.cards import Card, mask_pan
from tools.issuer_sim.client import IssuerClient


@attrs.frozen
class ReplayResult:
    mti: str
    stan: str
    pan: str  # masked
    recorded: str | None  # recorded 39, None when it was not answered
    replayed: str | None  # None: no answer within the timeout, or the link closed

    @property
    def same(self) -> bool:
        return self.recorded == self.replayed


def resolve_pan(masked: str, cards: list[Card]) -> str | None:
    if "*" not in masked:
        return masked
    hits = [
        c.pan
        for c in cards
        if len(c.pan) == len(masked) and c.pan[:6] == masked[:6] and c.pan[-4:] == masked[-4:]
    ]
    return hits[0] if len(hits) == 1 else None


def rebuild(entry: dict, cards: list[Card], pin: str | None, zpk: bytes) -> Message | None:
    fields: dict[int, str | bytes] = {}
    for key, value in entry["request"].items():
        if key == "mti":
            continue
        n = int(key)
        hidden = isinstance(value, str) and value.endswith((" bytes]", " chars]"))
        if hidden and value.startswith("["):
            if n == 52 and pin is not None:
                continue  # rebuilt below, once the PAN is known
            if n in (48, 35, 36, 45, 55, 128, 52):
                if n == 48:
                    return None  # a key exchange cannot be replayed from a masked record
                continue
        fields[n] = value
    if 2 in fields:
        pan = resolve_pan(str(fields[2]), cards)
        if pan is None:
            return None
        fields[2] = pan
        if pin is not None and "52" in entry["request"]:
            fields[52] = des.encrypt_ecb(zpk, pinblock.encode(0, pin, pan))
    return Message(entry["request"]["mti"], fields)


async def replay(
    path: str | Path,
    host: str,
    port: int,
    *,
    cards: list[Card],
    zpk: bytes,
    pin: str | None = None,
    speed: float = 1.0,
    timeout: float = 15.0,
    report: Callable[[ReplayResult], None] = lambda r: None,
) -> tuple[list[ReplayResult], int]:
    """Returns the results (in completion order) and the number of skipped lines."""
    entries = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    results: list[ReplayResult] = []
    skipped = 0
    async with await IssuerClient.connect(host, port) as client, trio.open_nursery() as nursery:
        start_ts = entries[0]["ts"] if entries else 0.0
        t0 = trio.current_time()
        for entry in entries:
            msg = rebuild(entry, cards, pin, zpk)
            if msg is None:
                skipped += 1
                continue
            if speed > 0:
                await trio.sleep_until(t0 + (entry["ts"] - start_ts) / speed)
            recorded = (entry.get("response") or {}).get("39")
            nursery.start_soon(_one, client, msg, recorded, timeout, results, report)
    return results, skipped


async def _one(client, msg, recorded, timeout, results, report) -> None:
    try:
        rsp = await client.request(msg, timeout=timeout)
    except trio.TooSlowError:
        rsp = None
    pan = msg.get(2)
    result = ReplayResult(
        msg.mti,
        str(msg.get(11) or ""),
        mask_pan(pan) if isinstance(pan, str) else "",
        recorded,
        None if rsp is None else rsp.get(39),
    )
    results.append(result)
    report(result)


def summary(results: list[ReplayResult], skipped: int) -> dict:
    c = Counter("same" if r.same else "different" for r in results)
    return {
        "replayed": len(results),
        "same": c["same"],
        "different": c["different"],
        "skipped": skipped,
    }
