"""The running host: what every flow step may use (store, HSM, links, router, clock, and the
small per-process caches of the steps, each a typed attribute).

Built once at start from the settings; flows receive it as their first argument instead of
reaching for globals, so a test can build a host with a fixed clock and a temporary journal.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import structlog
import trio

from host.clock import BusinessCalendar, Clock, Moment, SystemClock
from host.config import ConfigError, LinkSettings, Settings, parse_address
from host.flow.batch import BatchCache
from host.flow.engine import FlowTable
from host.flow.session_guard import SessionLimits
from host.hsm import AsyncHSM, ClearTestKeys, SoftAsyncHSM, SoftClearTestKeys, network_hsm
from host.issuer.link import IssuerLink
from host.issuer.protocol import PROTOCOLS
from host.issuer.router import Router
from host.merchant.business_day import BusinessDayRecord
from host.merchant.operators import TermsCache
from host.merchant.risk import RiskEngine
from host.security import SecurityMonitor
from host.store import Store
from host.store.errors import NotFound
from host.store.records import Merchant, PanFingerprinter, Terminal
from keys.hsm import SoftHSM
from keys.lmk import xor_components
from keys.tokens import KeyToken, KeyType, parse_key_type

if TYPE_CHECKING:
    from host.issuer.wallet_link import WalletLink

log = structlog.get_logger("poshost.host")
_V = TypeVar("_V")


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

    async def terminal(self, tid: str) -> Terminal | None:
        found: Terminal | None = await self._get(self._terminals, tid, self.store.get_terminal)
        return found

    async def fresh_terminal(self, tid: str) -> Terminal | None:
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

    async def merchant(self, mid: str) -> Merchant | None:
        found: Merchant | None = await self._get(self._merchants, mid, self.store.get_merchant)
        return found

    def forget_terminal(self, tid: str) -> None:
        self._terminals.pop(tid, None)

    async def _get(
        self, cache: dict[str, _Cached], key: str, load: Callable[[str], Awaitable[_V]]
    ) -> _V | None:
        now = trio.current_time()
        hit = cache.get(key)
        value: _V | None
        if hit is not None and hit.expires > now:
            value = hit.value
            return value
        try:
            value = await load(key)
        except NotFound:
            value = None
        cache[key] = _Cached(value, now + self.ttl)
        return value


@attrs.define
class Host:
    settings: Settings
    store: Store
    hsm: AsyncHSM  # every key operation: in-process or network (hsm.kind)
    links: dict[str, IssuerLink]
    zpks: dict[str, KeyToken]
    router: Router
    calendar: BusinessCalendar
    flows: FlowTable
    fingerprint_key: bytes
    clock: Clock = attrs.field(factory=SystemClock)
    estate: EstateCache = attrs.field()
    saf_event: trio.Event = attrs.field(factory=trio.Event)
    security: SecurityMonitor = attrs.field()
    _tokens: dict[str, KeyToken] = attrs.field(factory=dict, init=False)
    _fingerprint: PanFingerprinter = attrs.field(init=False, repr=False)
    # The steps' per-process state, one typed attribute each (docs/design.md "Conventions").
    risk: RiskEngine = attrs.field()  # limits and running totals (host/merchant/risk.py)
    terms: TermsCache = attrs.field(factory=TermsCache)  # merchants' effective terms
    sessions: SessionLimits = attrs.field()  # sign-on / sign-off rate limits per terminal
    batches: BatchCache = attrs.field(factory=BatchCache)  # each terminal's open batch
    business_day: BusinessDayRecord = attrs.field(factory=BusinessDayRecord)  # last cut-over

    @estate.default
    def _estate(self) -> EstateCache:
        return EstateCache(self.store)

    @security.default
    def _security(self) -> SecurityMonitor:
        return SecurityMonitor(self.store)

    @risk.default
    def _risk(self) -> RiskEngine:
        return RiskEngine.from_settings(self.settings.risk)

    @sessions.default
    def _sessions(self) -> SessionLimits:
        return SessionLimits.from_settings(self.settings.security)

    @_fingerprint.default
    def _fingerprinter(self) -> PanFingerprinter:
        return PanFingerprinter(self.fingerprint_key)

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
        return self._fingerprint(pan)

    @staticmethod
    def rrn_for(journal_id: int, business_date: dt.date) -> str:
        """RRN = last digit of the year, day of the year, then the journal id (8 digits).

        The journal id is unique across every host process sharing one journal, so RRNs are
        too, and a host that crashed can recompute the RRN of a pending row for its reversal.
        """
        return f"{business_date.year % 10}{business_date.timetuple().tm_yday:03d}" + (
            f"{journal_id % 100_000_000:08d}"
        )

    @property
    def acquirer_id(self) -> str:
        return self.settings.acquirer.institution_id


def hsm_options(settings: Settings) -> dict[str, Any]:
    """The SoftHSM's usage settings from [hsm]: single-length types, legacy TR-31, K0 type."""
    cfg = settings.hsm
    return {
        "single_length": frozenset(parse_key_type(t) for t in cfg.single_length_types),
        "legacy_tr31": cfg.legacy_tr31,
        "tr31_k0_type": parse_key_type(cfg.tr31_k0_type),
    }


