"""wallet-sim's settings: where it listens, its state, its users, its keys and the faults it
injects. The defaults run the demo: state and the platform's key pair under var/wallet-sim/,
the host's public key read from var/wallet_acquirer_public.pem (where `poshost serve` writes
it on first start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from codec.wallet import DEMO_APP_ID  # the acquirer's application id (demo)

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs" / "wallet_sim"


def parse_hostport(s: str) -> tuple[str, int]:
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, not {s!r}")
    return host or "127.0.0.1", int(port)


@attrs.frozen
class Faults:
    """What can be changed while running (control API ``PUT /settings``)."""

    latency_ms: float = 0.0  # added before each gateway answer
    drop_rate: float = 0.0  # share of gateway requests whose answer is lost (effect applied)
    notify_loss: float = 0.0  # share of notifications never delivered at all
    code_ttl: float = 60.0  # seconds a payment code is valid
    user_paying_timeout: float = 120.0  # seconds a payment waits for the password
    notify_retry: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

    def updated(self, changes: dict[str, Any]) -> Faults:
        unknown = set(changes) - {a.name for a in attrs.fields(Faults)}
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = attrs.asdict(self)
        for name, value in changes.items():
            if name == "notify_retry":
                if not isinstance(value, list) or not all(
                    isinstance(v, int | float) and v >= 0 for v in value
                ):
                    raise ValueError("notify_retry is a list of seconds")
                values[name] = tuple(float(v) for v in value)
                continue
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0")
            if name in ("drop_rate", "notify_loss") and value > 1:
                raise ValueError(f"{name} is a share, 0 to 1")
            values[name] = float(value)
        return Faults(**values)

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["notify_retry"] = list(self.notify_retry)
        return data


@attrs.frozen
class WalletSimConfig:
    listen: str = "127.0.0.1:8590"
    control: str | None = "127.0.0.1:8591"
    state: Path = Path("var/wallet-sim/state.sqlite")
    users: Path = SPECS_DIR / "users.toml"
    key_dir: Path = Path("var/wallet-sim")  # platform_private.pem (0600), platform_public.pem
    acquirer_public_key: Path = Path("var/wallet_acquirer_public.pem")
    app_id: str = DEMO_APP_ID
    order_validity: float = 300.0  # default seconds an order's QR can be paid
    timezone: str = "Asia/Shanghai"  # the wallet's calendar day (the bill's day)
    record: Path | None = None
    seed: int | None = None
    faults: Faults = Faults()

    @property
    def platform_private_key(self) -> Path:
        return self.key_dir / "platform_private.pem"

    @property
    def platform_public_key(self) -> Path:
        return self.key_dir / "platform_public.pem"
