"""DUKPT: ANSI X9.24-1-2009 (TDES) and ANSI X9.24-3-2017 (AES).

Host-side derivation from a base derivation key (BDK) and the key serial number (KSN) a device
sends. Counter bits are walked most-significant first, as the standards' host algorithms do.
:class:`DukptCache` keeps initial keys and the intermediate keys along counter paths, because
consecutive counters of one device share all but their last steps.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Hashable
from typing import Any

from Crypto.Cipher import AES, DES

from keys import des
from keys.errors import DukptError
from keys.lru import LRU

# ---------------------------------------------------------------------------------------
# TDES DUKPT, ANSI X9.24-1-2009
# ---------------------------------------------------------------------------------------

TDES_KSN_LEN = 10
TDES_COUNTER_BITS = 21
TDES_COUNTER_MASK = (1 << TDES_COUNTER_BITS) - 1
TDES_MAX_ONE_BITS = 10

_C0 = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")
_BDK_MASK = _C0  # the same constant derives the right half of the IPEK

PIN_VARIANT = bytes.fromhex("00000000000000FF00000000000000FF")
MAC_VARIANT = bytes.fromhex("000000000000FF00000000000000FF00")
MAC_RESPONSE_VARIANT = bytes.fromhex("00000000FF00000000000000FF000000")
DATA_VARIANT = bytes.fromhex("0000000000FF00000000000000FF0000")
DATA_RESPONSE_VARIANT = bytes.fromhex("000000FF00000000000000FF00000000")


def _popcount(n: int) -> int:
    return bin(n).count("1")


def _check_counter(counter: int, bits: int, max_ones: int) -> None:
    last = ((1 << max_ones) - 1) << (bits - max_ones)  # the highest usable counter
    if counter == 0:
        raise DukptError("the KSN counter is 0: no transaction key is derived from it")
    if counter > last:
        raise DukptError("the KSN counter is beyond the last usable value: device exhausted")
    if _popcount(counter) > max_ones:
        raise DukptError(f"the KSN counter has more than {max_ones} one bits: refused")


def tdes_ksn(ksn: bytes) -> tuple[int, int]:
    """(KSN register with the counter cleared, counter) of a valid 10-byte TDES KSN."""
    if not isinstance(ksn, bytes | bytearray) or len(ksn) != TDES_KSN_LEN:
        raise DukptError("a TDES DUKPT KSN is 10 bytes")
    value = int.from_bytes(ksn, "big")
    counter = value & TDES_COUNTER_MASK
    _check_counter(counter, TDES_COUNTER_BITS, TDES_MAX_ONE_BITS)
    return value & ~TDES_COUNTER_MASK, counter


def derive_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """The initial PIN encryption key (IPEK) of X9.24-1-2009 A.6 from a BDK and any KSN."""
    if len(bdk) != 16:
        raise DukptError("a TDES DUKPT BDK is 16 bytes")
    if len(ksn) != TDES_KSN_LEN:
        raise DukptError("a TDES DUKPT KSN is 10 bytes")
    iksn = (int.from_bytes(ksn, "big") & ~TDES_COUNTER_MASK).to_bytes(10, "big")[:8]
    left = des.encrypt_ecb(bdk, iksn)
    right = des.encrypt_ecb(des.xor(bdk, _BDK_MASK), iksn)
    return left + right


def _nrkgp(key: bytes, register: bytes) -> bytes:
    """The non-reversible key generation process of X9.24-1-2009 (A.2, 'Non-reversible ...')."""
    kl, kr = key[:8], key[8:]
    r2 = des.xor(_single_des(kl).encrypt(des.xor(register, kr)), kr)
    key2 = des.xor(key, _C0)
    kl, kr = key2[:8], key2[8:]
    r1 = des.xor(_single_des(kl).encrypt(des.xor(register, kr)), kr)
    return r1 + r2


def _single_des(key: bytes) -> Any:
    return DES.new(key, DES.MODE_ECB)  # noqa: S304 - X9.24-1 specifies single DES here


class DukptCache(LRU[bytes]):
    """Bounded LRU of initial keys and counter-path keys, shared by TDES and AES DUKPT."""

    def __init__(self, maxsize: int = 65536) -> None:
        super().__init__(maxsize)


def _path(counter: int, bits: int) -> list[int]:
    """Cumulative counter values, most significant bit first: 0b1010 -> [0b1000, 0b1010]."""
    out, acc = [], 0
    for shift in range(bits - 1, -1, -1):
        bit = 1 << shift
        if counter & bit:
            acc |= bit
            out.append(acc)
    return out


def _walk(
    start: bytes, steps: list[int], step: Any, cache: DukptCache | None, tag: Hashable
) -> bytes:
    """Apply ``step(key, cumulative)`` along ``steps``, reusing and filling ``cache``."""
    key, first = start, 0
    if cache is not None:
        for i in range(len(steps) - 1, -1, -1):
            hit = cache.get((tag, steps[i]))
            if hit is not None:
                key, first = hit, i + 1
                break
    for cumulative in steps[first:]:
        key = step(key, cumulative)
        if cache is not None:
            cache.put((tag, cumulative), key)
    return key


def _key_id(key: bytes) -> bytes:
    """A cache identity for a key given in clear: its digest, so no cache key holds the key."""
    return hashlib.sha256(b"poshost-dukpt-cache|" + key).digest()[:16]


def derive_transaction_key(
    ipek: bytes,
    ksn: bytes,
    *,
    cache: DukptCache | None = None,
    cache_id: Hashable | None = None,
) -> bytes:
    """The transaction ('current') key for a KSN from its IPEK, X9.24-1-2009 A.2/A.3.

    ``cache_id`` names the IPEK and KSN base in the cache (an HSM passes the BDK token's
    identity); without it a digest of the IPEK is used.
    """
    if len(ipek) != 16:
        raise DukptError("a TDES DUKPT IPEK is 16 bytes")
    base, counter = tdes_ksn(ksn)
    base8 = base & ((1 << 64) - 1)

    def step(key: bytes, cumulative: int) -> bytes:
        return _nrkgp(key, (base8 | cumulative).to_bytes(8, "big"))

    tag = ("T", cache_id) if cache_id is not None else ("T", _key_id(ipek), base8)
    return _walk(ipek, _path(counter, TDES_COUNTER_BITS), step, cache, tag)


def pin_key(transaction_key: bytes) -> bytes:
    """PIN encryption key: the PIN variant of the transaction key."""
    return des.xor(transaction_key, PIN_VARIANT)


def mac_key(transaction_key: bytes) -> bytes:
    """MAC key (request, or both ways): the MAC variant of the transaction key."""
    return des.xor(transaction_key, MAC_VARIANT)


def mac_response_key(transaction_key: bytes) -> bytes:
    """MAC key for responses: the response MAC variant."""
    return des.xor(transaction_key, MAC_RESPONSE_VARIANT)


def data_variant(transaction_key: bytes) -> bytes:
    """The bare data (request) variant; what many device documents call the data key."""
    return des.xor(transaction_key, DATA_VARIANT)


def data_response_variant(transaction_key: bytes) -> bytes:
    """The bare data response variant."""
    return des.xor(transaction_key, DATA_RESPONSE_VARIANT)


def data_key_2009(transaction_key: bytes, *, response: bool = False) -> bytes:
    """The X9.24-1-2009 data encryption key: the data variant encrypted, half by half, by itself.

    This one-way step is in the 2009 text (A.4.1, figure A-2) and absent from older device
    documents; :func:`data_variant` gives the bare variant for those.
    """
    v = data_response_variant(transaction_key) if response else data_variant(transaction_key)
    ecb = des.new_ecb(v)
    return ecb.encrypt(v[:8]) + ecb.encrypt(v[8:])


# ---------------------------------------------------------------------------------------
# AES DUKPT, ANSI X9.24-3-2017
# ---------------------------------------------------------------------------------------

AES_KSN_LEN = 12
AES_COUNTER_BITS = 32
AES_MAX_ONE_BITS = 16


class DerivedKeyType(enum.Enum):
    """Key types of X9.24-3-2017 (6.2.1, 6.2.2): (algorithm indicator, length in bits).

    The HMAC keys share one algorithm indicator (0005) and differ by length; like every
    working key they may not be longer than the derivation key (6.1.3).
    """

    TDES2 = (0x0000, 128)
    TDES3 = (0x0001, 192)
    AES128 = (0x0002, 128)
    AES192 = (0x0003, 192)
    AES256 = (0x0004, 256)
    HMAC128 = (0x0005, 128)
    HMAC192 = (0x0005, 192)
    HMAC256 = (0x0005, 256)

    @property
    def indicator(self) -> int:
        return self.value[0]

    @property
    def bits(self) -> int:
        return self.value[1]

    @classmethod
    def for_aes_key(cls, key: bytes) -> DerivedKeyType:
        try:
            return {16: cls.AES128, 24: cls.AES192, 32: cls.AES256}[len(key)]
        except KeyError:
            raise DukptError("an AES DUKPT key is 16, 24 or 32 bytes") from None


class KeyUsage(enum.IntEnum):
    """Key usage indicators of X9.24-3-2017 table 2."""

    KEY_ENCRYPTION_KEY = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH_WAYS = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH_WAYS = 0x3002
    KEY_DERIVATION = 0x8000
    KEY_DERIVATION_INITIAL_KEY = 0x8001


def aes_ksn(ksn: bytes) -> tuple[bytes, int]:
    """(initial key ID, counter) of a valid 12-byte AES DUKPT KSN."""
    if not isinstance(ksn, bytes | bytearray) or len(ksn) != AES_KSN_LEN:
        raise DukptError("an AES DUKPT KSN is 12 bytes")
    counter = int.from_bytes(ksn[8:], "big")
    _check_counter(counter, AES_COUNTER_BITS, AES_MAX_ONE_BITS)
    return bytes(ksn[:8]), counter


def _derivation_data(usage: int, key_type: DerivedKeyType, tail: bytes) -> bytes:
    """Table 4 layout: version 01, block counter, usage, algorithm, length, 8 bytes of data."""
    return (
        b"\x01\x01"
        + usage.to_bytes(2, "big")
        + key_type.indicator.to_bytes(2, "big")
        + key_type.bits.to_bytes(2, "big")
        + tail
    )


def _aes_derive(ecb: Any, data: bytes, key_type: DerivedKeyType) -> bytes:
    """Derive a key: AES-ECB of the data with block counter 1, 2... truncated to the length."""
    out = b""
    for i in range(1, (key_type.bits + 127) // 128 + 1):
        out += ecb.encrypt(data[:1] + bytes([i]) + data[2:])
    return out[: key_type.bits // 8]


def derive_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """The device's initial key from the BDK and the 8-byte initial key ID (X9.24-3-2017 6.3.3)."""
    kt = DerivedKeyType.for_aes_key(bdk)
    if len(initial_key_id) != 8:
        raise DukptError("an AES DUKPT initial key ID is 8 bytes")
    data = _derivation_data(KeyUsage.KEY_DERIVATION_INITIAL_KEY, kt, bytes(initial_key_id))
    return _aes_derive(AES.new(bdk, AES.MODE_ECB), data, kt)


