"""``--record FILE``: one JSON line per exchange, masked.

Each line::

    {"ts": 1764036000.123, "conn": 3,
     "outcome": "answered" | "dropped" | "closed" | "format error" | "refused" | "unsent",
     "rule": "slow issuer" | null, "hook": true | false, "elapsed_ms": 12.4,
     "request": {"mti": "0200", "2": "622202******0001", ..., "52": "[8 bytes]"},
     "response": {"mti": "0210", "39": "00", ...} | null,
     "error": "field 4: not numeric"}          # only when something went wrong

Every frame gets a line, refused ones included: a format error records the fields that could be
read (``request``) and what was wrong (``error``, which names fields, never their content); a
frame without a readable MTI records ``{"mti": null}``.

Masking is ``codec.dump.masked_fields`` (issuer dialect): PANs show 6 + 4 digits; 35, 36, 45,
52, 55 and 48 (key exchange data) never show their content, only their length.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

from codec.dump import masked_fields


def masked(msg) -> dict:
    """codec.dump's masking (issuer dialect): PAN 6+4; 35, 36, 45, 52, 55, 48 as a length."""
    return masked_fields(msg, "issuer")


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
        error: str | None = None,
        arrived: float | None = None,
    ) -> None:
        if self._f is None:
            return
        line = {
            "ts": round(time.time(), 3),
            "conn": conn,
            "outcome": outcome,
            "rule": rule,
            "hook": hook,
            "elapsed_ms": round(elapsed * 1000, 3),
            "request": {"mti": None} if request is None else masked(request),
            "response": None if response is None else masked(response),
        }
        if error:
            line["error"] = error
        if arrived is not None:
            # wall time of arrival, taken then: the answer's time less its elapsed time is late by
            # however long the answer waited to be recorded, which reorders back-to-back requests
            line["arrived"] = round(arrived, 6)
        self._f.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
