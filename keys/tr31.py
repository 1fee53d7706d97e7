"""TR-31 / ANSI X9.143 key blocks, versions B (TDES KBPK) and D (AES KBPK).

Both versions derive a key-block encryption key (KBEK) and MAC key (KBMK) from the KBPK with
the CMAC counter-mode KDF of TR-31 (NIST SP 800-108), MAC the clear header and payload with
CMAC, and encrypt the payload in CBC mode with the MAC as the IV. So the header (usage,
algorithm, mode of use, exportability) is authenticated: editing it breaks the MAC.
Versions A and C (key variant binding, TR-31:2010: KBEK = KBPK xor 45, KBMK = KBPK xor 4D,
TDES-CBC with the header's first 8 characters as IV, 4-byte TDES CBC-MAC) are deprecated: they
are never produced, and accepted on import only when the caller asks for ``legacy``.
"""

from __future__ import annotations

import secrets

import attrs
from Crypto.Cipher import AES

from keys import des
from keys.cmac import cmac
from keys.errors import TR31Error
from keys.mac import verify

# Key usages this host understands (ANSI X9.143 table 6, the subset payment hosts use).
USAGES = {
    "B0": "BDK base derivation key",
    "B1": "initial DUKPT key",
    "D0": "symmetric data encryption",
    "K0": "key encryption / wrapping",
    "K1": "TR-31 key block protection key",
    "M0": "ISO 16609 MAC (TDES CBC-MAC)",
    "M1": "ISO 9797-1 MAC algorithm 1",
    "M3": "ISO 9797-1 MAC algorithm 3 (X9.19)",
    "M5": "ISO 9797-1 MAC algorithm 5 (CMAC)",
    "M6": "ISO 9797-1:2011 MAC algorithm 5/CMAC",
    "P0": "PIN encryption",
    "V1": "PIN verification, IBM 3624",
    "V2": "PIN verification, Visa PVV",
}
ALGORITHMS = {"A": "AES", "T": "TDES", "D": "DES"}
MODES = {
    "B": "both encrypt/wrap and decrypt/unwrap",
    "C": "both generate and verify",
    "D": "decrypt/unwrap only",
    "E": "encrypt/wrap only",
    "G": "generate only",
    "N": "no special restrictions",
    "V": "verify only",
    "X": "key derivation",
}
EXPORTABILITY = {"E": "exportable under a KEK", "N": "non-exportable", "S": "sensitive"}

# Which modes of use make sense for which usage (X9.143 table 8, abridged).
_USAGE_MODES = {
    "B0": "X",
    "B1": "X",
    "D0": "BDE",
    "K0": "BDE",
    "K1": "BDE",
    "M0": "CGV",
    "M1": "CGV",
    "M3": "CGV",
    "M5": "CGV",
    "M6": "CGV",
    "P0": "BDE",
    "V1": "CGV",
    "V2": "CGV",
}
_ALG_LENGTHS = {"T": (8, 16, 24), "D": (8,), "A": (16, 24, 32)}
LEGACY_VERSIONS = frozenset("AC")


