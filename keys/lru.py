"""A small thread-safe LRU map, for the SoftHSM's cipher and DUKPT caches.

Bounded because both caches are keyed by attacker-influenced values (tokens, KSNs).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

_V = TypeVar("_V")


class LRU(Generic[_V]):
    """get/put/clear with least-recently-used eviction beyond ``maxsize`` entries."""

    def __init__(self, maxsize: int) -> None:
        self._d: OrderedDict[Hashable, _V] = OrderedDict()
        self._max = maxsize
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> _V | None:
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key: Hashable, value: _V) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self._max:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)
