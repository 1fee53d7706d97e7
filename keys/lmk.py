"""The local master key (LMK) and how tokens are wrapped under it.

Choice: an authenticated key block rather than TDES LMK variants. A key is wrapped with
AES-SIV (RFC 5297) under a 512-bit key derived from the LMK, with the associated data
``poshost-lmk-1|<type>|<algorithm>[|N][|M<mode>]`` (N: non-exportable; M: a TR-31 mode of
use that narrows the key to one direction). So a token's type, algorithm
and exportability are authenticated:
using a ZPK token as a TPK, or editing the type in a stored token, fails to unwrap. SIV is
deterministic, which makes the cryptogram a stable cache key. The LMK itself is an AES key
(16, 24 or 32 bytes); its check value is the AES check value (5 bytes, 10 hex digits).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from Crypto.Cipher import AES

from keys.checkvalue import kcv_aes
from keys.cmac import cmac
from keys.errors import KeyError_, KeyUsageError
from keys.tokens import Algorithm, KeyType

_LABEL = b"poshost-lmk-1"


def generate_lmk(length: int = 32) -> bytes:
    """A fresh random LMK for a new installation."""
    if length not in (16, 24, 32):
        raise KeyError_("an LMK is 16, 24 or 32 bytes")
    return secrets.token_bytes(length)


def xor_components(components: Iterable[bytes | str]) -> bytes:
    """XOR of two or more equal-length components (bytes or hex), as custodians enter them."""
    try:
        parts = [bytes.fromhex(c) if isinstance(c, str) else bytes(c) for c in components]
    except ValueError:
        raise KeyError_("a component is not hex") from None
    if len(parts) < 2:
        raise KeyError_("a key is formed from at least two components")
    if len({len(p) for p in parts}) != 1:
        raise KeyError_("the components differ in length")
    value = 0
    for p in parts:
        value ^= int.from_bytes(p, "big")
    return value.to_bytes(len(parts[0]), "big")


lmk_from_components = xor_components


class LocalMasterKey:
    """Wraps and unwraps key material; holds the only clear copy of the LMK."""

    __slots__ = ("_siv_key", "check_value")

    def __init__(self, lmk: bytes) -> None:
        if len(lmk) not in (16, 24, 32):
            raise KeyError_(f"an LMK is 16, 24 or 32 bytes, not {len(lmk)}")
        # SP 800-108 counter-mode KDF with AES-CMAC, 4 blocks -> AES-256-SIV key.
        self._siv_key = b"".join(
            cmac(lmk, bytes([i]) + _LABEL + b"\x00wrap\x02\x00", "aes") for i in range(1, 5)
        )
        self.check_value = kcv_aes(lmk).hex().upper()

    def __repr__(self) -> str:
        return f"LocalMasterKey(kcv={self.check_value})"

    @staticmethod
    def _ad(key_type: KeyType, algorithm: Algorithm, exportable: bool, mode: str = "") -> bytes:
        parts = [_LABEL, key_type.value.encode(), algorithm.value.encode()]
        if not exportable:
            parts.append(b"N")
        if mode:
            parts.append(b"M" + mode.encode("ascii"))
        return b"|".join(parts)

    def wrap(
        self,
        key_type: KeyType,
        algorithm: Algorithm,
        clear: bytes,
        exportable: bool = True,
        mode: str = "",
    ) -> bytes:
        """Tag (16 bytes) || ciphertext of the clear key, bound to type, algorithm and use."""
        siv = AES.new(self._siv_key, AES.MODE_SIV)
        siv.update(self._ad(key_type, algorithm, exportable, mode))
        ct, tag = siv.encrypt_and_digest(clear)
        return tag + ct

    def unwrap(
        self,
        key_type: KeyType,
        algorithm: Algorithm,
        cryptogram: bytes,
        exportable: bool = True,
        mode: str = "",
    ) -> bytes:
        """The clear key, or :class:`KeyUsageError` if the cryptogram is not of this type."""
        if len(cryptogram) < 17:
            raise KeyUsageError("the token's cryptogram is too short to be a wrapped key")
        siv = AES.new(self._siv_key, AES.MODE_SIV)
        siv.update(self._ad(key_type, algorithm, exportable, mode))
        try:
            return siv.decrypt_and_verify(cryptogram[16:], cryptogram[:16])
        except ValueError:
            raise KeyUsageError(
                f"the token does not unwrap as a {key_type.name} ({algorithm.name}) under this "
                "LMK: wrong type, wrong LMK or an altered token"
            ) from None