@attrs.frozen
class Header:
    """The clear header of a key block; validated on construction."""

    version: str
    usage: str
    algorithm: str
    mode: str
    key_version: str = "00"
    exportability: str = "E"
    optional_blocks: tuple[tuple[str, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.version not in ("A", "B", "C", "D"):
            raise TR31Error(f"key block version {self.version!r} is not supported (B or D)")
        if self.usage not in USAGES:
            raise TR31Error(f"unknown key usage {self.usage!r}")
        if self.algorithm not in ALGORITHMS:
            raise TR31Error(f"unknown algorithm {self.algorithm!r}")
        if self.mode not in MODES:
            raise TR31Error(f"unknown mode of use {self.mode!r}")
        if self.mode != "N" and self.mode not in _USAGE_MODES[self.usage]:
            raise TR31Error(f"mode of use {self.mode} is not allowed for usage {self.usage}")
        if self.exportability not in EXPORTABILITY:
            raise TR31Error(f"unknown exportability {self.exportability!r}")
        if len(self.key_version) != 2 or not self.key_version.isascii():
            raise TR31Error("the key version number is 2 characters")
        for bid, data in self.optional_blocks:
            if len(bid) != 2 or not (bid + data).isascii() or not (bid + data).isprintable():
                raise TR31Error("optional blocks are printable ASCII with a 2-character ID")

    @property
    def block_size(self) -> int:
        return 16 if self.version == "D" else 8

    @property
    def legacy(self) -> bool:
        """Versions A and C: the deprecated key variant binding method."""
        return self.version in LEGACY_VERSIONS

    def _optional_text(self) -> str:
        blocks = [b for b in self.optional_blocks if b[0] != "PB"]
        text = "".join(bid + format(4 + len(data), "02X") + data for bid, data in blocks)
        count = len(blocks)
        rem = (16 + len(text)) % self.block_size
        if rem:  # pad the header to a whole number of cipher blocks with a PB block
            pad = self.block_size - rem
            while pad < 4:
                pad += self.block_size
            text += "PB" + format(pad, "02X") + "0" * (pad - 4)
            count += 1
        return format(count, "02d") + "00" + text

    def encode(self, total_length: int) -> str:
        """The header text for a block of ``total_length`` characters."""
        return (
            self.version
            + format(total_length, "04d")
            + self.usage
            + self.algorithm
            + self.mode
            + self.key_version
            + self.exportability
            + self._optional_text()
        )

    def header_length(self) -> int:
        return 12 + len(self._optional_text())


def parse_header(block: str) -> tuple[Header, int]:
    """The header and its length in characters, from the front of a key block."""
    if not isinstance(block, str) or len(block) < 16 or not block.isascii():
        raise TR31Error("a key block is an ASCII string of at least 16 characters")
    version, length = block[0], block[1:5]
    if not length.isdigit() or int(length) != len(block):
        raise TR31Error("the key block length field does not match the block")
    count = block[12:14]
    if not count.isdigit():
        raise TR31Error("the optional block count is not numeric")
    pos, opts = 16, []
    for _ in range(int(count)):
        bid, ln = block[pos : pos + 2], block[pos + 2 : pos + 4]
        try:
            n = int(ln, 16)
        except ValueError:
            raise TR31Error("an optional block length is not hex") from None
        if n < 4 or pos + n > len(block):
            raise TR31Error("an optional block overruns the key block")
        opts.append((bid, block[pos + 4 : pos + n]))
        pos += n
    header = Header(
        version=version,
        usage=block[5:7],
        algorithm=block[7],
        mode=block[8],
        key_version=block[9:11],
        exportability=block[11],
        optional_blocks=tuple(opts),
    )
    return header, pos


def _kdf(kbpk: bytes, version: str) -> tuple[bytes, bytes]:
    """(KBEK, KBMK) by the TR-31 CMAC KDF: counter, usage 0000/0001, 00, algorithm, length."""
    if version == "B":
        if len(kbpk) not in (16, 24):
            raise TR31Error("a version B KBPK is a double- or triple-length TDES key")
        alg, bits, cipher = (
            (b"\x00\x00", 128, "tdes") if len(kbpk) == 16 else (b"\x00\x01", 192, "tdes")
        )
    else:
        if len(kbpk) not in (16, 24, 32):
            raise TR31Error("a version D KBPK is an AES key")
        alg = {16: b"\x00\x02", 24: b"\x00\x03", 32: b"\x00\x04"}[len(kbpk)]
        bits, cipher = len(kbpk) * 8, "aes"

    def derive(usage: bytes) -> bytes:
        out = b""
        counter = 1
        while len(out) * 8 < bits:
            data = bytes([counter]) + usage + b"\x00" + alg + bits.to_bytes(2, "big")
            out += cmac(kbpk, data, cipher)
            counter += 1
        return out[: bits // 8]

    return derive(b"\x00\x00"), derive(b"\x00\x01")


def _cbc(version: str, key: bytes, iv: bytes) -> des.Cipher:
    if version == "B":
        return des.new_cbc(key, iv)
    return AES.new(key, AES.MODE_CBC, iv=iv)


def wrap(kbpk: bytes, header: Header, key: bytes, *, padding: bytes | None = None) -> str:
    """A key block protecting ``key`` under ``kbpk``; ``padding`` only for reproducing examples."""
    if header.legacy:
        raise TR31Error(f"key block version {header.version} is deprecated and never produced")
    lengths = _ALG_LENGTHS[header.algorithm]
    if len(key) not in lengths:
        raise TR31Error(f"a key of algorithm {header.algorithm} cannot be {len(key)} bytes long")
    bs = header.block_size
    clear_len = 2 + len(key)
    npad = -clear_len % bs
    if padding is None:
        padding = secrets.token_bytes(npad)
    if len(padding) != npad:
        raise TR31Error(f"this key needs {npad} padding bytes")
    payload = (len(key) * 8).to_bytes(2, "big") + key + padding
    mac_len = 8 if header.version == "B" else 16
    total = header.header_length() + 2 * len(payload) + 2 * mac_len
    head = header.encode(total)
    kbek, kbmk = _kdf(kbpk, header.version)
    cipher = "tdes" if header.version == "B" else "aes"
    tag = cmac(kbmk, head.encode("ascii") + payload, cipher)[:mac_len]
    enc = _cbc(header.version, kbek, tag).encrypt(payload)
    return head + enc.hex().upper() + tag.hex().upper()


def _unwrap_variant(kbpk: bytes, block: str, header: Header, hlen: int) -> bytes:
    """The payload of a version A/C block (key variant binding), after checking its MAC."""
    if len(kbpk) not in (16, 24):
        raise TR31Error("a version A/C KBPK is a double- or triple-length TDES key")
    try:
        raw = bytes.fromhex(block[hlen:])
    except ValueError:
        raise TR31Error("the key block body is not hex") from None
    if len(raw) < 4 + 8 or (len(raw) - 4) % 8:
        raise TR31Error("the encrypted key data is not a whole number of cipher blocks")
    enc, tag = raw[:-4], raw[-4:]
    kbek = bytes(b ^ 0x45 for b in kbpk)
    kbmk = bytes(b ^ 0x4D for b in kbpk)
    expected = des.new_cbc(kbmk, bytes(8)).encrypt(block[:hlen].encode("ascii") + enc)[-8:][:4]
    if not verify(expected, tag):
        raise TR31Error("the key block MAC does not verify (wrong KBPK or altered block)")
    return des.new_cbc(kbek, block[:8].encode("ascii")).decrypt(enc)


def unwrap(kbpk: bytes, block: str, *, legacy: bool = False) -> tuple[Header, bytes]:
    """(header, key) of a key block; any malformation or MAC failure is a :class:`TR31Error`.

    ``legacy`` admits versions A and C; without it they are refused before any decryption.
    """
    header, hlen = parse_header(block)
    if header.legacy:
        if not legacy:
            raise TR31Error(
                f"key block version {header.version} (key variant binding) is deprecated; "
                "it is accepted only with the legacy TR-31 setting"
            )
        return header, _payload_key(header, _unwrap_variant(kbpk, block, header, hlen))
    mac_len = 8 if header.version == "B" else 16
    body = block[hlen:]
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise TR31Error("the key block body is not hex") from None
    if len(raw) < mac_len + header.block_size or (len(raw) - mac_len) % header.block_size:
        raise TR31Error("the encrypted key data is not a whole number of cipher blocks")
    enc, tag = raw[:-mac_len], raw[-mac_len:]
    kbek, kbmk = _kdf(kbpk, header.version)
    payload = _cbc(header.version, kbek, tag).decrypt(enc)
    cipher = "tdes" if header.version == "B" else "aes"
    expected = cmac(kbmk, block[:hlen].encode("ascii") + payload, cipher)[:mac_len]
    if not verify(expected, tag):
        raise TR31Error("the key block MAC does not verify (wrong KBPK or altered block)")
    return header, _payload_key(header, payload)


def _payload_key(header: Header, payload: bytes) -> bytes:
    """The key from a decrypted payload: 2-byte length in bits, key, padding."""
    bits = int.from_bytes(payload[:2], "big")
    if bits % 8 or 2 + bits // 8 > len(payload):
        raise TR31Error("the key length inside the key block is invalid")
    key = payload[2 : 2 + bits // 8]
    if len(key) not in _ALG_LENGTHS[header.algorithm]:
        raise TR31Error("the key length does not fit the header's algorithm")
    return key