def load_lmk(settings: Settings) -> tuple[bytes, str]:
    """The LMK and where it came from. A new installation gets a fresh random LMK in its data
    directory (mode 0600), like an HSM commissioned for the first time."""
    hsm_cfg = settings.hsm
    if hsm_cfg.lmk:
        return bytes.fromhex(hsm_cfg.lmk), "hsm.lmk"
    if hsm_cfg.lmk_components:
        return xor_components(list(hsm_cfg.lmk_components)), "hsm.lmk_components"
    path = Path(hsm_cfg.lmk_file or settings.data_dir / "lmk.hex")
    if path.exists():
        return bytes.fromhex(path.read_text().strip()), str(path)
    if hsm_cfg.kind == "network":
        # An offline key command of a network installation: a fresh LMK here would make tokens
        # the HSM cannot read.
        raise ConfigError(
            f"hsm.kind = network: the LMK lives in the HSM, and {path} does not exist; give this "
            "command the HSM's LMK (hsm.lmk_file, hsm.lmk or hsm.lmk_components)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    lmk = SoftHSM.generate_lmk(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(lmk.hex().upper() + "\n")
    log.warning("lmk_generated", path=str(path), reason="no LMK configured: new installation")
    return lmk, f"{path} (generated)"


def load_fingerprint_key(settings: Settings) -> bytes:
    configured = settings.journal.pan_fingerprint_key
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


async def zone_pin_keys(settings: Settings, test_keys: ClearTestKeys) -> dict[str, KeyToken]:
    """Each link's ZPK: a token under the LMK (`zpk`), or a clear key flagged as a test key.

    ``test_keys`` wraps the test keys at start-up only (:func:`open_hsm`), never through the
    HSM interface the running host serves with.
    """
    zpks: dict[str, KeyToken] = {}
    for name, link in settings.links.items():
        if link.zpk:
            zpks[name] = KeyToken.from_text(link.zpk)
        elif link.zpk_clear_test_key:
            clear = bytes.fromhex(link.zpk_clear_test_key)
            zpks[name] = await test_keys.import_test_key(KeyType.ZPK, clear)
            log.warning("link_test_zpk", link=name, kcv=zpks[name].check_value)
    return zpks


def open_hsm(settings: Settings) -> tuple[AsyncHSM, ClearTestKeys]:
    """The HSM the host serves with, and what wraps the configured TEST keys at start-up.

    ``soft``: the LMK is loaded (a new installation generates one) into this process, which
    holds the software HSM. ``network``: the host reads no LMK at all (``hsm.lmk*`` are
    ignored, none is generated); the HSM holds it, and test keys go to it as TK commands.
    """
    if settings.hsm.kind == "network":
        hsm = network_hsm(settings)
        log.info("lmk_not_loaded", hsm=settings.hsm.address, reason="hsm.kind = network")
        lmk_settings = ("lmk", "lmk_components", "lmk_file")
        ignored = [f"hsm.{k}" for k in lmk_settings if getattr(settings.hsm, k)]
        if ignored:
            log.warning("lmk_settings_ignored", settings=ignored, reason="hsm.kind = network")
        return hsm, hsm
    lmk, lmk_source = load_lmk(settings)
    soft = SoftHSM(lmk, **hsm_options(settings))
    test_keys = SoftClearTestKeys(startup_test_key_hsm(lmk, settings))
    del lmk
    log.info("lmk_loaded", source=lmk_source, kcv=soft.lmk_check_value)
    return SoftAsyncHSM(soft), test_keys


def startup_test_key_hsm(lmk: bytes, settings: Settings) -> SoftHSM:
    """A second HSM on the same LMK that takes the configuration's clear TEST keys
    (``links.*.zpk_clear_test_key``, the demo estate's ``*_clear_test_key``) at start-up and is
    then dropped, so the HSM the running host serves with never takes a clear key."""
    return SoftHSM(lmk, clear_test_keys=True, **hsm_options(settings))


def build_links(settings: Settings) -> dict[str, IssuerLink | WalletLink]:
    """Each configured link: an ISO 8583 issuer link, or a wallet link (protocol = "wallet")."""
    issuer = settings.issuer
    links: dict[str, IssuerLink | WalletLink] = {}
    for name, cfg in settings.links.items():
        host, port = parse_address(cfg.address)
        if cfg.protocol == "wallet":
            links[name] = build_wallet_link(settings, name, cfg, host, port)
            continue
        links[name] = IssuerLink(
            name,
            host,
            port,
            timeout=settings.link_timeout(name),
            echo_interval=issuer.echo_interval,
            reconnect_min=issuer.reconnect_min,
            reconnect_max=issuer.reconnect_max,
            protocol=PROTOCOLS[cfg.protocol],
        )
    return links


def build_wallet_link(
    settings: Settings, name: str, cfg: LinkSettings, host: str, port: int
) -> WalletLink:
    """A wallet link (docs/qr.md): the acquirer's key pair is made on first start in the data
    directory (private key 0600, never printed; public half next to it for the platform)."""
    from host.issuer.wallet_link import WalletLink, acquirer_key_paths
    from keys import rsa_sign

    qr = settings.qr
    private, public = acquirer_key_paths(settings.data_dir, cfg.key_file or None)
    key = rsa_sign.load_or_create(private, public)
    notify_url = qr.notify_url or (
        f"http://{qr.notify_listen}/wallet/notify" if qr.notify_listen else None
    )
    return WalletLink(
        name, host, port, cfg.app_id, key, Path(cfg.platform_key),
        timeout=settings.link_timeout(name),
        probe_interval=cfg.probe_interval,
        notify_url=notify_url,
    )  # fmt: skip