def derive_aes_derivation_key(
    initial_key: bytes,
    ksn: bytes,
    *,
    cache: DukptCache | None = None,
    cache_id: Hashable | None = None,
) -> bytes:
    """The intermediate derivation key for a KSN's counter (X9.24-3-2017 6.3.5, host side)."""
    kt = DerivedKeyType.for_aes_key(initial_key)
    ikid, counter = aes_ksn(ksn)
    tail4 = ikid[4:]

    def step(key: bytes, cumulative: int) -> bytes:
        data = _derivation_data(KeyUsage.KEY_DERIVATION, kt, tail4 + cumulative.to_bytes(4, "big"))
        return _aes_derive(AES.new(key, AES.MODE_ECB), data, kt)

    tag = ("A", cache_id) if cache_id is not None else ("A", _key_id(initial_key), ikid)
    return _walk(initial_key, _path(counter, AES_COUNTER_BITS), step, cache, tag)


def derive_working_key(
    derivation_key: bytes, ksn: bytes, usage: KeyUsage, key_type: DerivedKeyType
) -> bytes:
    """A working key (PIN, MAC, data, KEK) from the KSN's derivation key."""
    kt = DerivedKeyType.for_aes_key(derivation_key)
    if key_type.bits > kt.bits:
        raise DukptError("a working key cannot be longer than the key it is derived from")
    ikid, counter = aes_ksn(ksn)
    data = _derivation_data(usage, key_type, ikid[4:] + counter.to_bytes(4, "big"))
    return _aes_derive(AES.new(derivation_key, AES.MODE_ECB), data, key_type)


def host_derive_working_key(
    bdk: bytes,
    ksn: bytes,
    usage: KeyUsage,
    key_type: DerivedKeyType,
    *,
    cache: DukptCache | None = None,
) -> bytes:
    """BDK + KSN -> working key, the host algorithm of X9.24-3-2017 (6.5)."""
    ikid, _ = aes_ksn(ksn)
    ik = derive_initial_key(bdk, ikid)
    return derive_working_key(derive_aes_derivation_key(ik, ksn, cache=cache), ksn, usage, key_type)
