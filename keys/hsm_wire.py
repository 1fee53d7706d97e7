"""payShield-style host commands, sans-IO: frame building and parsing, nothing else.

The host's network HSM client (host/hsm/network.py) and the simulator (tools/hsm_sim) both use
this module, so the two ends cannot drift apart; neither sockets nor clocks live here.

A frame is a 2-byte big-endian length, then a 4-character header the HSM echoes unchanged
(the client matches answers to requests by it, so several requests can be in flight on one
connection), then a 2-character command code (answers: the code with its second letter
advanced, CA -> CB) and the command's fields; an answer has a 2-digit error code right after its
code. Key fields carry the host's own key token text (type, algorithm, check value and the
cryptogram under the LMK), 3-digit length first, because the token binds the key's type.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

HEADER_LEN = 4
MAX_FRAME = 32 * 1024

OK = "00"
VERIFY_FAILED = "01"  # M9: the MAC does not verify
KEY_ERROR = "10"  # a key token did not authenticate, or its type may not do this
INPUT_ERROR = "15"  # a field is malformed
PIN_BLOCK_ERROR = "20"
FORMAT_CODE_ERROR = "23"
INTERNAL_ERROR = "41"
UNKNOWN_COMMAND = "68"  # payShield's "command disabled": the simulator has no such command

# ISO 9564-1 PIN block formats <-> payShield format codes.
PIN_FORMAT_CODES = {0: "01", 1: "05", 3: "47", 4: "48"}
PIN_FORMATS = {code: fmt for fmt, code in PIN_FORMAT_CODES.items()}

# G0 for an AES BDK: the X9.24-3-2017 working key the device enciphered its PIN block with,
# as the last digit of the standard's algorithm indicator (0000 2TDEA ... 0004 AES-256).
DUKPT_WORKING_KEY_CODES = {"TDES2": "0", "TDES3": "1", "AES128": "2", "AES192": "3", "AES256": "4"}
DUKPT_WORKING_KEYS = {code: name for name, code in DUKPT_WORKING_KEY_CODES.items()}
AES_WORKING_KEYS = frozenset({"AES128", "AES192", "AES256"})  # 16-byte block, format 4

# TK (this protocol's own, simulator only): the key types a configuration may hold as clear
# TEST keys (links.*.zpk_clear_test_key, the demo estate's TMKs and BDKs).
TEST_KEY_TYPES = frozenset({"TMK", "ZPK", "BDK", "BDK_AES"})

# MAC algorithm codes of M6/M8 (1 and 3 as payShield; U is this protocol's UnionPay ECB MAC).
MAC_ALGORITHM_CODES = {"x9.9": "1", "x9.19": "3", "unionpay_ecb": "U", "cmac": "6"}
MAC_ALGORITHMS = {code: name for name, code in MAC_ALGORITHM_CODES.items()}


class WireError(ValueError):
    """A frame or field that does not parse (the HSM answers 15; the client drops the link)."""


def answer_code(command: str) -> str:
    """CA -> CB, NC -> ND: payShield answers with the second letter advanced by one."""
    return command[0] + chr(ord(command[1]) + 1)


def frame(header: str, body: str | bytes) -> bytes:
    """Length prefix + header + body; the body is latin-1 text (MAC input may be binary)."""
    if len(header) != HEADER_LEN:
        raise WireError("the header is 4 characters")
    raw = header.encode("ascii") + (body.encode("latin-1") if isinstance(body, str) else body)
    if len(raw) > MAX_FRAME:
        raise WireError("frame too long")
    return len(raw).to_bytes(2, "big") + raw


@attrs.define
class FrameDecoder:
    """Fed bytes as they arrive, yields (header, body) of every complete frame (h11's shape)."""

    _buffer: bytearray = attrs.field(factory=bytearray)

    def feed(self, data: bytes) -> Iterator[tuple[str, str]]:
        self._buffer += data
        while len(self._buffer) >= 2:
            size = int.from_bytes(self._buffer[:2], "big")
            if size < HEADER_LEN + 2:
                raise WireError("frame shorter than header and code")
            if len(self._buffer) < 2 + size:
                return
            raw = bytes(self._buffer[2 : 2 + size])
            del self._buffer[: 2 + size]
            text = raw.decode("latin-1")
            yield text[:HEADER_LEN], text[HEADER_LEN:]


@attrs.define
class Fields:
    """A cursor over a command's or answer's fields."""

    text: str
    pos: int = 0

    def take(self, n: int) -> str:
        if self.pos + n > len(self.text):
            raise WireError("message ends inside a field")
        value = self.text[self.pos : self.pos + n]
        self.pos += n
        return value

    def digits(self, n: int) -> str:
        value = self.take(n)
        if not value.isdigit():
            raise WireError("a numeric field holds a non-digit")
        return value

    def hex(self, n: int) -> bytes:
        try:
            return bytes.fromhex(self.take(n))
        except ValueError:
            raise WireError("a hex field holds a non-hex character") from None

    def key(self) -> str:
        return self.take(int(self.digits(3)))

    def sized(self, width: int = 2) -> str:
        return self.take(int(self.digits(width)))

    def optional(self, marker: str) -> bool:
        if self.text.startswith(marker, self.pos):
            self.pos += len(marker)
            return True
        return False

    def rest(self) -> str:
        value = self.text[self.pos :]
        self.pos = len(self.text)
        return value

    def end(self) -> None:
        if self.pos != len(self.text):
            raise WireError("unexpected data after the last field")


def key_field(token_text: str) -> str:
    if len(token_text) > 999:
        raise WireError("key token too long")
    return f"{len(token_text):03d}{token_text}"


def sized_field(value: str, width: int = 2) -> str:
    if len(value) >= 10**width:
        raise WireError("field too long")
    return f"{len(value):0{width}d}{value}"


def account_number(pan: str) -> str:
    """The 12 right-most PAN digits excluding the check digit, as CA/G0 carry them."""
    if not pan.isdigit() or not 8 <= len(pan) <= 19:
        raise WireError("a PAN is 8 to 19 digits")
    return pan[:-1][-12:].rjust(12, "0")


def pan_from_account(account: str) -> str:
    """A PAN whose 12 right-most digits before the check digit are ``account`` (formats 0/3
    use only those), so the software HSM can decode a block from what the wire carried."""
    return account + "0"


# -- commands (client side builds, simulator parses the same layout) -------------------------


def ca_translate_tpk(tpk: str, zpk: str, block: bytes, src_fmt: int, dst_fmt: int, pan: str) -> str:
    """CA: translate a PIN block from a TPK to a ZPK."""
    return (
        "CA"
        + key_field(tpk)
        + key_field(zpk)
        + "12"
        + block.hex().upper()
        + _fmt(src_fmt)
        + _fmt(dst_fmt)
        + account_number(pan)
    )


def g0_translate_dukpt(
    bdk: str,
    zpk: str,
    ksn: bytes,
    block: bytes,
    src_fmt: int,
    dst_fmt: int,
    pan: str,
    working_key: str | None = None,
) -> str:
    """G0: translate a PIN block from the DUKPT key of a KSN to a ZPK.

    A TDES BDK (X9.24-1) takes a 10-byte KSN. An AES BDK (X9.24-3) takes a 12-byte KSN and
    the working key the device used (``working_key``: ``TDES2`` ... ``AES256``); a format 4
    source block is 16 bytes and binds the whole PAN, so the PAN goes in full (2N + PAN) instead
    of the 12-digit account number.
    """
    if working_key is None:
        if len(ksn) != 10:
            raise WireError("G0 with a TDES BDK carries a 10-byte KSN")
        wk = ""
    else:
        if len(ksn) != 12:
            raise WireError("G0 with an AES BDK carries a 12-byte KSN")
        code = DUKPT_WORKING_KEY_CODES.get(working_key.upper())
        if code is None:
            raise WireError(f"no G0 working key code for {working_key!r}")
        wk = code
    aes_block = working_key is not None and working_key.upper() in AES_WORKING_KEYS
    if len(block) != (16 if aes_block else 8):
        raise WireError("the PIN block is 16 bytes under an AES working key, else 8")
    return (
        "G0"
        + key_field(bdk)
        + key_field(zpk)
        + "605"  # KSN descriptor: as payShield, informational here (the BDK's type sets the KSN)
        + ksn.hex().upper()
        + wk
        + block.hex().upper()
        + _fmt(src_fmt)
        + _fmt(dst_fmt)
        + (full_pan(pan) if src_fmt == 4 else account_number(pan))
    )


def full_pan(pan: str) -> str:
    """The whole PAN, 2-digit length first: what a format 4 block binds."""
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise WireError("a PAN is 12 to 19 digits")
    return sized_field(pan)


def m2_decrypt_data(key: str, data: bytes) -> str:
    """M2: decrypt whole blocks under a data key (TDES-ECB), hex in and out."""
    if not data or len(data) % 8 or len(data) > 0x7FFF:
        raise WireError("M2 decrypts whole 8-byte blocks")
    return (
        "M2"
        + "00"  # mode: ECB
        + "1"  # input format: hex
        + "1"  # output format: hex
        + "TDK"  # key type: this protocol names it (the token binds it); payShield has a code
        + key_field(key)
        + f"{len(data):04X}"
        + data.hex().upper()
    )


def bu_check_value(key: str) -> str:
    """BU: the check value of a key, computed by the HSM from the key itself. payShield's key
    type code and length flag are left out: the token names both."""
    return "BU" + key_field(key)


def tk_import_test_key(key_type: str, clear: bytes) -> str:
    """TK (this protocol's own, not payShield's): wrap a published clear TEST key under the
    LMK. Only a simulator started with ``--test-keys`` has it; others answer 68."""
    if len(clear) not in (8, 16, 24, 32):
        raise WireError("a key is 8, 16, 24 or 32 bytes")
    return "TK" + sized_field(key_type) + sized_field(clear.hex().upper())


def m6_generate_mac(mak: str, data: bytes, algorithm: str, padding: int) -> str:
    return "M6" + _mac_head(mak, data, algorithm, padding)


def m8_verify_mac(mak: str, data: bytes, mac: bytes, algorithm: str, padding: int) -> str:
    return "M8" + _mac_head(mak, data, algorithm, padding) + mac.hex().upper()


def _mac_head(mak: str, data: bytes, algorithm: str, padding: int) -> str:
    code = MAC_ALGORITHM_CODES.get(algorithm)
    if code is None:
        raise WireError(f"no M6 algorithm code for {algorithm!r}")
    if len(data) > 0xFFFF:
        raise WireError("MAC input too long")
    return (
        "0"  # mode: only block
        + "0"  # input format: binary
        + code
        + str(int(padding))
        + key_field(mak)
        + f"{len(data):04X}"
        + data.decode("latin-1")
    )


def a0_generate_key(key_type: str, length: int, kek: str | None = None) -> str:
    """A0: generate a key (mode 0), or generate and export it under a TMK/ZMK/KEK (mode 1)."""
    scheme = {8: "Z", 16: "U", 24: "T", 32: "A"}.get(length)
    if scheme is None:
        raise WireError("a key is 8, 16, 24 or 32 bytes")
    body = "A0" + ("1" if kek else "0") + sized_field(key_type) + scheme
    if kek:
        body += ";" + key_field(kek)
    return body


def a8_export_key(token: str, kek: str) -> str:
    """A8: export a key under a TMK/ZMK/KEK."""
    return "A8" + key_field(kek) + key_field(token)


def nc_diagnostics() -> str:
    return "NC"


def _fmt(fmt: int) -> str:
    code = PIN_FORMAT_CODES.get(fmt)
    if code is None:
        raise WireError(f"no payShield format code for PIN block format {fmt}")
    return code


def parse_answer(expected: str, body: str) -> tuple[str, Fields]:
    """(error code, fields after it) of an answer to command ``expected``."""
    if len(body) < 4:
        raise WireError("answer shorter than code and error code")
    if body[:2] != answer_code(expected):
        raise WireError(f"answer {body[:2]!r} to command {expected}")
    error = body[2:4]
    if not error.isdigit():
        raise WireError("the error code is not 2 digits")
    return error, Fields(body, 4)
