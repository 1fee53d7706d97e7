"""The simulator's keys, held as tokens in a keys.hsm.SoftHSM: ZMK, current ZPK, PVK.

PIN blocks arrive under the ZPK (ISO 9564 format 0); the SoftHSM decrypts them and compares the
Visa PVV inside, so no clear PIN leaves it. Key exchange (0800, 70 = 101) replaces the ZPK with
one sent under the ZMK when its check value matches. The ZPK lives in memory: a restarted
simulator starts again from the configured ZPK.
"""

from __future__ import annotations

from keys.errors import KeysError
from keys.hsm import SoftHSM
from keys.tokens import KeyType


class IssuerKeys:
    def __init__(self, keys: dict[str, str]):
        self.hsm = SoftHSM.from_hex(keys["lmk"], clear_test_keys=True)  # a simulator's test keys
        self.zmk = self.hsm.import_clear(KeyType.ZMK, bytes.fromhex(keys["zmk"]))
        self.zpk = self.hsm.import_clear(KeyType.ZPK, bytes.fromhex(keys["zpk"]))
        self.pvk = self.hsm.import_clear(KeyType.PVK, bytes.fromhex(keys["pvk"]))

    def verify_pin(self, block: bytes | None, pan: str, pvki: int, pvv: str) -> bool:
        """True when the PIN block (under the current ZPK) holds the PIN behind ``pvv``. An
        undecipherable block counts as a wrong PIN, as it would at a real issuer."""
        if not isinstance(block, bytes) or len(block) != 8:
            return False
        try:
            return self.hsm.verify_pin_pvv(self.zpk, block, pan, pvv, self.pvk, pvki)
        except KeysError:
            return False

    def generate_pvv(self, pan: str, pin: str, pvki: int = 1) -> str:
        return self.hsm.generate_pvv(self.pvk, pan, pin, pvki)

    def exchange_zpk(self, cryptogram_hex: str, kcv_hex: str) -> bool:
        """Adopt a new ZPK sent under the ZMK; False (ZPK unchanged) when it does not check."""
        try:
            token = self.hsm.import_key(
                KeyType.ZPK, bytes.fromhex(cryptogram_hex), self.zmk, bytes.fromhex(kcv_hex)
            )
        except (KeysError, ValueError):
            return False
        self.zpk = token
        return True

    @property
    def zpk_check_value(self) -> str:
        return self.zpk.check_value
