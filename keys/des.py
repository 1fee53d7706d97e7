"""DES/TDES primitives on pycryptodome, with the K||K single-DES fallback.

pycryptodome refuses TDES keys whose halves are equal because they degenerate to single DES.
Payment test keys (``0123456789ABCDEF0123456789ABCDEF``) and double-length MAKs built from one
DES key are exactly that, so :func:`new_ecb` and :func:`new_cbc` fall back to single DES with
the effective key, which gives the same result as TDES-EDE with the degenerate key.
"""

from __future__ import annotations

from typing import Protocol

from Crypto.Cipher import DES, DES3

from keys.errors import KeyError_

BLOCK = 8

_PARITY = bytes((b & 0xFE) | (0 if bin(b & 0xFE).count("1") % 2 else 1) for b in range(256))


def adjust_parity(key: bytes) -> bytes:
    """Force odd parity on every byte (DES ignores the parity bit; HSMs and KCVs expect it)."""
    return bytes(_PARITY[b] for b in key)


def has_odd_parity(key: bytes) -> bool:
    """True when every byte has an odd number of set bits."""
    return all(_PARITY[b] == b for b in key)


def _check_length(key: bytes) -> None:
    if len(key) not in (8, 16, 24):
        raise KeyError_(f"a DES/TDES key is 8, 16 or 24 bytes, not {len(key)}")


def effective_key(key: bytes) -> bytes:
    """The key pycryptodome should get: a DES key where TDES-EDE degenerates to single DES.

    Halves are compared with parity ignored because DES ignores it too.
    """
    _check_length(key)
    if len(key) == 8:
        return key
    if len(key) == 16:
        k1, k2 = key[:8], key[8:]
        if adjust_parity(k1) == adjust_parity(k2):
            return k1
        return key
    k1, k2, k3 = key[:8], key[8:16], key[16:]
    p1, p2, p3 = adjust_parity(k1), adjust_parity(k2), adjust_parity(k3)
    if p1 == p2:  # E_K3(D_K1(E_K1(x))) == E_K3(x)
        return k3
    if p2 == p3:  # E_K3(D_K3(E_K1(x))) == E_K1(x)
        return k1
    if p1 == p3:  # two-key TDES written out as three keys
        return key[:16]
    return key


class Cipher(Protocol):
    """What keys/ asks of a pycryptodome cipher object (DES, TDES or AES; ECB or CBC): whole
    blocks in, bytes out."""

    def encrypt(self, plaintext: bytes, /) -> bytes: ...
    def decrypt(self, ciphertext: bytes, /) -> bytes: ...


def new_ecb(key: bytes) -> Cipher:
    """An ECB cipher object for a DES/TDES key (reusable: ECB keeps no state)."""
    k = effective_key(key)
    if len(k) == 8:
        return DES.new(k, DES.MODE_ECB)  # noqa: S304 - the standards mandate DES
    return DES3.new(k, DES3.MODE_ECB)


def new_cbc(key: bytes, iv: bytes = bytes(8)) -> Cipher:
    """A CBC cipher object (stateful: one per message)."""
    k = effective_key(key)
    if len(k) == 8:
        return DES.new(k, DES.MODE_CBC, iv=iv)  # noqa: S304 - the standards mandate DES
    return DES3.new(k, DES3.MODE_CBC, iv=iv)


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise KeyError_(f"DES data must be a multiple of 8 bytes, not {len(data)}")


def encrypt_ecb(key: bytes, data: bytes) -> bytes:
    """TDES (or DES) ECB encryption of whole blocks."""
    _check_blocks(data)
    return new_ecb(key).encrypt(data)


def decrypt_ecb(key: bytes, data: bytes) -> bytes:
    """TDES (or DES) ECB decryption of whole blocks."""
    _check_blocks(data)
    return new_ecb(key).decrypt(data)


def encrypt_cbc(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """TDES (or DES) CBC encryption of whole blocks."""
    _check_blocks(data)
    return new_cbc(key, iv).encrypt(data)


def decrypt_cbc(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """TDES (or DES) CBC decryption of whole blocks."""
    _check_blocks(data)
    return new_cbc(key, iv).decrypt(data)


def xor(a: bytes, b: bytes) -> bytes:
    """Bytewise XOR of two equal-length strings."""
    if len(a) != len(b):
        raise ValueError("xor operands differ in length")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")
