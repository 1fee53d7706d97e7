"""The emulated terminal's own memory, kept in one JSON file under ``--state``.

A real POS keeps its keys in the PIN pad's secure memory and its batch, STAN counter and
transaction log in flash. The emulator keeps all of that in this file, **keys in clear**: it is
a test device holding TEST keys (the demo profiles' TMKs are published in
specs/demo_estate.toml). Never load a production key into it.

The transaction log holds the clear PAN of each card used, as a terminal's batch does (batch
upload sends it); it is test data too.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import attrs

from keys import dukpt
from specs import demo_estate
from tools.terminal.device import DEMO_INITIAL_KSN, Device

STATE_VERSION = 1
STATE_DIR = Path("var/terminals")  # one file per terminal: var/terminals/<TID>.json
LEGACY_STATE = Path("var/terminal.json")  # the single file of earlier versions


class StateError(ValueError):
    """The state file or profile cannot be used; the message says why."""


@attrs.define
class LogEntry:
    """One transaction in the terminal's own log (its batch)."""

    type: str
    stan: str
    batch: str
    amount: int
    pan: str
    code: str = ""
    status: str = "sent"  # approved, declined, reversed, voided, cancelled, completed, unknown
    rrn: str = ""
    auth_code: str = ""
    date: str = ""  # MMDD the host put in 13 (the original date a void/refund names in 61)
    expiry: str = ""
    original_stan: str = ""  # for voids, cancels, completions: the entry they refer to
    request: str = ""  # hex of the request payload as sent (reversal rebuilds from it)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogEntry:
        known = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _hex(b: bytes | None) -> str | None:
    return b.hex().upper() if b is not None else None


def _unhex(s: str | None) -> bytes | None:
    return bytes.fromhex(s) if s else None


@attrs.define
class TerminalState:
    profile: str
    tid: str
    mid: str
    tmk: bytes = attrs.field(repr=False)
    key_mode: str = "003"
    merchant_name: str = ""
    host: str = "127.0.0.1:8583"
    batch: str = "000001"
    stan: int = 0
    pik: bytes | None = attrs.field(default=None, repr=False)
    mak: bytes | None = attrs.field(default=None, repr=False)
    tdk: bytes | None = attrs.field(default=None, repr=False)
    ipek: bytes | None = attrs.field(default=None, repr=False)
    ksn: bytes | None = None
    domestic_bins: list[str] = attrs.field(factory=lambda: ["62"])
    pending_reversal: dict[str, str] | None = None  # {"request": hex, "reason": "98"}
    log: list[LogEntry] = attrs.field(factory=list)
    history: list[dict[str, Any]] = attrs.field(factory=list)  # settled batches (summary)

    # -- the device view -------------------------------------------------------------------
    def device(self) -> Device:
        return Device(
            self.tid,
            self.mid,
            self.tmk,
            self.key_mode,
            batch=self.batch,
            stan=self.stan,
            pik=self.pik,
            mak=self.mak,
            tdk=self.tdk,
            ipek=self.ipek,
            ksn=self.ksn,
        )

    def absorb(self, device: Device) -> None:
        """Take back what a device changed: counters, keys, batch, KSN."""
        self.stan, self.batch, self.ksn = device.stan, device.batch, device.ksn
        self.pik, self.mak, self.tdk = device.pik, device.mak, device.tdk

    # -- the log ---------------------------------------------------------------------------
    def find(self, stan: str | None = None, types: tuple[str, ...] = ()) -> LogEntry:
        """The log entry with this STAN, else the last approved one of ``types``."""
        for entry in reversed(self.log):
            if stan is not None:
                if entry.stan == f"{int(stan):06d}":
                    return entry
                continue
            if entry.status == "approved" and (not types or entry.type in types):
                return entry
        what = f"STAN {stan}" if stan else f"an approved {' / '.join(types) or 'transaction'}"
        raise StateError(f"no {what} in this terminal's log (batch {self.batch})")

    def is_domestic(self, pan: str) -> bool:
        return any(pan.startswith(p) for p in self.domestic_bins)

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "note": "TEST terminal: keys are held in clear, as in a PIN pad's secure memory",
            "profile": self.profile,
            "tid": self.tid,
            "mid": self.mid,
            "merchant_name": self.merchant_name,
            "host": self.host,
            "key_mode": self.key_mode,
            "batch": self.batch,
            "stan": self.stan,
            "keys": {
                "tmk": _hex(self.tmk),
                "pik": _hex(self.pik),
                "mak": _hex(self.mak),
                "tdk": _hex(self.tdk),
                "ipek": _hex(self.ipek),
                "ksn": _hex(self.ksn),
            },
            "domestic_bins": self.domestic_bins,
            "pending_reversal": self.pending_reversal,
            "log": [e.to_dict() for e in self.log],
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TerminalState:
        if d.get("version") != STATE_VERSION:
            raise StateError(f"state file version {d.get('version')!r}, expected {STATE_VERSION}")
        k = d.get("keys", {})
        return cls(
            profile=d.get("profile", ""),
            tid=d["tid"],
            mid=d["mid"],
            tmk=_unhex(k.get("tmk")) or b"",
            key_mode=d.get("key_mode", "003"),
            merchant_name=d.get("merchant_name", ""),
            host=d.get("host", "127.0.0.1:8583"),
            batch=d.get("batch", "000001"),
            stan=int(d.get("stan", 0)),
            pik=_unhex(k.get("pik")),
            mak=_unhex(k.get("mak")),
            tdk=_unhex(k.get("tdk")),
            ipek=_unhex(k.get("ipek")),
            ksn=_unhex(k.get("ksn")),
            domestic_bins=list(d.get("domestic_bins", ["62"])),
            pending_reversal=d.get("pending_reversal"),
            log=[LogEntry.from_dict(e) for e in d.get("log", [])],
            history=list(d.get("history", [])),
        )

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename), so a crash never leaves half a state."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: Path) -> TerminalState:
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except FileNotFoundError as exc:
            raise StateError(
                f"no terminal state at {path}: initialise it with --profile demo:TID"
            ) from exc
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            raise StateError(f"unreadable terminal state {path}: {exc}") from exc


