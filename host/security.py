"""Security events: refused or suspicious attempts (a stranger's sign-on, a connection flood, a
guessed back-office token, frames that are not ISO 8583).

An attacker controls how often these happen, so nothing here may cost a log line or a journal
write per event: the first event of a kind from one peer (and terminal) in an interval is
logged at once, the rest are counted, and each interval ends with one summary line and one
journal row per (kind, peer, terminal) that carries the count. The number of distinct keys kept
per interval is bounded too; what overflows is counted under one key. ``counts`` holds totals
since start for anyone who wants a number (tests, the soak run, a metrics endpoint).
"""

from __future__ import annotations

import collections
import time
from typing import Any

import attrs
import structlog
import trio

log = structlog.get_logger("poshost.security")

MAX_KEYS_PER_INTERVAL = 1000


def peer_address(peer: str | None) -> str | None:
    """``1.2.3.4:5678`` -> ``1.2.3.4`` (``[::1]:5678`` -> ``::1``): an attacker picks a new
    source port for each connection, so events are counted per address."""
    if not peer:
        return peer
    address = peer.rsplit(":", 1)[0] if peer.count(":") == 1 or peer.startswith("[") else peer
    return address.strip("[]")


@attrs.define
class _Tally:
    detail: str
    count: int
    first_at: int
    last_at: int


@attrs.define
class SecurityMonitor:
    """Counts security events and writes them, aggregated, to the log and the journal."""

    store: Any = None  # a Store (async) or None (log and count only)
    interval: float = 10.0
    counts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    _pending: dict[tuple[str, str | None, str | None], _Tally] = attrs.field(factory=dict)
    _overflow: int = 0

    def record(
        self, kind: str, *, peer: str | None = None, tid: str | None = None, detail: str = ""
    ) -> None:
        """Count one event. Never raises, never waits: callers are on the hot path of a
        refused request."""
        self.counts[kind] += 1
        now = int(time.time() * 1000)
        key = (kind, peer_address(peer), tid)
        tally = self._pending.get(key)
        if tally is not None:
            tally.count += 1
            tally.last_at = now
            return
        if len(self._pending) >= MAX_KEYS_PER_INTERVAL:
            self._overflow += 1
            return
        self._pending[key] = _Tally(detail[:200], 1, now, now)
        log.warning("security_event", kind=kind, peer=key[1], tid=tid, detail=detail[:200])

    def take(self) -> list[dict[str, Any]]:
        """The interval's tallies as journal rows, and a fresh interval."""
        pending, overflow = self._pending, self._overflow
        self._pending, self._overflow = {}, 0
        rows = [
            {"kind": kind, "peer": peer, "tid": tid, **attrs.asdict(tally)}
            for (kind, peer, tid), tally in pending.items()
        ]
        if overflow:
            now = int(time.time() * 1000)
            rows.append(
                {"kind": "overflow", "peer": None, "tid": None, "count": overflow,
                 "detail": "more distinct peers than one interval keeps", "first_at": now,
                 "last_at": now}
            )  # fmt: skip
        for row in rows:
            if row["count"] > 1:
                log.warning("security_events", kind=row["kind"], peer=row["peer"],
                            tid=row["tid"], count=row["count"], detail=row["detail"])  # fmt: skip
        return rows

    async def flush(self) -> int:
        rows = self.take()
        if rows and self.store is not None:
            await self.store.add_security_events(rows)
        return len(rows)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Flush every ``interval`` until cancelled, and once more on the way out."""
        task_status.started()
        try:
            while True:
                await trio.sleep(self.interval)
                await self.flush()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.flush()
