"""Simulator configuration: one TOML file; the demo file runs out of the box.

``cards``, ``rules`` and ``script`` are relative to the config file's folder; ``state`` and
``record`` to the current directory (so the demo's state lands in ``./var/``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs

from tools.issuer_sim.settings import FailureSettings

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs" / "issuer_sim"
DEMO_CONFIG = SPECS_DIR / "demo.toml"

# TEST ONLY keys of the demo configuration (also in specs/issuer_sim/demo.toml).
DEMO_KEYS = {
    "lmk": "00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210",
    "zmk": "0123456789ABCDEFFEDCBA9876543210",
    "zpk": "4CA2161637D0133E5E151AEA45DA2A12",
    "pvk": "89ABCDEF0123456776543210FEDCBA98",
}


def parse_hostport(s: str) -> tuple[str, int]:
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, not {s!r}")
    return host or "127.0.0.1", int(port)


KEY_LENGTHS = {"lmk": (32, 64), "zmk": (32, 48), "zpk": (32, 48), "pvk": (32,)}


def check_key(name: str, value: str) -> str:
    """A key given in hex (config or command line); the error never shows the value."""
    value = value.strip()
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"key {name}: not hexadecimal") from None
    if len(value) not in KEY_LENGTHS[name]:
        lengths = " or ".join(str(n) for n in KEY_LENGTHS[name])
        raise ValueError(f"key {name}: {len(value)} hex digits, expected {lengths}")
    return value.upper()


def positive_seconds(value) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(f"frame_timeout must be more than 0 seconds, not {value!r}")
    return seconds


@attrs.frozen
class SimConfig:
    listen: str = "127.0.0.1:9583"
    cards: Path = SPECS_DIR / "cards.toml"
    state: Path = Path("var/issuer_sim.sqlite")
    rules: Path | None = None
    script: Path | None = None
    control: str | None = None
    record: Path | None = None
    keys: dict = attrs.field(factory=lambda: dict(DEMO_KEYS))
    failure: FailureSettings = attrs.field(factory=FailureSettings)
    completion_tolerance_pct: int = 15
    max_frame: int = 4096
    frame_timeout: float = 10.0  # seconds a begun frame may wait for its next byte
    seed: int | None = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> SimConfig:
        path = Path(path) if path is not None else DEMO_CONFIG
        with open(path, "rb") as f:
            data = tomllib.load(f)
        return cls.from_dict(data, base=path.resolve().parent)

    @classmethod
    def from_dict(cls, data: dict, base: Path = SPECS_DIR) -> SimConfig:
        known = {a.name for a in attrs.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(sorted(unknown))}")
        values: dict = {}
        for key in ("listen", "control"):
            if key in data:
                values[key] = str(data[key])
        for key in ("cards", "rules", "script"):
            if data.get(key):
                values[key] = base / data[key]
        for key in ("state", "record"):
            if data.get(key):
                values[key] = Path(data[key])
        if "keys" in data:
            unknown_keys = set(data["keys"]) - set(KEY_LENGTHS)
            if unknown_keys:
                raise ValueError(f"unknown key name(s): {', '.join(sorted(unknown_keys))}")
            given = {k: check_key(k, str(v)) for k, v in data["keys"].items()}
            values["keys"] = {**DEMO_KEYS, **given}
        if "failure" in data:
            values["failure"] = FailureSettings().updated(dict(data["failure"]))
        for key in ("completion_tolerance_pct", "max_frame", "seed"):
            if key in data:
                values[key] = int(data[key])
        if "frame_timeout" in data:
            values["frame_timeout"] = positive_seconds(data["frame_timeout"])
        return cls(**values)

    @classmethod
    def demo(cls, **overrides) -> SimConfig:
        """The demo configuration with some values replaced (tests: state=tmp_path / ...)."""
        config = cls.load(DEMO_CONFIG)
        for key in ("cards", "state", "rules", "script", "record"):
            if overrides.get(key) is not None:
                overrides[key] = Path(overrides[key])
        if isinstance(overrides.get("failure"), dict):
            overrides["failure"] = config.failure.updated(overrides["failure"])
        return attrs.evolve(config, **overrides)