def state_path_for(tid: str, state_dir: Path = STATE_DIR) -> Path:
    return Path(state_dir) / f"{tid}.json"


def remember_current(tid: str, state_dir: Path = STATE_DIR) -> None:
    """The terminal the next command without --profile talks to (the one last named)."""
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    (Path(state_dir) / "current").write_text(tid + "\n")


def current_state_path(state_dir: Path = STATE_DIR) -> Path:
    """The state file of the terminal last named with --profile. Each terminal has its own
    file, so naming another one never overwrites this one's batch or pending reversal."""
    marker = Path(state_dir) / "current"
    if marker.exists():
        return state_path_for(marker.read_text().strip(), state_dir)
    if LEGACY_STATE.exists():
        return LEGACY_STATE
    raise StateError("no terminal yet: name one with --profile demo:TID (e.g. demo:12345678)")


def merchant_name_of(mid: str) -> str:
    """The merchant's name in the demo estate (what slips print), or "" for another MID."""
    names = {m["mid"]: m["name"] for m in demo_estate().get("merchants", [])}
    return names.get(mid, "")


def from_profile(profile: str, host: str | None = None) -> TerminalState:
    """A fresh terminal from a profile name. ``demo:TID`` takes the TID, MID, key mode, batch
    and TEST TMK (and DUKPT base key, from which the PIN pad's IPEK is derived) of that
    terminal in specs/demo_estate.toml."""
    kind, _, tid = profile.partition(":")
    if kind != "demo" or not tid:
        raise StateError(f"unknown profile {profile!r}: use demo:TID (see specs/demo_estate.toml)")
    estate = demo_estate()
    for t in estate["terminals"]:
        if t["tid"] == tid:
            break
    else:
        known = ", ".join(t["tid"] for t in estate["terminals"])
        raise StateError(f"no demo terminal {tid} (known: {known})")
    names = {m["mid"]: m["name"] for m in estate.get("merchants", [])}
    state = TerminalState(
        profile=profile,
        tid=t["tid"],
        mid=t["mid"],
        tmk=bytes.fromhex(t["tmk_clear_test_key"]),
        key_mode=t["key_mode"] if t["key_mode"] != "dukpt" else "003",
        merchant_name=names.get(t["mid"], ""),
        batch=t.get("batch", "000001"),
    )
    if t.get("bdk_clear_test_key"):
        # The key-injection facility loads the IPEK (never the BDK) into the PIN pad.
        state.ipek = dukpt.derive_ipek(bytes.fromhex(t["bdk_clear_test_key"]), DEMO_INITIAL_KSN)
        state.ksn = DEMO_INITIAL_KSN
    if host:
        state.host = host
    return state
