"""Sign-on and sign-off that a stranger cannot abuse.

Fields 41 and 42 are printed on every receipt and 08xx messages carry no MAC, so anyone who
reaches the port can send a sign-on or a sign-off for any terminal. Three rules make that
harmless (docs/security/sign-on.md):

* a sign-on's new keys wait as *pending* next to the current ones; the first request MACed
  under the new MAK proves the terminal holds them and promotes them (``try_pending_keys``);
  unproven pending keys expire after ``security.pending_ttl``;
* a sign-off ends the session only when it comes from the connection that holds it (one that
  proved the current MAK) or carries a MAC under the terminal's MAK (``may_sign_off``);
* sign-ons and sign-offs are rate-limited per terminal (``limit_sign_on``/``limit_sign_off``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import structlog
import trio

from codec import responses as codes
from codec import terminal as terminal_codec
from codec.message import FieldValue
from host.config import SecuritySettings
from host.flow.engine import Decline, Exchange
from keys.errors import KeysError

if TYPE_CHECKING:
    from host.app import Host
    from host.store.records import Terminal

log = structlog.get_logger("poshost.session")

RATE_LIMITED = codes.FREQUENCY_LIMIT
SIGN_OFF_REFUSED = codes.SECURITY_FAILURE  # the sign-off proved nothing
MAX_BUCKETS = 100_000


@attrs.define
class TokenBuckets:
    """One token bucket per key (a terminal id): ``burst`` tokens, one back every ``refill``
    seconds. Keys are known terminal ids only (the step runs after ``identify_terminal``),
    and full buckets are pruned when there are many, so memory stays bounded."""

    burst: int
    refill: float
    _state: dict[str, tuple[float, float]] = attrs.field(factory=dict)

    def take(self, key: str, now: float) -> bool:
        tokens, at = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.refill)
        if len(self._state) >= MAX_BUCKETS and key not in self._state:
            self._prune(now)
        if tokens < 1:
            self._state[key] = (tokens, now)
            return False
        self._state[key] = (tokens - 1, now)
        return True

    def _prune(self, now: float) -> None:
        full = self.burst * self.refill
        self._state = {k: v for k, v in self._state.items() if now - v[1] < full}


@attrs.define
class SessionLimits:
    """The running host's buckets: sign-ons and sign-offs are limited separately, so a flood
    of one cannot lock a terminal out of the other."""

    sign_on: TokenBuckets
    sign_off: TokenBuckets

    @classmethod
    def from_settings(cls, security: SecuritySettings) -> SessionLimits:
        burst, refill = security.session_burst, security.session_refill
        return cls(TokenBuckets(burst, refill), TokenBuckets(burst, refill))


def _limit(host: Host, ex: Exchange, buckets: TokenBuckets, kind: str) -> None:
    tid = ex.terminal.tid
    if not buckets.take(tid, trio.current_time()):
        host.security.record(f"{kind}_rate_limited", peer=ex.conn.peer, tid=tid,
                             detail=f"more than {host.settings.security.session_burst}"
                             f" {kind.replace('_', '-')}s in a burst")  # fmt: skip
        raise Decline(RATE_LIMITED, f"{kind} rate limit")


async def limit_sign_on(host: Host, ex: Exchange) -> None:
    _limit(host, ex, host.sessions.sign_on, "sign_on")


async def limit_sign_off(host: Host, ex: Exchange) -> None:
    _limit(host, ex, host.sessions.sign_off, "sign_off")


# -- keys ------------------------------------------------------------------------------------


async def mac_matches(
    host: Host, mak_token: str | None, data: bytes, mac: FieldValue | None
) -> bool:
    """Does the MAC verify? HsmUnavailable is not a "no": it propagates (the step answers 96)
    so an HSM outage is never counted as a terminal's MAC failure."""
    if not mak_token or not mac:
        return False
    try:
        verified: bool = await host.hsm.verify_mac(
            host.token(mak_token), data, str(mac).encode("ascii")
        )
        return verified
    except (KeysError, UnicodeEncodeError):
        return False


def now_ms(host: Host) -> int:
    """The host's clock in epoch ms: pending keys are dated and expired on it."""
    return int(host.now().timestamp() * 1000)


def pending_expired(host: Host, terminal: Terminal) -> bool:
    ttl_ms = host.settings.security.pending_ttl * 1000
    return terminal.pending_at is None or now_ms(host) - terminal.pending_at > ttl_ms


async def try_pending_keys(host: Host, ex: Exchange, data: bytes, mac: FieldValue) -> bool:
    """The request failed under the current MAK: does it prove the pending keys? Then they
    are promoted durably before anything else happens, and the rest of this exchange (PIN,
    track, response MAC) uses them. Expired pending keys are dropped instead."""
    terminal = ex.terminal
    pending = terminal.pending_mak_token
    if not pending:
        return False
    if pending_expired(host, terminal):
        host.security.record("keys_pending_expired", peer=ex.conn.peer, tid=terminal.tid,
                             detail="sign-on keys not proven in time, dropped")  # fmt: skip
        await host.store.drop_pending_keys(terminal.tid, pending)
        host.estate.forget_terminal(terminal.tid)
        return False
    if not await mac_matches(host, pending, data, mac):
        return False
    if not await host.store.promote_keys(terminal.tid, pending):
        return False  # a later sign-on replaced them, or the terminal signed off meanwhile
    host.estate.forget_terminal(terminal.tid)
    ex.terminal = attrs.evolve(
        terminal,
        pik_token=terminal.pending_pik_token,
        mak_token=pending,
        tdk_token=terminal.pending_tdk_token,
        operator=terminal.pending_operator,
        signed_on=True,
        pending_pik_token=None,
        pending_mak_token=None,
        pending_tdk_token=None,
        pending_operator=None,
        pending_at=None,
    )
    log.info("keys_promoted", tid=terminal.tid, peer=ex.conn.peer)
    return True


# -- sign-off --------------------------------------------------------------------------------


async def may_sign_off(host: Host, ex: Exchange) -> bool:
    """A sign-off is honoured from the connection that holds the session (it proved the
    current MAK), or when it carries a MAC (field 64, our extension for terminals that open a
    connection per message) under the current MAK or the unexpired pending one."""
    terminal = ex.terminal
    if ex.conn.proven_mak is not None and ex.conn.proven_mak == terminal.mak_token:
        return True
    mac = ex.request.get(64)
    if not mac:
        return False
    data = terminal_codec.mac_data(ex.envelope.payload)
    if await mac_matches(host, terminal.mak_token, data, mac):
        return True
    pending = terminal.pending_mak_token
    return not pending_expired(host, terminal) and await mac_matches(host, pending, data, mac)


def refuse_sign_off(host: Host, ex: Exchange) -> None:
    terminal = ex.terminal
    why = "MAC does not verify" if ex.request.get(64) else "connection does not hold the session"
    host.security.record("sign_off_refused", peer=ex.conn.peer, tid=terminal.tid, detail=why)
    raise Decline(SIGN_OFF_REFUSED, f"sign-off refused: {why}")
