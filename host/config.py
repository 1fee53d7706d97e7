"""Host configuration: embedded defaults, one TOML file, then environment variables.

Every value remembers where it came from, so `poshost serve --print-config` can answer the first
question of any production incident: "which setting is actually in force, and why?".

Environment variables are ``POSHOST_<SECTION>_<KEY>`` (section names never contain ``_``), for
example ``POSHOST_SERVER_LISTEN=0.0.0.0:8583``. Values from the environment are parsed as TOML
values when they parse (numbers, booleans, arrays), else taken as strings.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs
from attrs import AttrsInstance

DEFAULTS: dict[str, Any] = {
    "server": {
        "listen": "127.0.0.1:8583",
        "max_connections": 2000,
        # Open connections one address may hold; more are closed at once (security event
        # connection_limit). High, because many terminals can share one NAT address.
        "max_per_peer": 200,
        "max_frame": 4096,
        # Seconds a new connection has to get its first frame answered, else it is closed
        # (security event silent_connection). Leaves room for terminals that connect early.
        "first_frame_timeout": 30.0,
        "idle_timeout": 300.0,  # seconds a connection that was answered may stay silent
        "read_timeout": 15.0,  # seconds to complete a frame once its first byte arrived
        "shutdown_grace": 10.0,  # seconds in-flight work may take after SIGTERM
        # Host processes sharing the listening port (SO_REUSEPORT) and the journal writer, one
        # core each (`serve --workers`, host/cli/workers.py). Limits above are per worker.
        "workers": 1,
    },
    "data": {"dir": "var"},
    "journal": {
        # Empty means "<data.dir>/poshost.sqlite" (the default of `poshost journal/estate` too).
        "url": "",
        "pan_fingerprint_key": "",  # hex; empty means derived from the LMK
        # Wait up to this long for more writes before each group commit when several came
        # together (fewer fsyncs, at the price of latency); 0 (default) turns it off. With the
        # writer process, 2 ms halved the full-speed throughput for no CPU saved.
        "commit_delay_ms": 0.0,
        # "process": the journal writer runs in a child process of the host (no GIL shared
        # with the event loop); "thread": a thread of the host process.
        "writer": "process",
        # Where a journal write's durability comes from. "log": the writer appends it to the
        # journal's write log (<journal>-log, one fdatasync per group) and answers, and the rows
        # reach the tables in batches a moment later; reads of the journal wait for that
        # (docs/journal.md). SQLite with the writer process only, one host (and its workers)
        # per journal file. "database": each group is a durable database transaction; what a
        # PostgreSQL journal (several hosts) and the thread writer always do.
        "durability": "log",
    },
    "hsm": {
        # One of: lmk (hex), lmk_components (list of hex), or lmk_file. When none is given, a
        # fresh LMK is generated into <data.dir>/lmk.hex on first start (a new installation).
        "lmk": "",
        "lmk_components": [],
        "lmk_file": "",
        # "soft": the software HSM inside this process. "network": a payShield-style HSM over
        # TCP at `address` that holds the LMK (e.g. `poshost hsm-sim`; docs/hsm.md); the host
        # then reads no LMK (the lmk settings above are ignored).
        "kind": "soft",
        "address": "127.0.0.1:1500",
        # network: the LMK check value the HSM must report at start (NC); "" = log what it has.
        "lmk_check_value": "",
        "connections": 2,  # pooled TCP connections; each carries many commands at once
        "timeout": 2.0,  # seconds a command may take (connect included), else 96
        "connect_timeout": 1.0,  # seconds to open a connection
        # Commands failing in a row (no answer, refused, broken) that open the circuit breaker:
        # then every HSM call fails at once (96) for `breaker_cooldown` seconds, after which one
        # command probes the HSM and its success closes the breaker.
        "breaker_failures": 3,
        "breaker_cooldown": 2.0,
        # Key types that may be single-length (56-bit) DES keys. The terminal dialect's MAK is
        # single-length in every key mode and the PIK in key mode 001; any other type (and
        # these, once removed) is refused at 8 bytes on generation and import.
        "single_length_types": ["TAK", "TPK"],
        # Accept TR-31 key blocks of the deprecated versions A and C (key variant binding) on
        # import. They are never produced; B (TDES) and D (AES) blocks always work.
        "legacy_tr31": False,
        # The one key type a foreign TR-31 K0 block (one without poshost's type block) becomes:
        # TMK, ZMK or KEK. poshost's own K0 exports name their type and come back as it only.
        "tr31_k0_type": "TMK",
    },
    "acquirer": {
        "institution_id": "48615840",  # field 32
        "name": "POSHOST ACQUIRER",
        "card_organisation": "CUP",  # field 63 in responses
        "timezone": "Asia/Shanghai",
        "cutover": "23:00",  # local time at which the business date advances
        "domestic_bins": ["62"],  # PAN prefixes counted as domestic in settlement totals
    },
    "issuer": {
        "timeout": 10.0,  # seconds to wait for an issuer response before 98 + reversal
        "echo_interval": 30.0,
        "reconnect_min": 0.5,
        "reconnect_max": 15.0,
        "saf_interval": 5.0,  # seconds between store-and-forward retries
    },
    # Issuer links: name -> {address, protocol, zpk, ...}; routes: list of {prefix, link}.
    # protocol: how the issuer speaks (host/issuer/protocol.py); "iso8583" (ISO 8583:1987,
    # docs/issuer-contract.md) when not given.
    "links": {
        "sim": {
            "address": "127.0.0.1:9583",
            # TEST ONLY demo zone keys shared with the bundled issuer simulator.
            "zpk_clear_test_key": "4CA2161637D0133E5E151AEA45DA2A12",
        },
    },
    # BIN routing, longest matching PAN prefix wins; "" matches every PAN.
    "routes": [{"prefix": "", "link": "sim"}],
    "log": {
        "format": "auto",  # auto | json | console
        "level": "info",
        # The masked request/response dumps on the one line per exchange: "declines" (default:
        # only for answers other than 00, where someone will want to read them) or "all"
        # (certification runs; `poshost serve --trace`). An approval's line always carries its
        # terminal, STAN, type, code, amount, masked PAN and latency.
        "dumps": "declines",
    },
    # Voids, refunds, pre-authorizations and settlement (host/flow/originals.py and batch.py).
    "flows": {
        "refund_max_age_days": 30,  # a refund may name an original this many business days old
        "preauth_expiry_days": 30,  # a pre-authorization can be completed/cancelled this long
        "completion_tolerance_pct": 15,  # completion may exceed the authorized amount by this
        "batch_max_days": 3,  # an unsettled batch older than this is closed at its next use (77)
    },
    # Merchant terms (host/merchant/operators.py and settlement.py); each can be overridden
    # per merchant with `poshost estate terms set`. fee_rate is a percent in decimal text.
    "merchant": {
        "cycle": "T1",  # T1: paid the next day; D0: paid the same day (d0_fee_rate)
        "fee_rate": "0.60",  # card payments (T1)
        "d0_fee_rate": "0.70",  # card payments (D0)
        "qr_fee_rate": "0.38",  # QR wallet payments (T1)
        "qr_d0_fee_rate": "0.48",  # QR wallet payments (D0)
        "min_payout": 10_000,  # 100.00: a smaller balance carries over to the next run
        "require_operator": False,  # sign-on must name a valid operator + password (63)
        "supervisor_types": [],  # e.g. ["void", "refund"]: these need a supervisor signed on
        # What a secondary terminal may do besides its own sales (docs/tills.md); the master
        # may always void and refund its till group's sales.
        "secondary_may_void_others": False,  # void a sale of another till of its group
        "secondary_may_refund": True,  # refund its own sales
        "secondary_may_refund_others": False,  # refund a sale of another till of the merchant
    },
    # The back-office query API (docs/security/backoffice.md): with `listen` set, `poshost serve`
    # runs it in a child process of its own (also `poshost backoffice`); "" = off.
    "backoffice": {
        "listen": "",
        # Failed authentications one client address, and one token id, may make in a row;
        # then one more per fail_refill_seconds, and 429 + Retry-After (no secret check) meanwhile.
        "fail_burst": 10,
        "fail_refill_seconds": 6.0,
        "nice": 10,  # niceness (0-19) of the child process: the POS event loop gets the CPU first
    },
    # Real-time merchant notifications (host/merchant/webhooks.py; docs/webhooks.md): each
    # final outcome of a merchant with a webhook is POSTed, signed, from the journal's outbox.
    "webhooks": {
        "enabled": True,  # run the delivery worker in `poshost serve`
        "poll_interval": 0.2,  # seconds between looks at the outbox (events go out within it)
        "timeout": 5.0,  # seconds one POST may take, connection included
        "retry_min": 1.0,  # seconds before the first retry; doubled after each failure
        "retry_max": 3600.0,  # at most this long between two attempts
        "give_up_after": 86400.0,  # seconds of failures after which an event is marked failed
        "concurrency": 8,  # deliveries in flight at once
        # Hex of the 32-byte key that seals webhook secrets in the journal; empty: the file
        # <data.dir>/webhook.key, generated on first use (like the PAN fingerprint key).
        "sealing_key": "",
    },
    # QR wallet payments (docs/qr.md). `link` names the wallet link the QR flows use (a link
    # with protocol = "wallet": address, app_id, platform_key = the platform's public key file,
    # key_file = the acquirer's private key, made on first start in the data dir when not set);
    # "" turns QR off (15 to the terminal).
    "qr": {
        "link": "",
        # Seconds a customer-presented payment may take, "user paying" included, before the
        # host gives up: it then cancels at the wallet (store-and-forward) and answers 98.
        "pay_deadline": 20.0,
        "poll_interval": 2.0,  # seconds between queries while the customer confirms
        "order_validity": 120,  # seconds a merchant-presented QR can be paid
        "watch_interval": 5.0,  # seconds between looks at orders past their validity
        # HOST:PORT the host takes the wallet's payment notifications on ("" = none: the
        # terminal's query and the validity watch still complete every order).
        "notify_listen": "",
        "notify_url": "",  # what the wallet is told to call ("" = http://<notify_listen>/...)
        "notify_max_age": 90000,  # seconds: an older notification is refused (replays)
        "organisation": "QRC",  # 63 of a QR answer starts with this instead of the card's
    },
    # Terminal activation (host/merchant/activation.py).
    "activation": {
        "code_ttl": 1800,  # seconds an activation code stays valid
        "max_tries": 5,  # failed attempts (wrong code or serial) that lock a code
    },
    # Sign-on and sign-off protection (host/flow/session_guard.py; docs/security/sign-on.md).
    "security": {
        # Seconds a sign-on's new keys wait for the terminal to prove them (a request MACed
        # under the new MAK); unproven after that they are dropped and the current keys stay.
        "pending_ttl": 86400.0,
        # Sign-ons (and, separately, sign-offs) per terminal: a bucket of `session_burst`
        # tokens, one token back every `session_refill` seconds; excess is refused with 65.
        # 60 and 2 s: a run of the certification suite against a running host (one sign-on per
        # case, 45 cases) fits in the burst; a flood gets 30 a minute per terminal, which
        # costs a key generation each but cannot replace the keys in force.
        "session_burst": 60,
        "session_refill": 2.0,
    },
    # Risk limits (host/merchant/risk.py). Amounts in fen; 0 is off. Per-MCC defaults under
    # [risk.mcc."NNNN"] in the file; per-MCC and per-merchant overrides via `poshost estate
    # limits`. velocity_window in seconds; refund_ratio_pct: month's refunds / month's sales.
    "risk": {
        "enabled": True,
        "min_amount": 1,
        "max_amount": 0,  # off unless configured (per MCC below, or `estate limits`)
        "daily_amount": 0,
        "monthly_amount": 0,
        "velocity_count": 0,
        "velocity_amount": 0,
        "velocity_window": 3600,
        "refund_ratio_pct": 0,
        "reseed": 30.0,  # seconds between re-reads of a merchant's totals from the journal
        "cache_ttl": 5.0,  # seconds a merchant's limit rows are kept before they are read again
        "mcc": {},  # e.g. {"5999" = {monthly_amount = 30000000}}
    },
}

SOURCE_DEFAULT = "default"
_T = TypeVar("_T", bound=AttrsInstance)
# The keys of host.issuer.protocol.PROTOCOLS (a test holds them).
LINK_PROTOCOLS = ("iso8583", "wallet")


# -- the typed sections ----------------------------------------------------------------------
# One frozen class per section, its fields exactly the section's keys in DEFAULTS (a test holds
# them equal), built once by load_settings: code reads ``settings.server.max_per_peer``, an int,
# instead of casting ``settings.get("server.max_per_peer")`` where it is used. The types are
# checked when the file is read, so a wrong one is a one-line error before anything opens.
# Secrets are left out of repr.


@attrs.frozen
class ServerSettings:
    listen: str
    max_connections: int
    max_per_peer: int
    max_frame: int
    first_frame_timeout: float
    idle_timeout: float
    read_timeout: float
    shutdown_grace: float
    workers: int


@attrs.frozen
class DataSettings:
    dir: Path


@attrs.frozen
class JournalSettings:
    url: str = attrs.field(repr=False)  # a PostgreSQL URL may carry a password
    pan_fingerprint_key: str = attrs.field(repr=False)
    commit_delay_ms: float = attrs.field()
    writer: Literal["process", "thread"] = attrs.field()
    durability: Literal["log", "database"] = attrs.field()


@attrs.frozen
class HsmSettings:
    lmk: str = attrs.field(repr=False)
    lmk_components: tuple[str, ...] = attrs.field(repr=False)
    lmk_file: str = attrs.field()
    kind: Literal["soft", "network"] = attrs.field()
    address: str = attrs.field()
    lmk_check_value: str = attrs.field()
    connections: int = attrs.field()
    timeout: float = attrs.field()
    connect_timeout: float = attrs.field()
    breaker_failures: int = attrs.field()
    breaker_cooldown: float = attrs.field()
    single_length_types: tuple[str, ...] = attrs.field()
    legacy_tr31: bool = attrs.field()
    tr31_k0_type: str = attrs.field()


@attrs.frozen
class AcquirerSettings:
    institution_id: str
    name: str
    card_organisation: str
    timezone: str
    cutover: str
    domestic_bins: tuple[str, ...]


@attrs.frozen
class IssuerSettings:
    timeout: float
    echo_interval: float
    reconnect_min: float
    reconnect_max: float
    saf_interval: float


@attrs.frozen
class LinkSettings:
    """One ``[links.NAME]`` table: only ``address`` is required."""

    address: str
    protocol: str = LINK_PROTOCOLS[0]
    zpk: str = attrs.field(default="", repr=False)  # a token under the LMK
    zpk_clear_test_key: str = attrs.field(default="", repr=False)  # TEST ONLY
    timeout: float | None = None  # seconds; None: issuer.timeout
    # A wallet link (protocol = "wallet", docs/qr.md): the acquirer's app id, the platform's
    # public key (a PEM file), the acquirer's private key file ("": made in the data dir on
    # first start), seconds between probes of a down link.
    app_id: str = ""
    platform_key: str = ""
    key_file: str = ""
    probe_interval: float = 5.0


@attrs.frozen
class RouteSettings:
    """One ``[[routes]]`` row: PAN prefix (digits, "" for every PAN) to link name."""

    link: str
    prefix: str = ""


@attrs.frozen
class LogSettings:
    format: Literal["auto", "json", "console"]
    level: str
    dumps: Literal["declines", "all"]


@attrs.frozen
class FlowSettings:
    refund_max_age_days: int
    preauth_expiry_days: int
    completion_tolerance_pct: int
    batch_max_days: int


@attrs.frozen
class MerchantSettings:
    cycle: Literal["T1", "D0"]
    fee_rate: str
    d0_fee_rate: str
    qr_fee_rate: str
    qr_d0_fee_rate: str
    min_payout: int
    require_operator: bool
    supervisor_types: tuple[str, ...]
    secondary_may_void_others: bool
    secondary_may_refund: bool
    secondary_may_refund_others: bool


@attrs.frozen
class BackofficeSettings:
    listen: str
    fail_burst: int
    fail_refill_seconds: float
    nice: int


@attrs.frozen
class WebhooksSettings:
    enabled: bool
    poll_interval: float
    timeout: float
    retry_min: float
    retry_max: float
    give_up_after: float
    concurrency: int
    sealing_key: str = attrs.field(repr=False)


@attrs.frozen
class QrSettings:
    link: str
    pay_deadline: float
    poll_interval: float
    order_validity: int
    watch_interval: float
    notify_listen: str
    notify_url: str
    notify_max_age: int
    organisation: str


@attrs.frozen
class ActivationSettings:
    code_ttl: int
    max_tries: int


@attrs.frozen
class SecuritySettings:
    pending_ttl: float
    session_burst: int
    session_refill: float


@attrs.frozen
class RiskSettings:
    enabled: bool
    min_amount: int
    max_amount: int
    daily_amount: int
    monthly_amount: int
    velocity_count: int
    velocity_amount: int
    velocity_window: int
    refund_ratio_pct: int
    reseed: float
    cache_ttl: float
    mcc: Mapping[str, Mapping[str, int]]  # MCC -> the limits above it overrides

    def limits(self) -> dict[str, int]:
        """The configured limits (every field that is an amount, count, window or ratio)."""
        return {name: getattr(self, name) for name in RISK_LIMITS}


RISK_LIMITS = (
    "min_amount",
    "max_amount",
    "daily_amount",
    "monthly_amount",
    "velocity_count",
    "velocity_amount",
    "velocity_window",
    "refund_ratio_pct",
)
# The typed class of each table section (links and routes are built on their own).
SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "data": DataSettings,
    "journal": JournalSettings,
    "hsm": HsmSettings,
    "acquirer": AcquirerSettings,
    "issuer": IssuerSettings,
    "log": LogSettings,
    "flows": FlowSettings,
    "merchant": MerchantSettings,
    "backoffice": BackofficeSettings,
    "webhooks": WebhooksSettings,
    "qr": QrSettings,
    "activation": ActivationSettings,
    "security": SecuritySettings,
    "risk": RiskSettings,
}


@attrs.frozen
class Settings:
    """The effective configuration: typed sections, plus the plain values they were built from
    and where each leaf came from (``--print-config``)."""

    values: Mapping[str, Any] = attrs.field(repr=False)
    sources: Mapping[str, str] = attrs.field(repr=False)  # "section.key" -> "default" | ...
    server: ServerSettings
    data: DataSettings
    journal: JournalSettings
    hsm: HsmSettings
    acquirer: AcquirerSettings
    issuer: IssuerSettings
    links: Mapping[str, LinkSettings]
    routes: tuple[RouteSettings, ...]
    log: LogSettings
    flows: FlowSettings
    merchant: MerchantSettings
    backoffice: BackofficeSettings
    webhooks: WebhooksSettings
    qr: QrSettings
    activation: ActivationSettings
    security: SecuritySettings
    risk: RiskSettings

    @property
    def data_dir(self) -> Path:
        return self.data.dir

    @property
    def journal_url(self) -> str:
        return self.journal.url or f"sqlite:///{self.data_dir / 'poshost.sqlite'}"

    def link_timeout(self, name: str) -> float:
        """Seconds link ``name`` waits for an answer: its own timeout, else ``issuer.timeout``."""
        own = self.links[name].timeout
        return self.issuer.timeout if own is None else own

    def describe(self) -> list[tuple[str, Any, str]]:
        """Rows of (dotted key, value, source) in a stable order, for --print-config; nested
        tables (``links.sim``) are flattened to their leaves (``links.sim.address``)."""
        rows: list[tuple[str, Any, str]] = []
        for section in sorted(self.values):
            value = self.values[section]
            source = self.sources.get(section, SOURCE_DEFAULT)
            if not isinstance(value, dict):
                rows.append((section, value, source))
                continue
            for key in sorted(value):
                dotted = f"{section}.{key}"
                rows.extend(_leaves(dotted, value[key], self.sources.get(dotted, source)))
        return rows

    def describe_masked(self) -> list[tuple[str, Any, str]]:
        """``describe()`` with every secret shown as ``<set>``: safe to paste into a ticket."""
        return [(key, mask_secret(key, value), source) for key, value, source in self.describe()]


def _leaves(dotted: str, value: Any, source: str) -> list[tuple[str, Any, str]]:
    if isinstance(value, dict) and value:
        return [row for k in sorted(value) for row in _leaves(f"{dotted}.{k}", value[k], source)]
    return [(dotted, value, source)]


SECRET_WORDS = ("lmk", "key", "zpk", "zmk", "tmk", "kek", "password", "secret", "token")


def mask_secret(dotted: str, value: Any) -> Any:
    """``<set>`` for a setting whose last name says it holds key material or a secret, and a
    URL with its password replaced (a PostgreSQL journal URL may carry one)."""
    name = dotted.rsplit(".", 1)[-1].lower()
    if any(word in name for word in SECRET_WORDS):
        return "<set>" if value else value
    if isinstance(value, str) and "://" in value and "@" in value:
        scheme, rest = value.split("://", 1)
        userinfo, _, tail = rest.rpartition("@")
        if ":" in userinfo:
            return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"
    return value


class ConfigError(ValueError):
    """A configuration file or variable that cannot be used; the message names it."""


def _parse_env_value(raw: str, default: Any) -> Any:
    """A variable's text as a TOML value when it parses (numbers, booleans, arrays), else the
    text; for a setting that is text (an institution id of digits, a decimal fee rate) the text
    as written, unless quoted."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    if isinstance(default, str) and not isinstance(value, str):
        return raw
    return value


