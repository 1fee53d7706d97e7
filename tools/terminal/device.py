"""The terminal as a device: it holds its own clear keys (a real PIN pad does), numbers its
messages, builds requests in the terminal dialect, MACs them, and checks responses the way real
terminals do (MAC, echoed 3/11/41/42). It talks to a host only through bytes, so it works
against any host speaking the dialect.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from codec import subfields
from codec import terminal as terminal_codec
from codec.framing import Envelope, build_envelope
from codec.message import FieldValue, Message
from keys import des, pinblock
from keys.checkvalue import kcv
from keys.mac import unionpay_ecb_mac, verify

MAC_CLASSES = ("01", "02", "04")


class TerminalError(Exception):
    """The host's answer is not acceptable to a terminal (bad MAC, wrong echo, bad keys)."""


# (MTI, processing code, condition code, 60.1) of each financial type, as in DIALECT.md.
TYPES: dict[str, tuple[str, str, str, str]] = {
    "balance_inquiry": ("0200", "310000", "00", "01"),
    "purchase": ("0200", "000000", "00", "22"),
    "void": ("0200", "200000", "00", "23"),
    "refund": ("0220", "200000", "00", "25"),
    "preauth": ("0100", "030000", "06", "10"),
    "preauth_cancel": ("0100", "200000", "06", "11"),
    "completion": ("0200", "000000", "06", "20"),
    "completion_void": ("0200", "200000", "06", "21"),
    "completion_advice": ("0220", "000000", "06", "24"),
}


@attrs.define
class Device:
    tid: str
    mid: str
    tmk: bytes = attrs.field(repr=False)
    key_mode: str = "003"  # sign-on layout: 001, 003, 004
    batch: str = "000001"
    stan: int = 0
    pik: bytes | None = attrs.field(default=None, repr=False)
    mak: bytes | None = attrs.field(default=None, repr=False)
    tdk: bytes | None = attrs.field(default=None, repr=False)
    tpdu: bytes = bytes.fromhex("6000030000")
    header: bytes = bytes.fromhex("603100000000")

    def next_stan(self) -> str:
        self.stan = self.stan % 999999 + 1
        return f"{self.stan:06d}"

    # -- requests ------------------------------------------------------------------------
    def sign_on_request(self, operator: str = "01 ") -> Message:
        return Message(
            "0800",
            {
                11: self.next_stan(),
                41: self.tid,
                42: self.mid,
                60: subfields.Field60("00", self.batch, self.key_mode).format(),
                63: operator,
            },
        )

    def management_request(self, mti: str, nmc: str) -> Message:
        return Message(
            mti,
            {
                11: self.next_stan(),
                41: self.tid,
                42: self.mid,
                60: subfields.Field60("00", self.batch, nmc).format(),
            },
        )

    def financial_request(
        self,
        txn_type: str,
        *,
        pan: str | None = None,
        amount: int | None = None,
        pin: str | None = None,
        expiry: str | None = None,
        stan: str | None = None,
        extra: Mapping[int, FieldValue | None] | None = None,
    ) -> Message:
        mti, proc, cond, f601 = TYPES[txn_type]
        fields: dict[int, FieldValue] = {
            3: proc,
            11: stan or self.next_stan(),
            22: "021" if pin else "022",
            25: cond,
            41: self.tid,
            42: self.mid,
            49: "156",
            60: subfields.Field60(f601, self.batch, "000").format(),
        }
        if pan is not None:
            fields[2] = pan
        if amount is not None:
            fields[4] = f"{amount:012d}"
        if expiry is not None:
            fields[14] = expiry
        if pin is not None:
            if pan is None or self.pik is None:
                raise TerminalError("a PIN needs a PAN and a signed-on PIK")
            clear = pinblock.encode(0, pin, pan)
            fields[26] = "12"
            fields[52] = des.encrypt_ecb(self.pik, clear)
            fields[53] = "2600000000000000" if len(self.pik) == 16 else "2000000000000000"
        msg = Message(mti, fields)
        return msg.with_fields(extra) if extra else msg

    def reversal_of(self, original: Message, reason: str = "98") -> Message:
        """The original request with the same STAN, without 26/35/36/37/52/53, 39 = reason."""
        return (
            original.with_mti("0400").without(26, 35, 36, 37, 52, 53, 64).with_fields({39: reason})
        )

    # -- bytes -----------------------------------------------------------------------------
    def encode(self, msg: Message) -> bytes:
        if msg.mti[:2] in MAC_CLASSES:
            if self.mak is None:
                raise TerminalError("sign on first: no MAK")
            mak = self.mak
            return terminal_codec.encode_with_mac(
                msg.without(64), lambda data: unionpay_ecb_mac(mak, data).decode("ascii")
            )
        return terminal_codec.encode(msg)

    def envelope(self, payload: bytes) -> Envelope:
        return build_envelope(payload, tpdu=self.tpdu, header=self.header)

    # -- responses -------------------------------------------------------------------------
    def check_response(self, request: Message, payload: bytes) -> Message:
        resp = terminal_codec.decode(payload)
        if resp.mti != f"{int(request.mti) + 10:04d}":
            raise TerminalError(f"response MTI {resp.mti} to a {request.mti}")
        for n in (3, 11, 41, 42):
            if n in request and resp.get(n) != request.get(n):
                raise TerminalError(f"field {n} not echoed")
        if resp.get(39) == "00" and 4 in request and resp.get(4) != request.get(4):
            raise TerminalError("approved amount differs")
        if resp.mti[:2] in MAC_CLASSES and 64 in resp and self.mak is not None:
            expected = unionpay_ecb_mac(self.mak, terminal_codec.mac_data(payload))
            if not verify(expected, str(resp[64]).encode("ascii")):
                raise TerminalError("response MAC is wrong")
        return resp

    def accept_sign_on(self, resp: Message) -> None:
        """Decrypt the working keys under the TMK and check each check value."""
        if resp.get(39) != "00":
            raise TerminalError(f"sign-on declined: {resp.get(39)}")
        mode = subfields.Field60.parse(str(resp[60])).nmc or self.key_mode
        keys = subfields.parse_signon_keys(bytes(resp[62]), mode)
        pik = des.decrypt_ecb(self.tmk, keys.pik)
        mak = des.decrypt_ecb(self.tmk, keys.mak)
        if kcv(pik, 4) != keys.pik_cv or kcv(mak, 4) != keys.mak_cv:
            raise TerminalError("working key check value mismatch")
        tdk = None
        if keys.tdk is not None:
            tdk = des.decrypt_ecb(self.tmk, keys.tdk)
            if kcv(tdk, 4) != keys.tdk_cv:
                raise TerminalError("TDK check value mismatch")
        self.pik, self.mak, self.tdk = pik, mak, tdk
        self.batch = subfields.Field60.parse(str(resp[60])).batch or self.batch
