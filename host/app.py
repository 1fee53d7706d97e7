"""The running host: what every flow step may use (store, HSM, links, router, clock, caches).

Built once at start from the settings; flows receive it as their first argument instead of
reaching for globals, so a test can build a host with a fixed clock and a temporary journal.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import secrets
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from host.clock import BusinessCalendar, Clock, SystemClock
from host.config import ConfigError, Settings, parse_address
from host.flow.engine import FlowTable
from host.hsm import AsyncHSM
from host.issuer.link import IssuerLink
from host.issuer.protocol import PROTOCOLS
from host.issuer.router import Router
from host.security import SecurityMonitor
from host.store import Store
from host.store.errors import NotFound
from host.store.records import PanFingerprinter
from keys.hsm import SoftHSM
from keys.lmk import xor_components
from keys.tokens import KeyToken, KeyType, parse_key_type

log = structlog.get_logger("poshost.host")


@attrs.define
class _Cached:
    value: Any
    expires: float


@attrs.define
class EstateCache:
    """Terminal and merchant records, cached briefly so a purchase does not pay a database read
    for facts that change a few times a day. Sign-on and sign-off refresh the entry; changes made
    by `poshost estate` in another process take effect within `ttl` seconds."""

    store: Store
    ttl: float = 5.0
    # A record re-read because a request disagreed with it (``fresh_terminal``) is not read
    # again within this many seconds, so wrong MACs cost a peer no more than a read a second.
    refresh_interval: float = 1.0
    _terminals: dict[str, _Cached] = attrs.field(factory=dict)
    _merchants: dict[str, _Cached] = attrs.field(factory=dict)
    _refreshed: dict[str, float] = attrs.field(factory=dict)

    async def terminal(self, tid: str) -> Any | None:
        return await self._get(self._terminals, tid, self.store.get_terminal)

    async def fresh_terminal(self, tid: str) -> Any | None:
        """The terminal's record from the journal (not the cache) when the cached one may be
        stale: another process (a worker of this host, `poshost estate`) signed it on, settled
        its batch or changed its keys. None when it was refreshed a moment ago already."""
        now = trio.current_time()
        if now - self._refreshed.get(tid, -math.inf) < self.refresh_interval:
            return None
        if len(self._refreshed) > 100_000:
            self._refreshed.clear()
        self._refreshed[tid] = now
        self.forget_terminal(tid)
        return await self.terminal(tid)

    async def merchant(self, mid: str) -> Any | None:
        return await self._get(self._merchants, mid, self.store.get_merchant)

    def forget_terminal(self, tid: str) -> None:
        self._terminals.pop(tid, None)

    async def _get(self, cache: dict[str, _Cached], key: str, load) -> Any | None:
        now = trio.current_time()
        hit = cache.get(key)
        if hit is not None and hit.expires > now:
            return hit.value
        try:
            value = await load(key)
        except NotFound:
            value = None
        cache[key] = _Cached(value, now + self.ttl)
        return value


@attrs.frozen
class Moment:
    """One second of the host's clock, pre-formatted for the wire and the journal."""

    instant: dt.datetime
    local: dt.datetime
    business_date: dt.date
    yyyymmdd: str
    hhmmss: str  # field 12
    mmdd: str  # field 13
    transmission: str  # field 7, UTC MMDDhhmmss


@attrs.define
class Host:
    settings: Settings
    store: Store
    hsm: AsyncHSM  # what the flows await: in-process or network (hsm.kind)
    local_hsm: SoftHSM  # in-process, same LMK: setup-time key wrapping and track decryption
    links: dict[str, IssuerLink]
    zpks: dict[str, KeyToken]
    router: Router
    calendar: BusinessCalendar
    flows: FlowTable
    fingerprint_key: bytes
    clock: Clock = attrs.field(factory=SystemClock)
    estate: EstateCache = attrs.field(default=None)
    saf_event: trio.Event = attrs.field(factory=trio.Event)
    security: SecurityMonitor = attrs.field(default=None)
    _tokens: dict[str, KeyToken] = attrs.field(factory=dict, init=False)
    _fingerprinter: PanFingerprinter = attrs.field(default=None, init=False, repr=False)
    caches: dict[Any, Any] = attrs.field(factory=dict)  # small per-process caches of steps

    def __attrs_post_init__(self) -> None:
        if self.estate is None:
            self.estate = EstateCache(self.store)
        if self.security is None:
            self.security = SecurityMonitor(self.store)
        self._fingerprinter = PanFingerprinter(self.fingerprint_key)

    def token(self, text: str) -> KeyToken:
        """A key token parsed from its stored text, cached: a purchase needs the MAK twice and
        the PIK once, and the text of a signed-on terminal's keys changes only at sign-on."""
        cached = self._tokens.get(text)
        if cached is None:
            if len(self._tokens) >= 10_000:
                self._tokens.clear()
            cached = self._tokens[text] = KeyToken.from_text(text)
        return cached

    def saf_wakeup(self) -> None:
        """Tell the store-and-forward worker that something was queued."""
        self.saf_event.set()

    # -- time -------------------------------------------------------------------------------
    _moment: Moment | None = attrs.field(default=None, init=False)

    def now(self) -> dt.datetime:
        return self.clock.now()

    def moment(self) -> Moment:
        """The current second as every response and issuer request writes it. Time-zone
        conversion and strftime cost microseconds each and a purchase needs seven of them, so
        they are computed once per second of the clock (fields 7, 12, 13 have seconds)."""
        now = self.clock.now()
        second = now.replace(microsecond=0)
        cached = self._moment
        if cached is not None and cached.instant == second:
            return cached
        local = self.calendar.local(second)
        date = self.calendar.business_date(second)
        self._moment = cached = Moment(
            instant=second,
            local=local,
            business_date=date,
            yyyymmdd=date.strftime("%Y%m%d"),
            hhmmss=local.strftime("%H%M%S"),
            mmdd=local.strftime("%m%d"),
            transmission=second.astimezone(dt.UTC).strftime("%m%d%H%M%S"),
        )
        return cached

    def business_date(self) -> dt.date:
        return self.moment().business_date

    def local_now(self) -> dt.datetime:
        return self.moment().local

    # -- identifiers ---------------------------------------------------------------------------
    def fingerprint(self, pan: str) -> str:
        """A keyed hash so the journal can match the same card without holding its PAN."""
        return self._fingerprinter(pan)

    @staticmethod
    def rrn_for(journal_id: int, business_date: dt.date) -> str:
        """RRN = last digit of the year, day of the year, then the journal id (8 digits).

        The journal id is unique across every host process sharing one journal, so RRNs are
        too, and a host that crashed can recompute the RRN of a pending row for its reversal.
        """
        return f"{business_date.year % 10}{business_date.timetuple().tm_yday:03d}" + (
            f"{journal_id % 100_000_000:08d}"
        )

    @functools.cached_property
    def acquirer_id(self) -> str:
        return str(self.settings.get("acquirer.institution_id"))

    @functools.cached_property
    def card_organisation(self) -> str:
        """Field 63 of the answers (the settings do not change while the host runs)."""
        return str(self.settings.get("acquirer.card_organisation"))

    @functools.cached_property
    def domestic_bins(self) -> tuple[str, ...]:
        """PAN prefixes of the domestic card group, as one tuple for ``str.startswith``."""
        return tuple(str(p) for p in self.settings.get("acquirer.domestic_bins"))


