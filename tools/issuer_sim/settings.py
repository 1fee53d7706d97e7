"""Failure injection: a latency distribution, a drop rate and a disconnect rate.

Latency specs (flags, rules and the control endpoint share them)::

    fixed:50              always 50 ms
    uniform:10-200        uniform between 10 and 200 ms
    normal:50,p99=200     normal-ish: mean 50 ms, 99th percentile 200 ms, never below 0
    0 / "" / none         no delay

JSON form (``GET /settings`` shows it, ``PUT /settings`` accepts it, partially)::

    {"latency": "uniform:10-200", "drop_rate": 0.05, "disconnect_rate": 0.0}
"""

from __future__ import annotations

import random

import attrs

Z99 = 2.3263  # the 99th percentile of the standard normal


@attrs.frozen
class Latency:
    dist: str = "fixed"  # fixed | uniform | normal
    a_ms: float = 0.0  # fixed: the delay; uniform: low; normal: mean
    b_ms: float = 0.0  # uniform: high; normal: p99

    @classmethod
    def parse(cls, spec: str | float | int | None) -> Latency:
        if spec is None:
            return cls()
        if isinstance(spec, int | float):
            return cls("fixed", float(spec))
        s = str(spec).strip().lower()
        if s in ("", "0", "none", "off"):
            return cls()
        dist, _, args = s.partition(":")
        if not args:  # a bare number is a fixed delay in ms
            dist, args = "fixed", dist
        try:
            if dist == "fixed":
                lat = cls("fixed", float(args))
            elif dist == "uniform":
                lo, _, hi = args.partition("-")
                lat = cls("uniform", float(lo), float(hi))
            elif dist == "normal":
                parts = dict(
                    p.split("=", 1) if "=" in p else ("mean", p) for p in args.split(",") if p
                )
                mean = float(parts.get("mean", 0))
                lat = cls("normal", mean, float(parts.get("p99", mean)))
            else:
                raise ValueError(dist)
        except ValueError as e:
            raise ValueError(
                f"bad latency {spec!r}: use fixed:MS, uniform:LO-HI or normal:MEAN,p99=MS"
            ) from e
        if lat.a_ms < 0 or lat.b_ms < 0 or (lat.dist != "fixed" and lat.b_ms < lat.a_ms):
            raise ValueError(f"bad latency {spec!r}: negative or inverted bounds")
        return lat

    def __str__(self) -> str:
        if self.dist == "fixed":
            return f"fixed:{self.a_ms:g}"
        if self.dist == "uniform":
            return f"uniform:{self.a_ms:g}-{self.b_ms:g}"
        return f"normal:{self.a_ms:g},p99={self.b_ms:g}"

    @property
    def is_zero(self) -> bool:
        return self.dist == "fixed" and self.a_ms == 0

    def sample(self, rng: random.Random) -> float:
        """A delay in seconds."""
        if self.dist == "fixed":
            ms = self.a_ms
        elif self.dist == "uniform":
            ms = rng.uniform(self.a_ms, self.b_ms)
        else:
            sigma = (self.b_ms - self.a_ms) / Z99
            ms = max(0.0, rng.gauss(self.a_ms, sigma))
        return ms / 1000.0


def _rate(name: str, value) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
    return v


@attrs.frozen
class FailureSettings:
    latency: Latency = Latency()
    drop_rate: float = 0.0
    disconnect_rate: float = 0.0

    def to_json(self) -> dict:
        return {
            "latency": str(self.latency),
            "drop_rate": self.drop_rate,
            "disconnect_rate": self.disconnect_rate,
        }

    def updated(self, changes: dict) -> FailureSettings:
        """A copy with some values changed; raises ValueError naming a bad key or value."""
        unknown = set(changes) - {"latency", "drop_rate", "disconnect_rate"}
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        new = self
        if "latency" in changes:
            new = attrs.evolve(new, latency=Latency.parse(changes["latency"]))
        for key in ("drop_rate", "disconnect_rate"):
            if key in changes:
                new = attrs.evolve(new, **{key: _rate(key, changes[key])})
        return new
