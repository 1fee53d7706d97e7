"""Key types and key tokens: how the host holds a key without holding it.

A :class:`KeyToken` is the key wrapped under the LMK (see :mod:`keys.lmk`), its type, its
algorithm and its check value. The type is bound into the wrapping (it is the associated data
of the authenticated encryption), so relabelling a token's type makes it fail to unwrap.
"""

from __future__ import annotations

import enum

import attrs

from keys.errors import (  # re-exported: callers import the errors with KeyToken
    DukptError,
    KeyError_,
    KeysError,
    KeyUsageError,
    MacError,
    PinError,
    TR31Error,
)

__all__ = [
    "Algorithm",
    "DukptError",
    "KeyError_",
    "KeyToken",
    "KeyType",
    "KeyUsageError",
    "KeysError",
    "MacError",
    "PinError",
    "TR31Error",
    "check_key_length",
    "parse_key_type",
]


class Algorithm(enum.Enum):
    """The cipher a key belongs to; a 16-byte key alone does not say TDES or AES."""

    TDES = "T"
    AES = "A"


class KeyType(enum.Enum):
    """What a key may be used for. ``PIK``/``MAK`` are the terminal dialect's names."""

    TMK = "TMK"  # terminal master key: wraps TPK/TAK/TDK for sign-on
    TPK = "TPK"  # terminal PIN key (PIK)
    TAK = "TAK"  # terminal MAC key (MAK)
    TDK = "TDK"  # terminal track/data key
    ZMK = "ZMK"  # zone master key: wraps zone keys on the issuer link
    ZPK = "ZPK"  # zone PIN key
    ZAK = "ZAK"  # zone MAC key
    ZEK = "ZEK"  # zone data encryption key
    PVK = "PVK"  # PIN verification key (Visa PVV)
    BDK = "BDK"  # TDES DUKPT base derivation key
    BDK_AES = "BDK_AES"  # AES DUKPT base derivation key
    IPEK = "IPEK"  # TDES DUKPT initial key
    IK_AES = "IK_AES"  # AES DUKPT initial key
    KEK = "KEK"  # generic key-encryption key (key injection, ceremonies)
    KBPK = "KBPK"  # TR-31 key block protection key

    PIK = "TPK"
    MAK = "TAK"

    @property
    def algorithms(self) -> frozenset[Algorithm]:
        """Algorithms a key of this type may have."""
        return _ALGORITHMS.get(self, frozenset(Algorithm))

    @property
    def default_algorithm(self) -> Algorithm:
        """The algorithm used when a caller does not name one."""
        return Algorithm.AES if self in (KeyType.BDK_AES, KeyType.IK_AES) else Algorithm.TDES


_ALGORITHMS = {
    KeyType.BDK: frozenset({Algorithm.TDES}),
    KeyType.IPEK: frozenset({Algorithm.TDES}),
    KeyType.PVK: frozenset({Algorithm.TDES}),
    KeyType.BDK_AES: frozenset({Algorithm.AES}),
    KeyType.IK_AES: frozenset({Algorithm.AES}),
}

_LENGTHS = {Algorithm.TDES: (8, 16, 24), Algorithm.AES: (16, 24, 32)}


def check_key_length(algorithm: Algorithm, length: int) -> None:
    """Refuse a key length the algorithm does not have."""
    if length not in _LENGTHS[algorithm]:
        allowed = ", ".join(map(str, _LENGTHS[algorithm]))
        raise KeyError_(f"a {algorithm.name} key is {allowed} bytes, not {length}")


def parse_key_type(name: str | KeyType) -> KeyType:
    """A KeyType from its name or an alias (``PIK``, ``mak``...)."""
    if isinstance(name, KeyType):
        return name
    try:
        return KeyType[name.upper()]
    except KeyError:
        raise KeyUsageError(f"unknown key type {name!r}") from None


@attrs.frozen(repr=False)
class KeyToken:
    """A key as the host holds it: wrapped under the LMK, with its type and check value.

    ``repr``/``str`` show the type, algorithm and check value only; the cryptogram is not a
    clear key but there is no reason to spray it into logs either.
    """

    key_type: KeyType
    cryptogram: bytes
    check_value: str
    algorithm: Algorithm = Algorithm.TDES
    exportable: bool = True  # bound into the wrapping too: a TR-31 'N'/'S' key stays inside
    # TR-31 mode of use kept from an imported key block, bound into the wrapping: "" (no
    # restriction beyond the type), "E"/"D" (encrypt/decrypt only), "G"/"V" (generate/verify).
    mode: str = ""

    def __repr__(self) -> str:
        flag = "" if self.exportable else ", non-exportable"
        if self.mode:
            flag += f", mode {self.mode}"
        return (
            f"KeyToken({self.key_type.name}, {self.algorithm.name}, kcv={self.check_value}{flag})"
        )

    __str__ = __repr__

    def to_text(self) -> str:
        """``TYPE:ALG:KCV:CRYPTOGRAM[:N][:M<mode>]`` for a database column or a config file."""
        parts = [
            self.key_type.value,
            self.algorithm.value,
            self.check_value,
            self.cryptogram.hex().upper(),
        ]
        if not self.exportable:
            parts.append("N")
        if self.mode:
            parts.append("M" + self.mode)
        return ":".join(parts)

    @classmethod
    def from_text(cls, text: str) -> KeyToken:
        """Inverse of :meth:`to_text`; authenticity is checked when the HSM first uses it."""
        try:
            parts = text.strip().split(":")
            flags = parts[4:]
            exportable = "N" not in flags
            modes = [f[1:] for f in flags if f.startswith("M") and len(f) == 2]
            if len(flags) != (not exportable) + len(modes) or len(modes) > 1:
                raise ValueError("unknown token flags")
            t, a, kcv, crypt = parts[:4]
            mode = modes[0] if modes else ""
            return cls(
                KeyType(t), bytes.fromhex(crypt), kcv.upper(), Algorithm(a), exportable, mode
            )
        except ValueError:
            raise KeyError_(
                "not a key token text (TYPE:ALG:KCV:CRYPTOGRAM[:N][:M<mode>])"
            ) from None
