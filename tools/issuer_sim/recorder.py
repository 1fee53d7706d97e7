"""``--record FILE``: one JSON line per exchange, masked.

Each line::

    {"ts": 1764036000.123, "conn": 3, "outcome": "answered" | "dropped" | "closed",
     "rule": "slow issuer" | null, "hook": true | false, "elapsed_ms": 12.4,
     "request": {"mti": "0200", "2": "622202******0001", ..., "52": "<8 bytes>"},
     "response": {"mti": "0210", "39": "00", ...} | null}

PANs show 6 + 4 digits; 35, 36, 45, 52, 55 and 48 of a key exchange never show their content,
only their length.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

from tools.issuer_sim.cards import mask_pan

HIDDEN = frozenset({35, 36, 45, 52, 55, 128})


def masked(msg, *, hide_48: bool = False) -> dict:
    out: dict[str, str] = {"mti": msg.mti}
    for n in sorted(msg.fields):
        v = msg.fields[n]
        if n in HIDDEN or (n == 48 and hide_48):
            out[str(n)] = f"<{len(v)} {'bytes' if isinstance(v, bytes) else 'chars'}>"
        elif n == 2:
            out[str(n)] = mask_pan(str(v))
        elif isinstance(v, bytes):
            out[str(n)] = v.hex().upper()
        else:
            out[str(n)] = v
    return out


def _is_key_exchange(msg) -> bool:
    return msg is not None and msg.mti[:2] == "08" and msg.get(70) == "101"


class Recorder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def record(
        self,
        *,
        conn: int,
        request,
        response,
        outcome: str,
        elapsed: float,
        rule: str | None = None,
        hook: bool = False,
    ) -> None:
        if self._f is None:
            return
        hide = _is_key_exchange(request)
        line = {
            "ts": round(time.time(), 3),
            "conn": conn,
            "outcome": outcome,
            "rule": rule,
            "hook": hook,
            "elapsed_ms": round(elapsed * 1000, 3),
            "request": masked(request, hide_48=hide),
            "response": None if response is None else masked(response, hide_48=False),
        }
        self._f.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
