"""The HSM as the flows see it: an async interface with two implementations.

``soft``: the software HSM of ``keys/`` inside this process. Its operations take microseconds,
so they run on the event loop directly; a thread hop would cost more than the work.
``network``: a payShield-style HSM over TCP (host/hsm/network.py); an unreachable HSM raises
:class:`HsmUnavailable`, which the steps turn into a 96 instead of waiting.

Both take and return the host's key tokens (keys under the LMK). With ``network`` the host
process never reads the LMK: every key operation, track decryption and the start-up wrapping of
configured TEST keys included, is a command to the HSM (docs/hsm.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import trio

from keys.hsm import DukptSource, SoftHSM
from keys.tokens import KeyToken, KeyType

if TYPE_CHECKING:
    from host.config import Settings
    from host.hsm.network import NetworkHSM


class HsmUnavailable(Exception):
    """The HSM did not answer (down, unreachable, too slow, or the breaker is open).

    Not a ``KeysError``: nothing is wrong with the key or the request, so a MAC that could not
    be checked is not a MAC failure and raises no security event.
    """


class AsyncHSM(Protocol):
    """What the flows await. Tokens in; tokens, blocks, MACs and verdicts out."""

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None: ...
    async def translate_pin(
        self, block: bytes, pan: str, source: KeyToken | DukptSource, dest: KeyToken
    ) -> bytes: ...
    async def generate_mac(self, mak: KeyToken, data: bytes) -> bytes: ...
    async def verify_mac(self, mak: KeyToken, data: bytes, mac: bytes) -> bool: ...
    async def generate_key(self, key_type: KeyType, length: int = 16) -> KeyToken: ...
    async def export_key(self, token: KeyToken, kek: KeyToken) -> tuple[bytes, bytes]: ...
    async def generate_exported(
        self, key_type: KeyType, length: int, kek: KeyToken
    ) -> tuple[KeyToken, bytes, bytes]: ...
    async def decrypt_track(self, tdk: KeyToken, track: str) -> str: ...
    async def check_value(self, token: KeyToken) -> str: ...
    async def diagnostics(self) -> str: ...


class ClearTestKeys(Protocol):
    """Start-up only: wraps the configuration's published clear TEST keys (the demo estate,
    ``links.*.zpk_clear_test_key``). The host drops it once started, so a running host has no
    way to hand a clear key to its HSM."""

    async def import_test_key(self, key_type: KeyType, clear: bytes) -> KeyToken: ...


class SoftAsyncHSM:
    """The in-process software HSM behind the async interface (its public methods only)."""

    def __init__(self, soft: SoftHSM) -> None:
        self.soft = soft

    def __repr__(self) -> str:
        return f"SoftAsyncHSM({self.soft!r})"

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Nothing to run: present so the host starts either kind the same way."""
        task_status.started()

    async def translate_pin(
        self, block: bytes, pan: str, source: KeyToken | DukptSource, dest: KeyToken
    ) -> bytes:
        return self.soft.translate_pin(block, pan, source, dest)

    async def generate_mac(self, mak: KeyToken, data: bytes) -> bytes:
        return self.soft.generate_mac(mak, data)

    async def verify_mac(self, mak: KeyToken, data: bytes, mac: bytes) -> bool:
        return self.soft.verify_mac(mak, data, mac)

    async def generate_key(self, key_type: KeyType, length: int = 16) -> KeyToken:
        return self.soft.generate_key(key_type, length)

    async def export_key(self, token: KeyToken, kek: KeyToken) -> tuple[bytes, bytes]:
        return self.soft.export_key(token, kek)

    async def generate_exported(
        self, key_type: KeyType, length: int, kek: KeyToken
    ) -> tuple[KeyToken, bytes, bytes]:
        token = self.soft.generate_key(key_type, length)
        cryptogram, check_value = self.soft.export_key(token, kek)
        return token, cryptogram, check_value

    async def decrypt_track(self, tdk: KeyToken, track: str) -> str:
        return self.soft.decrypt_track(tdk, track)

    async def check_value(self, token: KeyToken) -> str:
        return self.soft.check_value(token)

    async def diagnostics(self) -> str:
        return self.soft.lmk_check_value


class SoftClearTestKeys:
    """:class:`ClearTestKeys` on a short-lived SoftHSM built for test keys (same LMK)."""

    def __init__(self, soft: SoftHSM) -> None:
        self.soft = soft

    def __repr__(self) -> str:
        return f"SoftClearTestKeys({self.soft!r})"

    async def import_test_key(self, key_type: KeyType, clear: bytes) -> KeyToken:
        return self.soft.import_clear(key_type, clear)


def network_hsm(settings: Settings) -> NetworkHSM:
    """The network HSM client ``[hsm]`` describes (``hsm.kind = "network"``)."""
    from host.config import parse_address
    from host.hsm.network import NetworkHSM

    cfg = settings.hsm
    address, port = parse_address(cfg.address)
    return NetworkHSM(
        address,
        port,
        connections=cfg.connections,
        timeout=cfg.timeout,
        connect_timeout=cfg.connect_timeout,
        breaker_failures=cfg.breaker_failures,
        breaker_cooldown=cfg.breaker_cooldown,
        expected_lmk=cfg.lmk_check_value or None,
    )
