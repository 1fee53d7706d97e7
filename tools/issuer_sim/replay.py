"""Replay a ``--record`` file against an issuer (this simulator or another).

The record is masked, so a replay rebuilds what it can: a masked PAN (6+4; 2, and a transfer's
payee in 103) is resolved against a card file (the one card with the same first six and last
four digits); a request that carried a PIN block gets a fresh one for ``pin`` under the ZPK
(or none when no PIN is given), and one for a wrong PIN when its recorded answer was 55 or 75;
requests whose content was hidden (a key exchange's 48), format errors and refused frames are
skipped. Requests go out one at a time in the recorded order, with their recorded spacing
divided by ``speed`` (0 = back to back), and the replayed 39 is compared with the recorded one.
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


WRONG_PIN_CODES = ("55", "75")  # the recorded answer says the PIN in that request was wrong
NOT_REPLAYED = ("format error", "refused")  # the record lacks what was wrong with them


def wrong_pin(pin: str) -> str:
    """A PIN that is certainly not ``pin`` (each digit + 1), for requests recorded with a
    wrong PIN: the record never holds a PIN block, so the replay rebuilds one that fails the
    same way."""
    return "".join(str((int(c) + 1) % 10) for c in pin)


def rebuild(entry: dict, cards: list[Card], pin: str | None, zpk: bytes) -> Message | None:
    if entry.get("outcome") in NOT_REPLAYED or not entry["request"].get("mti"):
        return None
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
    if 103 in fields:  # a transfer's payee, masked like 2
        payee = resolve_pan(str(fields[103]), cards)
        if payee is None:
            return None
        fields[103] = payee
    if 2 in fields:
        pan = resolve_pan(str(fields[2]), cards)
        if pan is None:
            return None
        fields[2] = pan
        if pin is not None and "52" in entry["request"]:
            recorded = (entry.get("response") or {}).get("39")
            this_pin = wrong_pin(pin) if recorded in WRONG_PIN_CODES else pin
            fields[52] = des.encrypt_ecb(zpk, pinblock.encode(0, this_pin, pan))
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
    """Returns the results, in the recorded order, and the number of skipped lines.

    One request at a time, each sent no earlier than its recorded moment (divided by
    ``speed``) and after the previous one's answer: the issuer sees the recorded order, and a
    repeat (same 11 and 41 as an earlier request) is matched to its own answer, not to the
    first one's. A request recorded without an answer (dropped) waits ``timeout``."""
    entries = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    entries.sort(key=_arrival)  # logged at the answer: replay in arrival order
    results: list[ReplayResult] = []
    skipped = 0
    async with await IssuerClient.connect(host, port) as client:
        start_ts = entries[0]["ts"] if entries else 0.0
        t0 = trio.current_time()
        for entry in entries:
            msg = rebuild(entry, cards, pin, zpk)
            if msg is None:
                skipped += 1
                continue
            if speed > 0:
                await trio.sleep_until(t0 + (entry["ts"] - start_ts - _elapsed(entry)) / speed)
            recorded = (entry.get("response") or {}).get("39")
            results.append(await _one(client, msg, recorded, timeout))
            report(results[-1])
    return results, skipped


def _arrival(entry: dict) -> float:
    """When the request arrived: recorded as such, or (older recordings) the answer's time less
    its elapsed time."""
    return entry.get("arrived", entry["ts"] - _elapsed(entry))


def _elapsed(entry: dict) -> float:
    """``ts`` is when the answer was recorded; the request arrived this much earlier."""
    return float(entry.get("elapsed_ms") or 0) / 1000


async def _one(client, msg, recorded, timeout) -> ReplayResult:
    try:
        rsp = await client.request(msg, timeout=timeout)
    except trio.TooSlowError:
        rsp = None
    pan = msg.get(2)
    return ReplayResult(
        msg.mti,
        str(msg.get(11) or ""),
        mask_pan(pan) if isinstance(pan, str) else "",
        recorded,
        None if rsp is None else rsp.get(39),
    )


def summary(results: list[ReplayResult], skipped: int) -> dict:
    c = Counter("same" if r.same else "different" for r in results)
    return {
        "replayed": len(results),
        "same": c["same"],
        "different": c["different"],
        "skipped": skipped,
    }
