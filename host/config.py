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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

DEFAULTS: dict[str, dict[str, Any]] = {
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
        # TCP at `address` holding the same LMK (e.g. `poshost hsm-sim`; docs/hsm.md).
        "kind": "soft",
        "address": "127.0.0.1:1500",
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
        "fee_rate": "0.60",
        "d0_fee_rate": "0.70",
        "min_payout": 10_000,  # 100.00: a smaller balance carries over to the next run
        "require_operator": False,  # sign-on must name a valid operator + password (63)
        "supervisor_types": [],  # e.g. ["void", "refund"]: these need a supervisor signed on
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
        "mcc": {},  # e.g. {"5999" = {monthly_amount = 30000000}}
    },
}

SOURCE_DEFAULT = "default"
LINK_PROTOCOLS = ("iso8583",)  # the keys of host.issuer.protocol.PROTOCOLS (a test holds them)


@attrs.frozen
class Settings:
    """The effective configuration: nested plain values plus where each leaf came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]  # "section.key" -> "default" | "file:<path>" | "env:<NAME>"

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return self.values[section]

    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.values[section][key]

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data"]["dir"])

    @property
    def journal_url(self) -> str:
        return self.values["journal"]["url"] or f"sqlite:///{self.data_dir / 'poshost.sqlite'}"

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


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def config_file(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The config file a command reads: its own --config, else the root command's
    (``poshost --config FILE ...``), else $POSHOST_CONFIG. One answer for every subcommand, so
    `journal list` run from another folder finds the same journal, data dir and LMK as `serve`."""
    if explicit:
        return os.fspath(explicit)
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        root = ctx.find_root().params.get("config_path")
        if root:
            return os.fspath(root)
    return os.environ.get("POSHOST_CONFIG") or None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults <- file <- environment <- explicit overrides ("section.key" -> value)."""
    environ = os.environ if environ is None else environ
    values = copy.deepcopy(DEFAULTS)
    sources: dict[str, str] = {}

    if path is not None:
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
                if section != "links" and key not in values[section]:
                    raise ConfigError(
                        f"{path}: unknown setting {section}.{key}{_nearest(key, values[section])}"
                    )
                values[section][key] = value
                sources[f"{section}.{key}"] = f"file:{path}"

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
        values[section][key] = _parse_env_value(raw)
        sources[f"{section}.{key}"] = f"env:{name}"

    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if key:
            values.setdefault(section, {})[key] = value
        else:
            values[section] = value  # a whole section, e.g. "routes"
        sources[dotted] = "command line"

    _validate(values)
    return Settings(values=values, sources=sources)


def _nearest(name: str, valid: Mapping[str, Any]) -> str:
    """``; did you mean "idle_timeout"?`` for a misspelt name, else nothing."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"address must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - operator's explicit choice


def _validate(values: Mapping[str, Any]) -> None:
    parse_address(values["server"]["listen"])
    if values["hsm"]["kind"] not in ("soft", "network"):
        raise ConfigError(f'hsm.kind must be "soft" or "network", not {values["hsm"]["kind"]!r}')
    parse_address(values["hsm"]["address"])
    for name, link in values["links"].items():
        if "address" not in link:
            raise ConfigError(f"links.{name}: missing address")
        parse_address(link["address"])
        protocol = link.get("protocol", LINK_PROTOCOLS[0])
        if protocol not in LINK_PROTOCOLS:
            raise ConfigError(
                f"links.{name}.protocol: {protocol!r} is not one of {', '.join(LINK_PROTOCOLS)}"
            )
    for route in values["routes"]:
        if route.get("link") not in values["links"]:
            raise ConfigError(f"routes: link {route.get('link')!r} is not defined in [links]")
        if not str(route.get("prefix", "")).isdigit() and route.get("prefix", "") != "":
            raise ConfigError(f"routes: prefix {route.get('prefix')!r} must be digits")
    workers = values["server"]["workers"]
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        raise ConfigError("server.workers must be a whole number from 1 to 64")
    for key in ("max_connections", "max_per_peer", "max_frame", "first_frame_timeout"):
        try:
            positive = float(values["server"][key]) > 0
        except (TypeError, ValueError):
            positive = False
        if not positive:
            raise ConfigError(f"server.{key} must be a positive number")
    delay = values["journal"]["commit_delay_ms"]
    if not isinstance(delay, int | float) or not 0 <= delay <= 100:
        raise ConfigError("journal.commit_delay_ms must be a number of milliseconds, 0 to 100")
    security = values["security"]
    if float(security["pending_ttl"]) <= 0 or float(security["session_refill"]) <= 0:
        raise ConfigError("security.pending_ttl and security.session_refill must be > 0")
    if int(security["session_burst"]) < 1:
        raise ConfigError("security.session_burst must be at least 1")
    if values["log"]["dumps"] not in ("declines", "all"):
        raise ConfigError('log.dumps must be "declines" or "all"')
    if values["journal"]["writer"] not in ("process", "thread"):
        raise ConfigError('journal.writer must be "process" or "thread"')
    if values["journal"]["durability"] not in ("log", "database"):
        raise ConfigError('journal.durability must be "log" or "database"')
    _validate_backoffice(values["backoffice"])


def _validate_backoffice(office: Mapping[str, Any]) -> None:
    if office["listen"]:
        parse_address(office["listen"])
    if not isinstance(office["fail_burst"], int) or office["fail_burst"] < 1:
        raise ConfigError("backoffice.fail_burst must be a whole number, 1 or more")
    refill = office["fail_refill_seconds"]
    if not isinstance(refill, int | float) or refill <= 0:
        raise ConfigError("backoffice.fail_refill_seconds must be a positive number of seconds")
    if not isinstance(office["nice"], int) or not 0 <= office["nice"] <= 19:
        raise ConfigError("backoffice.nice must be 0 to 19")
