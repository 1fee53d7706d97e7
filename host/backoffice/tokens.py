"""Back-office API tokens: how they are made, stored, checked and throttled.

A token is ``pht_<id>_<secret>`` with a 128-bit random secret. Guessing such a secret is hopeless
however fast each guess is, so a slow password hash (scrypt) buys nothing and costs ~29 ms of
CPU per request, which an attacker can order by the thousand. The journal therefore keeps the
SHA-256 digest of the secret (``sha256$<hex>``), checked with a constant-time comparison. Tokens
issued before keep their ``scrypt$...`` hash until their first successful use replaces it with
a digest; scrypt stays for operators' passwords, which people choose.

Failures are throttled per client address and per token id with a token bucket: ``burst``
failures in a row, then one more each ``refill_seconds``; meanwhile the API answers 429 without
looking at the secret at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Hashable

import attrs

from host.store.passwords import hash_password

TOKEN_RE = re.compile(r"pht_(\d{1,12})_([0-9a-f]{32})")
DIGEST_SCHEME = "sha256$"
LEGACY_SCHEME = "scrypt$"
DURATION_RE = re.compile(r"(\d{1,5})([mhdw])")
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def digest(secret: str) -> str:
    return DIGEST_SCHEME + hashlib.sha256(secret.encode()).hexdigest()


# Compared against when the token id does not exist, so an unknown id costs what a wrong secret
# costs and the answer time says nothing about which ids exist.
UNKNOWN_ID_DIGEST = digest(secrets.token_hex(16))


def new_token() -> tuple[str, str]:
    """(secret part, its digest); the full token is ``pht_<id>_<secret>`` once the row exists."""
    secret = secrets.token_hex(16)
    return secret, digest(secret)


def legacy_hash(secret: str) -> str:
    """How tokens were stored before (scrypt): for tests of the upgrade path only."""
    return hash_password(secret)


def is_legacy(stored: str) -> bool:
    return stored.startswith(LEGACY_SCHEME)


def digest_matches(secret: str, stored: str) -> bool:
    return hmac.compare_digest(digest(secret), stored)


def parse_expiry(text: str, now: dt.datetime) -> dt.datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from now, or an ISO date (the token works through that
    day, UTC) or date-time (UTC unless it names its offset)."""
    text = text.strip()
    match = DURATION_RE.fullmatch(text)
    if match:
        return now + dt.timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)])
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"expiry {text!r}: give 30d, 12h, 90m, 2w, a date (2026-12-31) or a date-time"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@attrs.define
class FailureLimiter:
    """A token bucket of failures per key (a client address, a token id). Keys whose bucket is
    full again are forgotten when the table grows past ``max_keys``, so a flood of addresses
    cannot grow it without bound."""

    burst: int
    refill_seconds: float
    max_keys: int = 10_000
    _buckets: dict[Hashable, tuple[float, float]] = attrs.field(factory=dict)

    def retry_after(self, key: Hashable, now: float) -> int:
        """0 when ``key`` may try now, else the whole seconds until it may."""
        level = self._level(key, now)
        return 0 if level >= 1 else max(1, math.ceil((1 - level) * self.refill_seconds))

    def failed(self, key: Hashable, now: float) -> None:
        self._buckets[key] = (max(self._level(key, now) - 1, 0.0), now)
        if len(self._buckets) > self.max_keys:
            self._prune(now)

    def _level(self, key: Hashable, now: float) -> float:
        hit = self._buckets.get(key)
        if hit is None:
            return float(self.burst)
        level, at = hit
        return min(float(self.burst), level + (now - at) / self.refill_seconds)

    def _prune(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]
        if len(self._buckets) > self.max_keys:  # still full: keep the most recent half
            recent = sorted(self._buckets.items(), key=lambda kv: kv[1][1])[-self.max_keys // 2 :]
            self._buckets = dict(recent)
