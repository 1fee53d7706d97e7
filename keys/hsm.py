"""The HSM interface and the embedded software HSM.

The host holds :class:`KeyToken` values only; every operation that needs a clear key is a
method here, and only translated PIN blocks, MACs, verdicts and key cryptograms under other
keys leave. A payShield-style adapter can implement :class:`HSM` with the same signatures.

Performance: building a pycryptodome cipher costs more than using it, so :class:`SoftHSM`
keeps one prepared engine per token and a DUKPT cache of initial keys and counter-path keys.
Both caches are keyed by token identity (a digest of the token text) and KSN, never by clear
key bytes. The usage rules live in :mod:`keys.rules`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import attrs
from Crypto.Cipher import AES

from keys import des, dukpt, pinblock, rules, tr31
from keys import mac as macs
from keys.checkvalue import kcv, kcv_aes
from keys.errors import KeyError_, KeysError, KeyUsageError, MacError, PinError
from keys.lmk import LocalMasterKey, generate_lmk, xor_components
from keys.lru import LRU
from keys.tokens import Algorithm, KeyToken, KeyType, check_key_length

T = KeyType

MAC_KEYS = frozenset({T.TAK, T.ZAK})
PIN_SOURCE_KEYS = frozenset({T.TPK, T.ZPK})
PIN_DEST_KEYS = frozenset({T.ZPK})
DUKPT_BASE_KEYS = frozenset({T.BDK, T.BDK_AES})

# Which key-encryption key may carry which key across the boundary (see keys.rules).
EXPORT_RULES: dict[KeyType, frozenset[KeyType]] = {
    k: frozenset(v) for k, v in rules.EXPORT_UNDER.items()
}
IMPORT_RULES: dict[KeyType, frozenset[KeyType]] = {
    k: frozenset(v) for k, v in rules.IMPORT_UNDER.items()
}
# The key types a K0 (key-encryption) block may become; the block itself must say which.
K0_TYPES = frozenset({T.TMK, T.ZMK, T.KEK})
TR31_TYPE_BLOCK = "10"  # proprietary optional block (numeric ID, X9.143): the poshost key type

# TR-31 key usage of each key type, and the mode of use given when exporting.
TR31_USAGE: dict[KeyType, str] = {
    T.TMK: "K0",
    T.ZMK: "K0",
    T.KEK: "K0",
    T.KBPK: "K1",
    T.TPK: "P0",
    T.ZPK: "P0",
    T.TAK: "M3",
    T.ZAK: "M3",
    T.TDK: "D0",
    T.ZEK: "D0",
    T.PVK: "V2",
    T.BDK: "B0",
    T.BDK_AES: "B0",
    T.IPEK: "B1",
    T.IK_AES: "B1",
}
TR31_DEFAULT_MODE = {
    "K0": "B",
    "K1": "B",
    "P0": "B",
    "D0": "B",
    "M3": "C",
    "V2": "C",
    "B0": "X",
    "B1": "X",
}

MAC_ALGORITHMS = {
    "unionpay_ecb": "unionpay_ecb",
    "unionpay": "unionpay_ecb",
    "x9.19": "x9.19",
    "x919": "x9.19",
    "iso9797-1-3": "x9.19",
    "x9.9": "x9.9",
    "x99": "x9.9",
    "iso9797-1-1": "x9.9",
    "cmac": "cmac",
}


_W = dukpt.DerivedKeyType
# The AES DUKPT working keys that may encipher PIN blocks: TDEA keys for 8-byte formats 0/1/3,
# AES keys for format 4 (X9.24-3-2017 6.2.1; an HMAC key is never a PIN key).
TDEA_WORKING_KEYS = frozenset({_W.TDES2, _W.TDES3})
PIN_WORKING_KEYS = TDEA_WORKING_KEYS | {_W.AES128, _W.AES192, _W.AES256}


def pin_working_key(name: str) -> dukpt.DerivedKeyType:
    """The AES DUKPT PIN working key type named ``name`` (``AES128``, ``TDES2``...)."""
    try:
        wkt = dukpt.DerivedKeyType[str(name).upper()]
    except KeyError:
        raise KeyUsageError(f"unknown AES DUKPT working key type {name!r}") from None
    if wkt not in PIN_WORKING_KEYS:
        raise KeyUsageError(f"an AES DUKPT {wkt.name} key does not encipher PIN blocks")
    return wkt


@attrs.frozen
class DukptSource:
    """A PIN block's source key given as DUKPT: the BDK token and the device's KSN.

    ``fmt`` is the PIN block format the device used (default 0 for TDES DUKPT and for AES
    DUKPT with a TDEA working key, 4 for AES DUKPT with an AES working key).
    ``working_key`` names the AES DUKPT PIN key type of X9.24-3-2017 6.2.1: ``AES128`` (the
    default), ``AES192``, ``AES256``, or ``TDES2``/``TDES3`` for a device that enciphers an
    8-byte format 0 block (the terminal dialect's field 52 holds 8 bytes).
    """

    bdk: KeyToken
    ksn: bytes
    fmt: int | None = None
    working_key: str = "AES128"


class HSM(Protocol):
    """What the host needs from an HSM. Tokens in, tokens/blocks/verdicts out."""

    @property
    def lmk_check_value(self) -> str: ...
    def generate_key(
        self, key_type: KeyType, length: int = 16, algorithm: Algorithm | None = None
    ) -> KeyToken: ...
    def import_clear(
        self, key_type: KeyType, clear: bytes, algorithm: Algorithm | None = None
    ) -> KeyToken: ...
    def import_components(
        self, key_type: KeyType, components: Sequence[bytes], algorithm: Algorithm | None = None
    ) -> KeyToken: ...
    def export_key(self, token: KeyToken, kek: KeyToken) -> tuple[bytes, bytes]: ...
    def import_key(
        self,
        key_type: KeyType,
        cryptogram: bytes,
        kek: KeyToken,
        check_value: bytes | None = None,
    ) -> KeyToken: ...
    def generate_mac(
        self, mak: KeyToken, data: bytes, algorithm: str = "unionpay_ecb", padding: int = 1
    ) -> bytes: ...
    def verify_mac(
        self,
        mak: KeyToken,
        data: bytes,
        mac: bytes | str,
        algorithm: str = "unionpay_ecb",
        padding: int = 1,
    ) -> bool: ...
    def translate_pin(
        self,
        block: bytes,
        pan: str,
        source: KeyToken | DukptSource,
        dest: KeyToken,
        dest_format: int = 0,
        source_format: int | None = None,
    ) -> bytes: ...
    def generate_pvv(self, pvk: KeyToken, pan: str, pin: str, pvki: int = 1) -> str: ...
    def verify_pin_pvv(
        self,
        zpk: KeyToken,
        block: bytes,
        pan: str,
        pvv: str,
        pvk: KeyToken,
        pvki: int = 1,
        fmt: int = 0,
    ) -> bool: ...
    def export_tr31(self, token: KeyToken, kbpk: KeyToken, **header: str) -> str: ...
    def import_tr31(self, key_type: KeyType, block: str, kbpk: KeyToken) -> KeyToken: ...
    def check_value(self, token: KeyToken) -> str: ...
    def decrypt_data(self, tdk: KeyToken, data: bytes) -> bytes: ...
    def decrypt_track(self, tdk: KeyToken, track_nibbles: str) -> str: ...
    def derive_ipek(self, bdk: KeyToken, ksn: bytes) -> KeyToken: ...


class _Engine:
    """Prepared cipher objects for one unwrapped key; built lazily, kept for the token's life."""

    __slots__ = ("_chain", "_chain_k1", "_ecb", "algorithm", "key")

    def __init__(self, key: bytes, algorithm: Algorithm) -> None:
        self.key = key
        self.algorithm = algorithm
        self._ecb: des.Cipher | None = None
        self._chain: macs.ChainedCbc | None = None
        self._chain_k1: macs.ChainedCbc | None = None

    def __repr__(self) -> str:
        return f"_Engine({self.algorithm.name})"

    @property
    def ecb(self) -> des.Cipher:
        if self._ecb is None:
            if self.algorithm is Algorithm.AES:
                self._ecb = AES.new(self.key, AES.MODE_ECB)
            else:
                self._ecb = des.new_ecb(self.key)
        return self._ecb

    @property
    def chain(self) -> macs.ChainedCbc:
        if self._chain is None:
            self._chain = macs.ChainedCbc(self.key)
        return self._chain

    def x919(self, data: bytes, padding: int) -> bytes:
        if len(self.key) != 16:
            raise MacError("the X9.19 MAC needs a double-length key")
        if self._chain_k1 is None:
            self._chain_k1 = macs.ChainedCbc(self.key[:8])
        return macs.x919_with(self._chain_k1, self.ecb, data, padding)


def _names(types: Iterable[KeyType]) -> str:
    return "/".join(sorted(t.name for t in types))


def token_id(token: KeyToken) -> bytes:
    """A token's identity for cache keys: a digest of its text, never its clear key."""
    return hashlib.sha256(token.to_text().encode("ascii")).digest()[:16]


class SoftHSM:
    """The embedded software HSM: tokens wrapped under an LMK held in this process.

    The modes are fixed at construction, so a running host cannot switch them on:
    ``ceremony`` allows :meth:`import_components` (two or more custodians' components);
    ``clear_test_keys`` allows :meth:`import_clear` of published test keys (demo, tests);
    ``single_length`` names the key types that may be 8-byte DES keys (the terminal dialect's
    MAK, the PIK of key mode 001); ``True`` allows every type (offline tools);
    ``legacy_tr31`` accepts TR-31 versions A and C on import (never produced);
    ``tr31_k0_type`` is the one type a foreign K0 block (without poshost's type block) becomes.
    """

    def __init__(
        self,
        lmk: bytes,
        *,
        cache_size: int = 4096,
        dukpt_cache_size: int = 65536,
        ceremony: bool = False,
        clear_test_keys: bool = False,
        single_length: Iterable[KeyType] | bool = (),
        legacy_tr31: bool = False,
        tr31_k0_type: KeyType = T.TMK,
    ):
        self._lmk = LocalMasterKey(lmk)
        self._engines: LRU[_Engine] = LRU(cache_size)
        # (id(token), allowed types, direction) -> (token, engine): the token is kept, so its
        # id is not reused while the entry lives; the allowed set is compared by value (a
        # caller may build it per call)
        self._hot: dict[tuple[int, frozenset[KeyType], str | None], tuple[KeyToken, _Engine]] = {}
        self.dukpt_cache = dukpt.DukptCache(dukpt_cache_size)
        self.ceremony = ceremony
        self.clear_test_keys = clear_test_keys
        if single_length is True:
            single_length = tuple(KeyType)
        self.single_length = frozenset(single_length or ())
        self.legacy_tr31 = legacy_tr31
        if tr31_k0_type not in K0_TYPES:
            raise KeyUsageError(f"a K0 block cannot default to a {tr31_k0_type.name}")
        self.tr31_k0_type = tr31_k0_type

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_hex(cls, lmk_hex: str, **kwargs: Any) -> SoftHSM:
        """An HSM from the LMK in hex (configuration)."""
        try:
            lmk = bytes.fromhex(lmk_hex)
        except ValueError:
            raise KeyError_("the LMK is not hex") from None
        return cls(lmk, **kwargs)

    @classmethod
    def from_components(cls, components: Iterable[bytes | str], **kwargs: Any) -> SoftHSM:
        """An HSM from two or more LMK components (XORed)."""
        return cls(xor_components(components), **kwargs)

    @staticmethod
    def generate_lmk(length: int = 32) -> bytes:
        """A fresh random LMK, for an installation that has none."""
        return generate_lmk(length)

    @property
    def lmk_check_value(self) -> str:
        """The LMK's check value (10 hex digits), shown at start so operators can confirm it."""
        return self._lmk.check_value

    def __repr__(self) -> str:
        return f"SoftHSM(lmk_kcv={self.lmk_check_value})"

    def clear_caches(self) -> None:
        """Drop every prepared cipher and DUKPT key (benchmarks use it for cold numbers)."""
        self._engines.clear()
        self._hot.clear()
        self.dukpt_cache.clear()

    # -- tokens --------------------------------------------------------------------------

    def _make_token(
        self,
        key_type: KeyType,
        algorithm: Algorithm | None,
        clear: bytes,
        exportable: bool = True,
        mode: str = "",
    ) -> KeyToken:
        algorithm = algorithm or key_type.default_algorithm
        if algorithm not in key_type.algorithms:
            raise KeyUsageError(f"a {key_type.name} cannot be an {algorithm.name} key")
        check_key_length(algorithm, len(clear))
        if algorithm is Algorithm.AES:
            cv = kcv_aes(clear).hex().upper()
        else:
            cv = kcv(clear).hex().upper()
        crypt = self._lmk.wrap(key_type, algorithm, clear, exportable, mode)
        return KeyToken(key_type, crypt, cv, algorithm, exportable, mode)

    def _engine(
        self,
        token: KeyToken,
        allowed: frozenset[KeyType],
        operation: str,
        direction: str | None = None,
    ) -> _Engine:
        """The engine of a token permitted for ``operation``; unwraps (and checks) on first use.

        ``direction`` (encrypt, decrypt, generate, verify, derive) is checked against the
        token's TR-31 mode of use, which the LMK wrapping authenticates.

        A token object that passed these checks for the same ``allowed`` set and direction
        passes them again (they depend on nothing else), so the host's hot path, which hands in
        the same token objects request after request, finds its engine by identity first.
        """
        hot = self._hot.get((id(token), allowed, direction))
        if hot is not None and hot[0] is token:
            return hot[1]
        if not isinstance(token, KeyToken):
            raise KeyUsageError(f"{operation} needs a key token")
        if token.key_type not in allowed:
            raise KeyUsageError(
                f"{operation} needs a {_names(allowed)} key, not a {token.key_type.name} "
                f"(kcv {token.check_value})"
            )
        if direction is not None:
            rules.check_direction(token, direction, operation)
        # The token's own fields are its identity (the cryptogram is wrapped, not clear);
        # hashing them as they are is cheaper on the hot path than a digest of the text. The
        # enums go in as their values: an Enum member hashes in Python, its str value in C.
        ck = (
            token.key_type.value,
            token.algorithm.value,
            token.exportable,
            token.mode,
            token.cryptogram,
        )
        eng = self._engines.get(ck)
        if eng is None:
            clear = self._lmk.unwrap(
                token.key_type, token.algorithm, token.cryptogram, token.exportable, token.mode
            )
            eng = _Engine(clear, token.algorithm)
            # The check value is not covered by the wrapping; confirm it once, reusing the
            # engine's cipher for TDES so a cold call builds one cipher fewer.
            aes = token.algorithm is Algorithm.AES
            cv = kcv_aes(clear) if aes else eng.ecb.encrypt(bytes(8))
            if cv.hex().upper()[: len(token.check_value)] != token.check_value.upper():
                raise KeyError_(f"the {token.key_type.name} token's check value does not match")
            self._engines.put(ck, eng)
        if len(self._hot) >= 4096:
            self._hot.clear()
        self._hot[(id(token), allowed, direction)] = (token, eng)
        return eng

    def generate_key(
        self, key_type: KeyType, length: int = 16, algorithm: Algorithm | None = None
    ) -> KeyToken:
        """A random key (TDES keys with odd parity and distinct halves)."""
        algorithm = algorithm or key_type.default_algorithm
        check_key_length(algorithm, length)
        rules.check_single_length(key_type, algorithm, length, self.single_length)
        while True:
            clear = secrets.token_bytes(length)
            if algorithm is Algorithm.AES:
                break
            clear = des.adjust_parity(clear)
            if length == 8 or des.effective_key(clear) == clear:
                break
        return self._make_token(key_type, algorithm, clear)

    def check_value(self, token: KeyToken) -> str:
        """The key's check value computed from the key itself (6 hex digits for TDES, 10 for
        AES): what an operator compares with a custodian's or a peer's, and what tells an HSM's
        LMK from another's (a token from another LMK does not unwrap)."""
        eng = self._engine(token, frozenset({token.key_type}), "check value")
        if eng.algorithm is Algorithm.AES:
            return kcv_aes(eng.key).hex().upper()
        return eng.ecb.encrypt(bytes(8))[:3].hex().upper()

    def import_clear(
        self, key_type: KeyType, clear: bytes, algorithm: Algorithm | None = None
    ) -> KeyToken:
        """Wrap a clear TEST key: only on an HSM built with ``clear_test_keys=True``.

        A key whose value a caller knows makes every key wrapped under it known, so a running
        host never takes one; real keys arrive as components (ceremony), under a KEK or in a
        key block. Test keys are taken as published (no parity or halves check).
        """
        if not self.clear_test_keys:
            raise KeyUsageError(
                f"clear key import of a {key_type.name} is refused: only an HSM built for "
                "test keys takes a clear key; real keys come as two or more components in a "
                "ceremony, under a KEK or in a TR-31 block"
            )
        return self._make_token(key_type, algorithm, bytes(clear))

    def import_components(
        self, key_type: KeyType, components: Sequence[bytes], algorithm: Algorithm | None = None
    ) -> KeyToken:
        """Wrap the XOR of two or more clear components: only in ceremony mode."""
        if not self.ceremony:
            raise KeyUsageError(
                f"component import of a {key_type.name} needs an HSM in ceremony mode"
            )
        clear = xor_components(components)
        algorithm = algorithm or key_type.default_algorithm
        check_key_length(algorithm, len(clear))
        rules.check_material(key_type, algorithm, clear, single_length=self.single_length)
        return self._make_token(key_type, algorithm, clear)

    def _wrapper_engine(
        self,
        table: dict[KeyType, dict[KeyType, int]],
        key_type: KeyType,
        kek: KeyToken,
        operation: str,
    ) -> tuple[_Engine, bytes]:
        """The wrapping key's engine and the (variant) key that carries ``key_type``."""
        if not isinstance(kek, KeyToken):
            raise KeyUsageError(f"{operation} needs a key token")
        variant = rules.carried(table, kek.key_type, key_type)
        direction = "encrypt" if operation == "export" else "decrypt"
        eng = self._engine(
            kek, frozenset({kek.key_type}), f"{operation} of a {key_type.name}", direction
        )
        if eng.algorithm is not Algorithm.TDES:
            raise KeyUsageError("ECB key export/import needs a TDES KEK; use TR-31 for AES")
        return eng, rules.variant_key(eng.key, variant)

    def export_key(self, token: KeyToken, kek: KeyToken) -> tuple[bytes, bytes]:
        """(key under the KEK in ECB, 4-byte check value), as sign-on field 62 carries it."""
        if not isinstance(token, KeyToken):
            raise KeyUsageError("export needs a key token")
        kek_eng, wrap_key = self._wrapper_engine(rules.EXPORT_UNDER, token.key_type, kek, "export")
        if not token.exportable:
            raise KeyUsageError(
                f"the {token.key_type.name} (kcv {token.check_value}) is not exportable"
            )
        eng = self._engine(token, frozenset({token.key_type}), "export")
        if eng.algorithm is not Algorithm.TDES:
            raise KeyUsageError("ECB export is for TDES keys; use TR-31 for AES keys")
        rules.check_strength(kek_eng.algorithm, len(wrap_key), eng.algorithm, len(eng.key))
        ecb = kek_eng.ecb if wrap_key == kek_eng.key else des.new_ecb(wrap_key)
        return ecb.encrypt(eng.key), kcv(eng.key, 4)

    def import_key(
        self,
        key_type: KeyType,
        cryptogram: bytes,
        kek: KeyToken,
        check_value: bytes | None = None,
    ) -> KeyToken:
        """A token for a TDES key received under a KEK.

        The check value is required (at least 3 bytes, compared over its full length), the
        wrapping key must carry ``key_type`` and be at least as strong, and the key must have
        odd parity and distinct halves.
        """
        kek_eng, wrap_key = self._wrapper_engine(rules.IMPORT_UNDER, key_type, kek, "import")
        if not isinstance(cryptogram, bytes | bytearray) or len(cryptogram) not in (8, 16, 24):
            raise KeyError_("a TDES key cryptogram is 8, 16 or 24 bytes")
        if check_value is None or len(check_value) < rules.MIN_CHECK_VALUE:
            raise KeyError_(
                f"importing a {key_type.name} needs its check value "
                f"({rules.MIN_CHECK_VALUE} bytes or more)"
            )
        rules.check_strength(kek_eng.algorithm, len(wrap_key), Algorithm.TDES, len(cryptogram))
        ecb = kek_eng.ecb if wrap_key == kek_eng.key else des.new_ecb(wrap_key)
        clear = ecb.decrypt(bytes(cryptogram))
        cv = kcv(clear, len(check_value))
        if len(cv) != len(check_value) or not macs.verify(cv, bytes(check_value)):
            raise KeyError_(f"the imported {key_type.name} does not match its check value")
        rules.check_material(key_type, Algorithm.TDES, clear, single_length=self.single_length)
        return self._make_token(key_type, Algorithm.TDES, clear)

    # -- TR-31 ---------------------------------------------------------------------------

    def export_tr31(
        self,
        token: KeyToken,
        kbpk: KeyToken,
        *,
        mode: str | None = None,
        key_version: str = "00",
        exportability: str = "E",
    ) -> str:
        """The key as a TR-31 block under a KBPK: version B for a TDES KBPK, D for AES.

        A key narrowed to one mode of use leaves with that mode; a K0 block names the key type
        in a proprietary optional block so it can come back as that type only.
        """
        if not isinstance(token, KeyToken):
            raise KeyUsageError("TR-31 export needs a key token")
        if not token.exportable:
            raise KeyUsageError(
                f"the {token.key_type.name} (kcv {token.check_value}) is not exportable"
            )
        kb = self._engine(kbpk, frozenset({T.KBPK}), "TR-31 export", "encrypt")
        eng = self._engine(token, frozenset({token.key_type}), "TR-31 export")
        rules.check_strength(kb.algorithm, len(kb.key), eng.algorithm, len(eng.key))
        usage = TR31_USAGE[token.key_type]
        mode = mode or token.mode or TR31_DEFAULT_MODE[usage]
        if token.mode and mode != token.mode:
            raise KeyUsageError(
                f"the {token.key_type.name} has mode of use {token.mode}; it cannot leave "
                f"with mode {mode}"
            )
        blocks = ((TR31_TYPE_BLOCK, token.key_type.value),) if usage == "K0" else ()
        header = tr31.Header(
            version="B" if kb.algorithm is Algorithm.TDES else "D",
            usage=usage,
            algorithm="A" if eng.algorithm is Algorithm.AES else "T",
            mode=mode,
            key_version=key_version,
            exportability=exportability,
            optional_blocks=blocks,
        )
        return tr31.wrap(kb.key, header, eng.key)

    def import_tr31(self, key_type: KeyType, block: str, kbpk: KeyToken) -> KeyToken:
        """A token from a TR-31 block; its usage must be the one ``key_type`` has.

        Exportability 'N' (never) and 'S' (sensitive) make a non-exportable token, since this
        HSM's only other exports are ECB cryptograms, which are not key blocks. A one-way mode
        of use (E, D, G, V) stays bound to the token. A K0 block becomes the type its poshost
        type block names, or (a foreign block without one) the configured ``tr31_k0_type``.
        """
        kb = self._engine(kbpk, frozenset({T.KBPK}), "TR-31 import", "decrypt")
        header, clear = tr31.unwrap(kb.key, block, legacy=self.legacy_tr31)
        expected = TR31_USAGE[key_type]
        if header.usage != expected:
            raise KeyUsageError(
                f"the key block holds a {header.usage} key; a {key_type.name} needs {expected}"
            )
        if header.usage == "K0":
            self._check_k0_type(header, key_type)
        algorithm = Algorithm.AES if header.algorithm == "A" else Algorithm.TDES
        if algorithm not in key_type.algorithms:
            raise KeyUsageError(f"a {key_type.name} cannot be an {algorithm.name} key")
        rules.check_strength(kb.algorithm, len(kb.key), algorithm, len(clear))
        rules.check_material(key_type, algorithm, clear, single_length=self.single_length)
        mode = header.mode if header.mode in rules.RESTRICTING_MODES else ""
        return self._make_token(key_type, algorithm, clear, header.exportability == "E", mode)

    def _check_k0_type(self, header: tr31.Header, key_type: KeyType) -> None:
        named = dict(header.optional_blocks).get(TR31_TYPE_BLOCK)
        wanted = self.tr31_k0_type.value if named is None else named
        if key_type.value != wanted:
            raise KeyUsageError(
                f"this K0 key block is a {wanted} key; it cannot be imported as a {key_type.name}"
            )

    # -- MAC -----------------------------------------------------------------------------

    def _mac(
        self,
        mak: KeyToken,
        data: bytes,
        algorithm: str,
        padding: int,
        allowed: frozenset[KeyType] = MAC_KEYS,
        direction: str = "generate",
    ) -> bytes:
        name = MAC_ALGORITHMS.get(algorithm.lower())
        if name is None:
            raise MacError(f"unknown MAC algorithm {algorithm!r}")
        eng = self._engine(mak, allowed, f"{name} MAC", direction)
        if name == "cmac":
            alg = "aes" if eng.algorithm is Algorithm.AES else "tdes"
            return macs.cmac(eng.key, data, alg)
        if eng.algorithm is not Algorithm.TDES:
            raise MacError(f"the {name} MAC needs a DES/TDES key")
        if name == "unionpay_ecb":
            return macs.unionpay_ecb_mac_chained(eng.chain, data)
        if name == "x9.19":
            return eng.x919(data, padding)
        return macs.iso9797_alg1_with(eng.chain, data, padding)

    def generate_mac(
        self, mak: KeyToken, data: bytes, algorithm: str = "unionpay_ecb", padding: int = 1
    ) -> bytes:
        """The MAC: 8 ASCII hex bytes for unionpay_ecb, else the full binary MAC."""
        return self._mac(mak, data, algorithm, padding)

    def verify_mac(
        self,
        mak: KeyToken,
        data: bytes,
        mac: bytes | str,
        algorithm: str = "unionpay_ecb",
        padding: int = 1,
    ) -> bool:
        """Constant-time check; a truncated binary MAC (4 bytes or more) is compared as sent."""
        expected = self._mac(mak, data, algorithm, padding, direction="verify")
        if isinstance(mac, str):
            try:
                mac = mac.encode("ascii")
            except UnicodeEncodeError:
                return False
        received = bytes(mac)
        if MAC_ALGORITHMS[algorithm.lower()] == "unionpay_ecb":
            return macs.verify(expected, received.upper())
        if not 4 <= len(received) <= len(expected):
            return False
        return macs.verify(expected[: len(received)], received)

    # -- PIN -----------------------------------------------------------------------------

    def _dukpt_pin_key(self, src: DukptSource) -> tuple[_Engine, int]:
        """An engine for the DUKPT PIN key of a KSN, and the device's PIN block format."""
        eng = self._engine(src.bdk, DUKPT_BASE_KEYS, "DUKPT derivation", "derive")
        if not isinstance(src.ksn, bytes | bytearray):
            raise dukpt.DukptError("the KSN must be bytes")
        ksn = bytes(src.ksn)
        bdk_id = token_id(src.bdk)
        if src.bdk.key_type is T.BDK:
            fmt = 0 if src.fmt is None else src.fmt
            # No per-KSN engine is kept: a KSN serves one transaction (a repeat is a replay),
            # so caching its PIN key would only keep one more clear key in memory.
            ipek = self._ipek(eng.key, bdk_id, ksn)
            tk = dukpt.derive_transaction_key(
                ipek, ksn, cache=self.dukpt_cache, cache_id=(bdk_id, _tdes_base(ksn))
            )
            return _Engine(dukpt.pin_key(tk), Algorithm.TDES), fmt
        wkt = pin_working_key(src.working_key)
        tdea = wkt in TDEA_WORKING_KEYS
        fmt = (0 if tdea else 4) if src.fmt is None else src.fmt
        ikid, _ = dukpt.aes_ksn(ksn)
        ik = self._aes_ik(eng.key, bdk_id, ikid)
        dk = dukpt.derive_aes_derivation_key(
            ik, ksn, cache=self.dukpt_cache, cache_id=(bdk_id, ikid)
        )
        pk = dukpt.derive_working_key(dk, ksn, dukpt.KeyUsage.PIN_ENCRYPTION, wkt)
        return _Engine(pk, Algorithm.TDES if tdea else Algorithm.AES), fmt

    def _ipek(self, bdk: bytes, bdk_id: bytes, ksn: bytes) -> bytes:
        iksn = _tdes_base(ksn)
        ck = ("IPEK", bdk_id, iksn)
        ipek = self.dukpt_cache.get(ck)
        if ipek is None:
            ipek = dukpt.derive_ipek(bdk, ksn)
            self.dukpt_cache.put(ck, ipek)
        return ipek

    def _aes_ik(self, bdk: bytes, bdk_id: bytes, ikid: bytes) -> bytes:
        ck = ("IK", bdk_id, ikid)
        ik = self.dukpt_cache.get(ck)
        if ik is None:
            ik = dukpt.derive_initial_key(bdk, ikid)
            self.dukpt_cache.put(ck, ik)
        return ik

    @staticmethod
    def _decode(eng: _Engine, block: bytes, pan: str, fmt: int) -> str:
        if not isinstance(block, bytes | bytearray):
            raise PinError("a PIN block must be bytes")
        if fmt not in pinblock.FORMATS:
            raise PinError(f"unsupported PIN block format {fmt!r} for an HSM")
        block = bytes(block)
        if fmt == 4:
            if eng.algorithm is not Algorithm.AES:
                raise PinError("format 4 PIN blocks are enciphered under AES keys")
            return pinblock.decipher_format4(eng.key, block, pan, ecb=eng.ecb)
        if eng.algorithm is not Algorithm.TDES:
            raise PinError(f"format {fmt} PIN blocks are enciphered under TDES keys")
        if len(block) != 8:
            raise PinError("a format 0/1/3 PIN block is 8 bytes")
        return pinblock.decode(fmt, eng.ecb.decrypt(block), pan)

    @staticmethod
    def _encode(eng: _Engine, pin: str, pan: str, fmt: int) -> bytes:
        if fmt == 4:
            if eng.algorithm is not Algorithm.AES:
                raise PinError("format 4 PIN blocks need an AES destination key")
            return pinblock.encipher_format4(eng.key, pin, pan, ecb=eng.ecb)
        if eng.algorithm is not Algorithm.TDES:
            raise PinError(f"format {fmt} PIN blocks need a TDES destination key")
        return eng.ecb.encrypt(pinblock.encode(fmt, pin, pan))

    def translate_pin(
        self,
        block: bytes,
        pan: str,
        source: KeyToken | DukptSource,
        dest: KeyToken,
        dest_format: int = 0,
        source_format: int | None = None,
    ) -> bytes:
        """Decrypt under the source (PIK/ZPK or DUKPT), re-encrypt under the ZPK.

        ISO 9564-1 forbids moving a PIN from a PAN-bound format (0, 3, 4) to format 1, which
        would strip the PAN binding; that is refused.
        """
        if isinstance(source, DukptSource):
            src_eng, default_fmt = self._dukpt_pin_key(source)
            src_fmt = default_fmt if source_format is None else source_format
        else:
            src_eng = self._engine(source, PIN_SOURCE_KEYS, "PIN translation (source)", "decrypt")
            default_fmt = 4 if src_eng.algorithm is Algorithm.AES else 0
            src_fmt = default_fmt if source_format is None else source_format
        dst_eng = self._engine(dest, PIN_DEST_KEYS, "PIN translation (destination)", "encrypt")
        for f in (src_fmt, dest_format):
            if f == pinblock.ICC_FORMAT:
                raise PinError("format 2 PIN blocks go only to a chip card (offline PIN)")
            if f not in pinblock.FORMATS:
                raise PinError(f"unsupported PIN block format {f!r}")
        if src_fmt in pinblock.PAN_BOUND and dest_format == 1:
            raise PinError("ISO 9564-1 forbids translating a PAN-bound PIN block to format 1")
        pin = self._decode(src_eng, block, pan, src_fmt)
        return self._encode(dst_eng, pin, pan, dest_format)

    # -- PVV (issuer side) -------------------------------------------------------------

    @staticmethod
    def _pvv(eng: _Engine, pan: str, pin: str, pvki: int) -> str:
        pinblock.check_pan(pan)
        pinblock.check_pin(pin)
        if not 0 <= int(pvki) <= 9:
            raise PinError("the PVKI is one digit")
        tsp = pan[:-1][-11:].rjust(11, "0") + str(int(pvki)) + pin[:4]
        digits = eng.ecb.encrypt(bytes.fromhex(tsp)).hex().upper()
        dec = [c for c in digits if c.isdigit()]
        dec += [str(int(c, 16) - 10) for c in digits if not c.isdigit()]
        return "".join(dec[:4])

    def generate_pvv(self, pvk: KeyToken, pan: str, pin: str, pvki: int = 1) -> str:
        """The Visa PVV (4 digits) of a PIN, for provisioning a test card."""
        eng = self._engine(pvk, frozenset({T.PVK}), "PVV generation", "generate")
        return self._pvv(eng, pan, pin, pvki)

    def verify_pin_pvv(
        self,
        zpk: KeyToken,
        block: bytes,
        pan: str,
        pvv: str,
        pvk: KeyToken,
        pvki: int = 1,
        fmt: int = 0,
    ) -> bool:
        """Decrypt the PIN block under the ZPK and compare its Visa PVV; the PIN stays inside."""
        zeng = self._engine(zpk, PIN_DEST_KEYS | PIN_SOURCE_KEYS, "PIN verification", "decrypt")
        peng = self._engine(pvk, frozenset({T.PVK}), "PVV verification", "verify")
        pin = self._decode(zeng, block, pan, fmt)
        computed = self._pvv(peng, pan, pin, pvki)
        return macs.verify(computed.encode(), str(pvv).encode("ascii", "replace"))

    # -- track data ----------------------------------------------------------------------

    def decrypt_data(self, tdk: KeyToken, data: bytes) -> bytes:
        """TDES-ECB decryption of whole blocks under a TDK: the network HSM's M2, which the
        host uses for the one enciphered block of a track (:class:`TrackBlock`)."""
        eng = self._engine(tdk, frozenset({T.TDK}), "data decryption", "decrypt")
        if not isinstance(data, bytes | bytearray) or not data or len(data) % 8:
            raise KeysError("the data to decrypt is a whole number of 8-byte blocks")
        return eng.ecb.decrypt(bytes(data))

    def decrypt_track(self, tdk: KeyToken, track_nibbles: str) -> str:
        """Undo the terminal's track encryption (docs/terminal-dialect.md: the 8 bytes ending
        one byte before the end of the packed track are TDES-ECB encrypted with the TDK)."""
        track = TrackBlock.of(track_nibbles)
        return track.with_block(self.decrypt_data(tdk, track.block))

    # -- DUKPT -------------------------------------------------------------------------

    def derive_ipek(self, bdk: KeyToken, ksn: bytes) -> KeyToken:
        """The device's initial key as a token: IPEK (TDES BDK) or IK_AES (AES BDK)."""
        eng = self._engine(bdk, DUKPT_BASE_KEYS, "initial key derivation", "derive")
        if bdk.key_type is T.BDK:
            if len(ksn) != dukpt.TDES_KSN_LEN:
                raise KeysError("a TDES DUKPT KSN is 10 bytes")
            return self._make_token(T.IPEK, Algorithm.TDES, dukpt.derive_ipek(eng.key, bytes(ksn)))
        if len(ksn) not in (8, dukpt.AES_KSN_LEN):
            raise KeysError("an AES DUKPT KSN is 12 bytes (or the 8-byte initial key ID)")
        ik = dukpt.derive_initial_key(eng.key, bytes(ksn[:8]))
        return self._make_token(T.IK_AES, Algorithm.AES, ik)


def _tdes_base(ksn: bytes) -> bytes:
    """The TDES KSN with its counter cleared: with the BDK, it names the IPEK."""
    return (int.from_bytes(ksn, "big") & ~dukpt.TDES_COUNTER_MASK).to_bytes(10, "big")


@attrs.frozen
class TrackBlock:
    """A track cut around its one enciphered block: the 8 bytes that end one byte before the end
    of the packed track (docs/terminal-dialect.md). Pure, so the host can send only the block to
    a network HSM and put the answer back itself."""

    head: bytes
    block: bytes
    tail: bytes
    nibbles: int

    @classmethod
    def of(cls, track: str) -> TrackBlock:
        if not isinstance(track, str) or not track:
            raise KeysError("the track must be a non-empty string")
        nibbles = track.upper().replace("=", "D")
        if any(c not in "0123456789ABCDEF" for c in nibbles):
            raise KeysError("the track holds a character that is not a nibble")
        packed = bytes.fromhex(nibbles + ("0" if len(nibbles) % 2 else ""))
        if len(packed) < 9:
            raise KeysError("the track is too short to carry an encrypted block (9 bytes minimum)")
        return cls(packed[:-9], packed[-9:-1], packed[-1:], len(nibbles))

    def with_block(self, block: bytes) -> str:
        """The track text with ``block`` in place of the enciphered one."""
        if len(block) != 8:
            raise KeysError("a track block is 8 bytes")
        out = self.head + bytes(block) + self.tail
        return out.hex().upper()[: self.nibbles].replace("D", "=")


def encrypt_track(tdk_clear: bytes, track: str) -> str:
    """Terminal side of the track encryption (for the emulator and tests)."""
    tb = TrackBlock.of(track)
    return tb.with_block(des.encrypt_ecb(tdk_clear, tb.block))