def hsm_options(settings: Settings) -> dict[str, Any]:
    """The SoftHSM's usage settings from [hsm]: single-length types, legacy TR-31, K0 type."""
    cfg = settings["hsm"]
    return {
        "single_length": frozenset(parse_key_type(t) for t in cfg["single_length_types"]),
        "legacy_tr31": bool(cfg["legacy_tr31"]),
        "tr31_k0_type": parse_key_type(cfg["tr31_k0_type"]),
    }


def load_lmk(settings: Settings) -> tuple[bytes, str]:
    """The LMK and where it came from. A new installation gets a fresh random LMK in its data
    directory (mode 0600), like an HSM commissioned for the first time."""
    hsm_cfg = settings["hsm"]
    if hsm_cfg.get("lmk"):
        return bytes.fromhex(hsm_cfg["lmk"]), "hsm.lmk"
    if hsm_cfg.get("lmk_components"):
        return xor_components(hsm_cfg["lmk_components"]), "hsm.lmk_components"
    path = Path(hsm_cfg.get("lmk_file") or settings.data_dir / "lmk.hex")
    if path.exists():
        return bytes.fromhex(path.read_text().strip()), str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lmk = SoftHSM.generate_lmk(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(lmk.hex().upper() + "\n")
    log.warning("lmk_generated", path=str(path), reason="no LMK configured: new installation")
    return lmk, f"{path} (generated)"


def load_fingerprint_key(settings: Settings) -> bytes:
    configured = settings.get("journal.pan_fingerprint_key")
    if configured:
        key = bytes.fromhex(configured)
        if len(key) < 16:
            raise ConfigError("journal.pan_fingerprint_key must be at least 16 bytes (32 hex)")
        return key
    path = settings.data_dir / "fingerprint.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def zone_pin_keys(settings: Settings, hsm: SoftHSM) -> dict[str, KeyToken]:
    """Each link's ZPK: a token under the LMK (`zpk`), or a clear key flagged as a test key.

    ``hsm`` imports the test keys: the start-up's short-lived test-key HSM (see
    :func:`startup_test_key_hsm`), never the one the running host serves with.
    """
    zpks: dict[str, KeyToken] = {}
    for name, link in settings["links"].items():
        if link.get("zpk"):
            zpks[name] = KeyToken.from_text(link["zpk"])
        elif link.get("zpk_clear_test_key"):
            zpks[name] = hsm.import_clear(KeyType.ZPK, bytes.fromhex(link["zpk_clear_test_key"]))
            log.warning("link_test_zpk", link=name, kcv=zpks[name].check_value)
    return zpks


def startup_test_key_hsm(lmk: bytes, settings: Settings) -> SoftHSM:
    """A second HSM on the same LMK that takes the configuration's clear TEST keys
    (``links.*.zpk_clear_test_key``, the demo estate's ``*_clear_test_key``) at start-up and is
    then dropped, so the HSM the running host serves with never takes a clear key."""
    return SoftHSM(lmk, clear_test_keys=True, **hsm_options(settings))


def build_links(settings: Settings) -> dict[str, IssuerLink]:
    issuer = settings["issuer"]
    links = {}
    for name, cfg in settings["links"].items():
        host, port = parse_address(cfg["address"])
        links[name] = IssuerLink(
            name,
            host,
            port,
            timeout=float(cfg.get("timeout", issuer["timeout"])),
            echo_interval=float(issuer["echo_interval"]),
            reconnect_min=float(issuer["reconnect_min"]),
            reconnect_max=float(issuer["reconnect_max"]),
            protocol=PROTOCOLS[cfg.get("protocol", "iso8583")],
        )
    return links