def config_file(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The config file a command reads: its own --config, else the root command's
    (``poshost --config FILE ...``), else $POSHOST_CONFIG. One answer for every subcommand, so
    `journal list` run from another folder finds the same journal, data dir and LMK as `serve`."""
    if explicit:
        return os.fspath(explicit)
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        root: str | os.PathLike[str] | None = ctx.find_root().params.get("config_path")
        if root:
            return os.fspath(root)
    return os.environ.get("POSHOST_CONFIG") or None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults <- file <- environment <- explicit overrides ("section.key" -> value),
    then build the typed sections. Raises ConfigError naming the first bad setting."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = copy.deepcopy(DEFAULTS)
    sources: dict[str, str] = {}
    if path is not None:
        _merge_file(values, sources, path)
    _merge_environ(values, sources, environ)
    _merge_overrides(values, sources, overrides or {})
    settings = _typed_settings(values, sources)
    _validate(settings)
    return settings


def _merge_file(
    values: dict[str, Any], sources: dict[str, str], path: str | os.PathLike[str]
) -> None:
    """The TOML file over the defaults; a misspelt section or setting is refused by name."""
    try:
        with open(path, "rb") as fh:
            loaded = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    for section, table in loaded.items():
        if section == "routes":
            if not isinstance(table, list):
                raise ConfigError(f"{path}: routes must be an array of tables ([[routes]])")
            values["routes"] = table
            sources["routes"] = f"file:{path}"
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        if section not in values:
            raise ConfigError(f"{path}: unknown section [{section}]{_nearest(section, values)}")
        if section in ("links",):
            # Links are a set the operator defines: the file replaces the default set.
            values[section] = {}
        for key, value in table.items():
            if section == "links":
                _check_link_keys(f"{path}: ", key, value)
            elif key not in values[section]:
                raise ConfigError(
                    f"{path}: unknown setting {section}.{key}{_nearest(key, values[section])}"
                )
            values[section][key] = value
            sources[f"{section}.{key}"] = f"file:{path}"


def _merge_environ(
    values: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str]
) -> None:
    """``POSHOST_SECTION_KEY`` over the file, typed like the default it replaces."""
    for name, raw in environ.items():
        if not name.startswith("POSHOST_"):
            continue
        rest = name[len("POSHOST_") :].lower()
        section, _, key = rest.partition("_")
        if section not in values or not key:
            continue
        if section in ("links", "routes"):
            continue  # structured sections are configured in the file only
        if key not in values[section]:
            raise ConfigError(
                f"{name}: unknown setting {section}.{key}{_nearest(key, values[section])}"
            )
        values[section][key] = _parse_env_value(raw, DEFAULTS[section][key])
        sources[f"{section}.{key}"] = f"env:{name}"


def _merge_overrides(
    values: dict[str, Any], sources: dict[str, str], overrides: Mapping[str, Any]
) -> None:
    """Command-line overrides ("section.key" -> value) over everything else."""
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in values:
            raise ConfigError(f"{dotted}: unknown section{_nearest(section, values)}")
        if not key:
            values[section] = value  # a whole section, e.g. "routes"
        elif section == "links":
            _check_link_keys("", key, value)
            values[section][key] = value
        elif key not in values[section]:
            raise ConfigError(f"unknown setting {dotted}{_nearest(key, values[section])}")
        else:
            values[section][key] = value
        sources[dotted] = "command line"


def _check_link_keys(where: str, name: str, table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}[links.{name}] must be a table")
    valid = attrs.fields_dict(LinkSettings)
    for key in table:
        if key not in valid:
            raise ConfigError(f"{where}unknown setting links.{name}.{key}{_nearest(key, valid)}")


def _typed_settings(values: dict[str, Any], sources: Mapping[str, str]) -> Settings:
    sections: dict[str, Any] = {n: _section(n, cls, values[n]) for n, cls in SECTIONS.items()}
    links = {}
    for name, table in values["links"].items():
        if "address" not in table:
            raise ConfigError(f"links.{name}: missing address")
        links[name] = _section(f"links.{name}", LinkSettings, table)
    if not isinstance(values["routes"], list | tuple):
        raise ConfigError("routes must be an array of tables ([[routes]])")
    routes = []
    for row in values["routes"]:
        if not isinstance(row, dict):
            raise ConfigError(f"routes: {row!r} must be a table with prefix and link")
        routes.append(_section("routes", RouteSettings, row))
    return Settings(values, sources, links=links, routes=tuple(routes), **sections)


def _section(name: str, cls: type[_T], table: Mapping[str, Any]) -> _T:
    """``cls`` from a table of plain values, each checked against its field's type."""
    hints = typing.get_type_hints(cls)
    fields = attrs.fields_dict(cls)
    for key in table:
        if key not in fields:
            raise ConfigError(f"unknown setting {name}.{key}{_nearest(key, fields)}")
    kwargs = {}
    for key, field in fields.items():
        if key in table:
            kwargs[key] = _typed(f"{name}.{key}", hints[key], table[key])
        elif field.default is attrs.NOTHING:
            raise ConfigError(f"{name}: missing {key}")
    return cls(**kwargs)


def _typed(dotted: str, hint: Any, value: Any) -> Any:
    """``value`` as the type ``hint`` names (the few kinds a setting can be), or ConfigError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    if hint is Path and isinstance(value, str):
        return Path(value)
    if origin is Literal and value in args:
        return value
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(_typed(f"{dotted}[{i}]", args[0], item) for i, item in enumerate(value))
    if origin is Mapping and isinstance(value, dict):
        return {str(k): _typed(f"{dotted}.{k}", args[1], v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (arm,) = (a for a in args if a is not type(None))
        return _typed(dotted, arm, value)
    raise ConfigError(f"{dotted} must be {_kind(hint)}, not {mask_secret(dotted, value)!r}")


def _kind(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        return f"a list of {_kind(args[0])}s"
    if origin is Mapping:
        return "a table"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text",
            Path: "a path (text)"}.get(hint, str(hint))  # fmt: skip


def _nearest(name: str, valid: Mapping[str, Any] | Sequence[str]) -> str:
    """``; did you mean "idle_timeout"?`` for a misspelt name, else nothing."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"address must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - operator's explicit choice


def _validate(settings: Settings) -> None:
    """What a type cannot say: addresses, ranges, names that must exist."""
    parse_address(settings.server.listen)
    parse_address(settings.hsm.address)
    for name, link in settings.links.items():
        parse_address(link.address)
        if link.protocol not in LINK_PROTOCOLS:
            known = ", ".join(LINK_PROTOCOLS)
            raise ConfigError(f"links.{name}.protocol: {link.protocol!r} is not one of {known}")
    for route in settings.routes:
        if route.link not in settings.links:
            raise ConfigError(f"routes: link {route.link!r} is not defined in [links]")
        if settings.links[route.link].protocol == "wallet":
            raise ConfigError(f"routes: {route.link!r} is a wallet link: no card routes there")
        if route.prefix and not route.prefix.isdigit():
            raise ConfigError(f"routes: prefix {route.prefix!r} must be digits")
    server = settings.server
    for key in ("max_connections", "max_per_peer", "max_frame", "first_frame_timeout"):
        if getattr(server, key) <= 0:
            raise ConfigError(f"server.{key} must be a positive number")
    if not 1 <= server.workers <= 64:
        raise ConfigError("server.workers must be a whole number from 1 to 64")
    if not 0 <= settings.journal.commit_delay_ms <= 100:
        raise ConfigError("journal.commit_delay_ms must be a number of milliseconds, 0 to 100")
    security = settings.security
    if security.pending_ttl <= 0 or security.session_refill <= 0:
        raise ConfigError("security.pending_ttl and security.session_refill must be > 0")
    if security.session_burst < 1:
        raise ConfigError("security.session_burst must be at least 1")
    for mcc, limits in settings.risk.mcc.items():
        for name in limits:
            if name not in RISK_LIMITS:
                near = _nearest(name, RISK_LIMITS)
                raise ConfigError(f"risk.mcc.{mcc}: unknown limit {name}{near}")
    _validate_qr(settings)
    _validate_backoffice(settings.backoffice)


def _validate_qr(settings: Settings) -> None:
    qr = settings.qr
    if qr.link:
        link = settings.links.get(qr.link)
        if link is None or link.protocol != "wallet":
            raise ConfigError(f'qr.link: {qr.link!r} is not a link with protocol = "wallet"')
    if qr.notify_listen:
        parse_address(qr.notify_listen)
    for key in ("pay_deadline", "poll_interval", "order_validity", "watch_interval"):
        if getattr(qr, key) <= 0:
            raise ConfigError(f"qr.{key} must be a positive number of seconds")
    for name, link in settings.links.items():
        if link.protocol == "wallet" and not link.platform_key:
            raise ConfigError(f"links.{name}: a wallet link needs platform_key (a PEM file)")


def _validate_backoffice(office: BackofficeSettings) -> None:
    if office.listen:
        parse_address(office.listen)
    if office.fail_burst < 1:
        raise ConfigError("backoffice.fail_burst must be a whole number, 1 or more")
    if office.fail_refill_seconds <= 0:
        raise ConfigError("backoffice.fail_refill_seconds must be a positive number of seconds")
    if not 0 <= office.nice <= 19:
        raise ConfigError("backoffice.nice must be 0 to 19")
