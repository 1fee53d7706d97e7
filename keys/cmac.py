"""CMAC (NIST SP 800-38B) over AES or TDES, for MACs, AES check values and TR-31 KDFs.

Written over :mod:`keys.des` rather than ``Crypto.Hash.CMAC`` so that TDES keys with equal
halves (test keys, K||K) work through the single-DES fallback instead of being refused.
"""

from __future__ import annotations

from Crypto.Cipher import AES

from keys import des
from keys.errors import KeyError_

_RB = {8: 0x1B, 16: 0x87}


def _dbl(block: bytes) -> bytes:
    n = len(block)
    v = int.from_bytes(block, "big") << 1
    if v >> (8 * n):
        v = (v & ((1 << (8 * n)) - 1)) ^ _RB[n]
    return v.to_bytes(n, "big")


def subkeys(ecb: des.Cipher, block_size: int) -> tuple[bytes, bytes]:
    """K1, K2 of SP 800-38B section 6.1, from an ECB cipher object."""
    k1 = _dbl(ecb.encrypt(bytes(block_size)))
    return k1, _dbl(k1)


def _new_cbc(key: bytes, algorithm: str) -> tuple[des.Cipher, des.Cipher, int]:
    if algorithm == "aes":
        if len(key) not in (16, 24, 32):
            raise KeyError_(f"an AES key is 16, 24 or 32 bytes, not {len(key)}")
        return AES.new(key, AES.MODE_ECB), AES.new(key, AES.MODE_CBC, iv=bytes(16)), 16
    if algorithm == "tdes":
        return des.new_ecb(key), des.new_cbc(key), 8
    raise KeyError_(f"unknown CMAC algorithm {algorithm!r} (use 'aes' or 'tdes')")


def cmac(key: bytes, data: bytes, algorithm: str = "aes") -> bytes:
    """Full-length CMAC tag (16 bytes for AES, 8 for TDES); truncate at the caller."""
    ecb, cbc, n = _new_cbc(key, algorithm)
    k1, k2 = subkeys(ecb, n)
    if data and len(data) % n == 0:
        last = des.xor(data[-n:], k1)
        head = data[:-n]
    else:
        full = len(data) - len(data) % n
        tail = data[full:] + b"\x80" + bytes(n - 1 - len(data) % n)
        last = des.xor(tail, k2)
        head = data[:full]
    return cbc.encrypt(head + last)[-n:]
