"""Message authentication codes of the two dialects and of the standards behind them.

Each MAC exists twice: a pure function taking clear key bytes (for a terminal or a test) and a
``*_with`` form taking prepared cipher objects, which :class:`keys.hsm.SoftHSM` calls with
ciphers cached per key, since building a pycryptodome cipher costs more than the MAC itself.
"""

from __future__ import annotations

import hmac
import struct
import threading
from collections.abc import Callable
from functools import reduce
from operator import xor as _ixor

from keys import des
from keys.cmac import cmac as _cmac
from keys.errors import MacError

Encrypt = Callable[[bytes], bytes]


def pad(data: bytes, method: int = 1, block: int = 8) -> bytes:
    """ISO 9797-1 padding method 1 (zeros) or 2 (0x80 then zeros).

    Method 1 pads an empty message to one zero block, as the standard asks for a positive
    multiple of the block length.
    """
    if method == 1:
        if data and len(data) % block == 0:
            return data
        return data + bytes(block - len(data) % block)
    if method == 2:
        data = data + b"\x80"
        return data + bytes(-len(data) % block)
    raise MacError(f"unsupported ISO 9797-1 padding method {method!r}")


def xor_blocks(data: bytes) -> bytes:
    """Zero-pad to a multiple of 8 and XOR all 8-byte blocks (the UnionPay MAC's first step)."""
    data = data + bytes(-len(data) % 8)
    if not data:
        return bytes(8)
    words: tuple[int, ...] = struct.unpack(f">{len(data) // 8}Q", data)
    folded: int = reduce(_ixor, words)
    return folded.to_bytes(8, "big")


# --- UnionPay ECB MAC (docs/terminal-dialect.md, "Keys, MAC, PIN") -----------------------------


def unionpay_ecb_mac_with(encrypt: Encrypt, data: bytes) -> bytes:
    """The UnionPay ECB MAC given the MAK's block-encrypt function."""
    h = xor_blocks(data).hex().upper().encode("ascii")
    r = encrypt(h[:8])
    r = encrypt(des.xor(r, h[8:]))
    return r.hex().upper()[:8].encode("ascii")


def unionpay_ecb_mac_chained(chain: ChainedCbc, data: bytes) -> bytes:
    """The same MAC in one cipher call: E(E(h1) xor h2) is the last block of a zero-IV CBC over
    h1 || h2 (the SoftHSM's hot path: a MAC verified and one generated per purchase)."""
    h = xor_blocks(data).hex().upper().encode("ascii")
    return chain.mac(h).hex().upper()[:8].encode("ascii")


def unionpay_ecb_mac(key: bytes, data: bytes) -> bytes:
    """Field 64 of the terminal dialect: 8 ASCII upper-case hex characters.

    The MAK is single DES (8 bytes) or TDES (16/24 bytes; K||K falls back to single DES).
    """
    if len(key) not in (8, 16, 24):
        raise MacError("the UnionPay ECB MAC needs an 8, 16 or 24 byte MAK")
    return unionpay_ecb_mac_with(des.new_ecb(key).encrypt, data)


# --- ISO 9797-1 algorithms 1 and 3 (ANSI X9.9 / X9.19) -----------------------------------


class ChainedCbc:
    """CBC-MAC over one long-lived CBC cipher object, so no cipher is built per message.

    pycryptodome's CBC object keeps the last ciphertext block as its chaining value between
    calls; XORing that value into the first block of the next message cancels it, which gives
    a CBC with a zero IV. A lock keeps the (object, last block) pair consistent across threads.
    """

    def __init__(self, key: bytes) -> None:
        self._cbc = des.new_cbc(key)
        self._last = bytes(8)
        self._lock = threading.Lock()

    def mac(self, padded: bytes) -> bytes:
        """The last block of CBC(key, IV=0, padded); ``padded`` is whole blocks, non-empty."""
        with self._lock:
            first = des.xor(padded[:8], self._last)
            out = self._cbc.encrypt(first + padded[8:])
            self._last = out[-8:]
            return self._last


def iso9797_alg1_with(chain: ChainedCbc, data: bytes, padding: int = 1) -> bytes:
    """ISO 9797-1 MAC algorithm 1 (CBC-MAC; ANSI X9.9 with a DES key), 8 bytes."""
    return chain.mac(pad(data, padding))


def iso9797_alg1(key: bytes, data: bytes, padding: int = 1) -> bytes:
    """ISO 9797-1 MAC algorithm 1 with a DES or TDES key; the full 8-byte MAC."""
    if len(key) not in (8, 16, 24):
        raise MacError("ISO 9797-1 algorithm 1 needs an 8, 16 or 24 byte key")
    return iso9797_alg1_with(ChainedCbc(key), data, padding)


def x919_with(
    chain_k1: ChainedCbc | None, final_ecb: des.Cipher, data: bytes, padding: int = 1
) -> bytes:
    """ISO 9797-1 algorithm 3 given a CBC chain under K and a TDES(K, K') ECB cipher.

    The last block goes through E_K(D_K'(E_K(x))), i.e. one TDES-EDE encryption, after the
    blocks before it were chained under single-DES K.
    """
    p = pad(data, padding)
    if len(p) > 8:
        assert chain_k1 is not None
        h = chain_k1.mac(p[:-8])
        return final_ecb.encrypt(des.xor(h, p[-8:]))
    return final_ecb.encrypt(p)


def x919_mac(key: bytes, data: bytes, padding: int = 1) -> bytes:
    """ANSI X9.19 retail MAC (ISO 9797-1 algorithm 3, DES) with a double-length key; 8 bytes."""
    if len(key) != 16:
        raise MacError("the X9.19 MAC needs a 16-byte (double-length) key")
    return x919_with(ChainedCbc(key[:8]), des.new_ecb(key), data, padding)


# --- CMAC -----------------------------------------------------------------------------


def cmac(key: bytes, data: bytes, algorithm: str = "aes") -> bytes:
    """AES-CMAC (16 bytes) or TDES-CMAC (8 bytes), NIST SP 800-38B; truncate at the caller."""
    try:
        return _cmac(key, data, algorithm)
    except ValueError as exc:
        raise MacError(str(exc)) from None


def verify(expected: bytes, received: bytes) -> bool:
    """Constant-time comparison, so timing does not reveal how many MAC bytes matched."""
    return hmac.compare_digest(expected, received)
