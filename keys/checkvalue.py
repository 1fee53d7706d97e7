"""Key check values: how people and peers confirm a key without seeing it.

TDES: encrypt eight zero bytes, keep the first bytes (3 shown to people, 4 in sign-on field
62). AES: the leftmost bytes of the AES-CMAC of a zero block (ANSI X9.24-1:2017 style),
because an AES encryption of zeros is a known-plaintext oracle the CMAC form avoids.
"""

from __future__ import annotations

from keys import des
from keys.cmac import cmac


def kcv(key: bytes, length: int = 3) -> bytes:
    """TDES/DES check value: the first ``length`` bytes of E(key, 00..00)."""
    return des.encrypt_ecb(key, bytes(8))[:length]


def kcv_aes(key: bytes, length: int = 5) -> bytes:
    """AES check value: the first ``length`` bytes of AES-CMAC(key, 16 zero bytes)."""
    return cmac(key, bytes(16), "aes")[:length]


def kcv_hex(key: bytes, algorithm: str = "tdes") -> str:
    """The check value as people read it: 6 hex digits (TDES) or 10 (AES)."""
    if algorithm == "aes":
        return kcv_aes(key).hex().upper()
    return kcv(key).hex().upper()
