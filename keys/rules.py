"""Key-usage rules the software HSM enforces whatever sequence of calls it receives.

They follow the practice of payment HSMs and PCI PIN: each wrapping-key type carries a fixed
set of key types; a key of one type can never come back in as another; a wrapping key is at
least as strong as what it wraps; imported material has odd parity and distinct halves; a
check value is required; a TR-31 mode of use narrows a key to one direction for its whole life.
Refusals are :class:`KeyUsageError` (the request) or :class:`KeyError_` (the material).
"""

from __future__ import annotations

import itertools

from keys import des
from keys.errors import KeyError_, KeyUsageError
from keys.tokens import Algorithm, KeyToken, KeyType

T = KeyType

# ECB export/import: per wrapping-key type, the key types it may carry and the variant byte
# XORed into the first byte of each 8-byte half of the wrapping key for that type (0: the key
# travels under the plain wrapping key, as terminals and zone peers expect). Because one
# wrapping key carries a second type only under its own variant, and every import needs the
# check value, a cryptogram exported as one type does not import as another.
EXPORT_UNDER: dict[KeyType, dict[KeyType, int]] = {
    T.TMK: {T.TPK: 0, T.TAK: 0, T.TDK: 0},  # sign-on field 62
    T.ZMK: {T.ZPK: 0, T.ZAK: 0x22},  # zone key exchange
    T.KEK: {T.TMK: 0, T.ZMK: 0x44},  # terminal activation, zone master key distribution
}
# Nothing is ever imported under a TMK (a terminal never sends keys to the host), and no key
# that may carry PIN keys ever yields a data key by import.
IMPORT_UNDER: dict[KeyType, dict[KeyType, int]] = {
    T.ZMK: {T.ZPK: 0, T.ZAK: 0x22},
    T.KEK: {T.TMK: 0, T.ZMK: 0x44},
}

MIN_CHECK_VALUE = 3  # bytes: the 6 hex digits an HSM prints; field 62 sends 4

# TR-31 mode of use: which modes let a key do each direction of work.
DIRECTIONS = {
    "encrypt": frozenset("BEN"),
    "decrypt": frozenset("BDN"),
    "generate": frozenset("CGN"),
    "verify": frozenset("CVN"),
    "derive": frozenset("XN"),
}
# The restriction a mode of use leaves on a token: "" when it allows both directions.
RESTRICTING_MODES = frozenset("EDGV")

# Security strength in bits (NIST SP 800-57 part 1, table 2); single DES is 56 at best.
_STRENGTH = {
    (Algorithm.TDES, 8): 56,
    (Algorithm.TDES, 16): 80,
    (Algorithm.TDES, 24): 112,
    (Algorithm.AES, 16): 128,
    (Algorithm.AES, 24): 192,
    (Algorithm.AES, 32): 256,
}

NO_PARITY = frozenset({T.IPEK})  # X9.24-1 derives the IPEK without adjusting parity


def strength(algorithm: Algorithm, length: int) -> int:
    """The key's security strength in bits."""
    return _STRENGTH[(algorithm, length)]


def check_strength(wrapper: Algorithm, wrapper_len: int, key: Algorithm, key_len: int) -> None:
    """Refuse to wrap a key under a weaker one: the weaker key would then be the key."""
    if strength(wrapper, wrapper_len) < strength(key, key_len):
        raise KeyUsageError(
            f"a {strength(key, key_len)}-bit key cannot be wrapped under a "
            f"{strength(wrapper, wrapper_len)}-bit key"
        )


def check_direction(token: KeyToken, direction: str, operation: str) -> None:
    """Refuse a use the token's TR-31 mode of use excludes."""
    if token.mode and token.mode not in DIRECTIONS[direction]:
        raise KeyUsageError(
            f"{operation}: the {token.key_type.name} (kcv {token.check_value}) has mode of use "
            f"{token.mode}, which does not allow {direction}"
        )


def check_single_length(
    key_type: KeyType, algorithm: Algorithm, length: int, allowed: frozenset[KeyType]
) -> None:
    """A 56-bit DES key only for the types configured (the terminal dialect's MAK, mode 001)."""
    if algorithm is Algorithm.TDES and length == 8 and key_type not in allowed:
        raise KeyError_(
            f"a single-length (56-bit) {key_type.name} is refused: single-length keys are "
            "configured per key type, for terminals whose key mode needs them"
        )


def check_material(
    key_type: KeyType, algorithm: Algorithm, clear: bytes, *, single_length: frozenset[KeyType]
) -> None:
    """Odd parity, distinct halves, and single-length DES only when configured."""
    if algorithm is not Algorithm.TDES:
        return
    check_single_length(key_type, algorithm, len(clear), single_length)
    if key_type not in NO_PARITY and des.adjust_parity(clear) != clear:
        raise KeyError_(f"the {key_type.name} does not have odd parity")
    halves = [clear[i : i + 8] for i in range(0, len(clear), 8)]
    if any(a == b for a, b in itertools.pairwise(halves)):
        raise KeyError_(
            f"the {key_type.name} has equal adjacent halves: it is a single-length key in disguise"
        )


def variant_key(wrapper: bytes, variant: int) -> bytes:
    """The wrapping key with ``variant`` XORed into the first byte of each 8-byte half."""
    if not variant:
        return wrapper
    out = bytearray(wrapper)
    for i in range(0, len(out), 8):
        out[i] ^= variant
    return bytes(out)


def carried(rules: dict[KeyType, dict[KeyType, int]], wrapper: KeyType, key: KeyType) -> int:
    """The variant for ``key`` under ``wrapper``, or :class:`KeyUsageError` if not carried."""
    allowed = rules.get(wrapper, {})
    if key not in allowed:
        names = "/".join(sorted(t.name for t in allowed)) or "nothing"
        raise KeyUsageError(f"a {wrapper.name} carries {names}, not a {key.name}")
    return allowed[key]
