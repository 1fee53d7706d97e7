"""The terminal as a device: it holds its own clear keys (a real PIN pad does), numbers its
messages, builds requests in the terminal dialect, MACs them, and checks responses the way real
terminals do (MAC, echoed 3/11/41/42). It talks to a host only through bytes, so it works
against any host speaking the dialect.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from codec import subfields, txntypes
from codec import terminal as terminal_codec
from codec.framing import Envelope, build_envelope
from codec.message import FieldValue, Message
from keys import des, dukpt, pinblock
from keys.checkvalue import kcv
from keys.mac import unionpay_ecb_mac, unionpay_ecb_mac_with, verify

MAC_CLASSES = ("01", "02", "04")
# X9.24-1 Annex A test KSN (base, counter 0): the demo DUKPT terminal's initial KSN.
DEMO_INITIAL_KSN = bytes.fromhex("FFFF9876543210E00000")


class TerminalError(Exception):
    """The host's answer is not acceptable to a terminal (bad MAC, wrong echo, bad keys)."""


class HostUnreachable(TerminalError):
    """No TCP connection to the host (refused, timed out): nothing was sent."""


class BadResponseMac(TerminalError):
    """The response's MAC does not verify: the terminal must not trust it (and reverses)."""


# (MTI, processing code, condition code, 60.1) of each financial type a terminal sends, from
# the transaction registry (specs/transactions.toml; account-type digits 0000).
TYPES: dict[str, tuple[str, str, str, str]] = {
    t.name: (t.request_mti, t.processing + "0000", t.condition, t.type_code)
    for t in txntypes.TYPES.values()
    if t.journal or t.channel == "qr"  # the QR query is a question, not a journal row
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
    # DUKPT PIN pad (our extension): the IPEK injected at the factory and the current KSN.
    ipek: bytes | None = attrs.field(default=None, repr=False)
    ksn: bytes | None = None
    _mac_ecb: object = attrs.field(default=None, init=False, repr=False, eq=False)
    _mac_key: bytes | None = attrs.field(default=None, init=False, repr=False, eq=False)

    @property
    def dukpt(self) -> bool:
        return self.ipek is not None

    def next_ksn(self) -> bytes:
        """Advance the KSN counter to the next value with at most 10 one bits (X9.24)."""
        if self.ksn is None:
            raise TerminalError("DUKPT terminal without a KSN")
        value = int.from_bytes(self.ksn, "big")
        base, counter = value & ~0x1FFFFF, value & 0x1FFFFF
        counter += 1
        while bin(counter).count("1") > 10:
            counter += counter & -counter
        if counter > 0x1FFFFF:
            raise TerminalError("DUKPT KSN counter exhausted")
        self.ksn = (base | counter).to_bytes(10, "big")
        return self.ksn

    def pin_block(self, pin: str, pan: str) -> tuple[bytes, dict[int, FieldValue]]:
        """The enciphered format-0 PIN block and the fields that go with it (26, 53, 62 KSN)."""
        clear = pinblock.encode(0, pin, pan)
        if self.dukpt:
            ksn = self.next_ksn()
            key = dukpt.pin_key(dukpt.derive_transaction_key(bytes(self.ipek), ksn))
            return des.encrypt_ecb(key, clear), {26: "12", 53: "2600000000000000", 62: ksn}
        if self.pik is None:
            raise TerminalError("a PIN needs a signed-on PIK")
        algorithm = "2600000000000000" if len(self.pik) == 16 else "2000000000000000"
        return des.encrypt_ecb(self.pik, clear), {26: "12", 53: algorithm}

    def mac(self, data: bytes) -> str:
        """Field 64 over ``data`` with the MAK; one cipher object per MAK (cheap for load)."""
        if self.mak is None:
            raise TerminalError("sign on first: no MAK")
        if self._mac_key != self.mak:
            self._mac_ecb, self._mac_key = des.new_ecb(self.mak), self.mak
        return unionpay_ecb_mac_with(self._mac_ecb.encrypt, data).decode("ascii")

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

    def sign_off_request(self, *, mac: bool = True) -> Message:
        """0820 sign-off (60.3 002). With ``mac`` (and a MAK) it carries field 64 under the
        MAK, our extension: the host then honours it from any connection, not only from the
        one that proved the keys (a terminal that connects per message needs that)."""
        msg = self.management_request("0820", "002")
        return msg.with_fields({64: "00000000"}) if mac and self.mak is not None else msg

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
        track2: str | None = None,
        rrn: str | None = None,
        auth_code: str | None = None,
        original: subfields.Field61 | None = None,
        payee: str | None = None,
    ) -> Message:
        """A financial request of ``txn_type`` (a key of TYPES). Card by PAN (+ expiry, entry
        mode 01 manual) or track 2 (entry mode 02 swipe); ``original`` fills 61 (with ``rrn``
        in 37 and ``auth_code`` in 38) for voids, refunds and the pre-auth family; ``payee``
        is a transfer's card to credit, in the registry's payee field (48), sent as given: the
        host judges it (a tester must be able to send a bad one)."""
        mti, proc, cond, f601 = TYPES[txn_type]
        entry = "02" if track2 else "01"
        fields: dict[int, FieldValue] = {
            3: proc,
            11: stan or self.next_stan(),
            22: entry + ("1" if pin else "2"),
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
        if track2 is not None:
            fields[35] = track2
        if rrn is not None:
            fields[37] = rrn
        if auth_code is not None:
            fields[38] = auth_code
        if original is not None:
            fields[61] = original.format()
        if payee is not None:
            payee_field = txntypes.TYPES[txn_type].payee
            if payee_field is None:
                raise TerminalError(f"{txn_type} carries no payee")
            fields[payee_field] = payee
        if pin is not None:
            card = pan or (track2.split("=", 1)[0] if track2 else None)
            if card is None:
                raise TerminalError("a PIN needs a PAN or track 2")
            fields[52], security = self.pin_block(pin, card)
            fields.update(security)
        msg = Message(mti, fields)
        return msg.with_fields(extra) if extra else msg

    def reversal_of(self, original: Message, reason: str = "98") -> Message:
        """The original request with the same STAN, without 26/35/36/37/52/53, 39 = reason.

        A void's 37 names its original and stays: the reversal must say what it reverses."""
        drop = [26, 35, 36, 52, 53, 62, 64]
        if 61 not in original:
            drop.append(37)
        return original.with_mti("0400").without(*drop).with_fields({39: reason})

    def settlement_request(
        self,
        domestic: subfields.SettlementTotals,
        foreign: subfields.SettlementTotals,
        operator: str = "01 ",
    ) -> Message:
        """0500 batch settlement (60.3 201) with the terminal's own totals in 48."""
        return Message(
            "0500",
            {
                11: self.next_stan(),
                41: self.tid,
                42: self.mid,
                48: subfields.format_field48_settlement(domestic, foreign),
                49: "156",
                60: subfields.Field60("00", self.batch, "201").format(),
                63: operator,
            },
        )

    def batch_upload_request(self, records: list[subfields.BatchRecord]) -> Message:
        """0320 batch upload detail records (60.3 201)."""
        return Message(
            "0320",
            {
                11: self.next_stan(),
                41: self.tid,
                42: self.mid,
                48: subfields.format_batch_upload(records),
                60: subfields.Field60("00", self.batch, "201").format(),
            },
        )

    def batch_upload_end(self, count: int) -> Message:
        """0320 end of batch upload (60.3 202) with the number of records sent."""
        return Message(
            "0320",
            {
                11: self.next_stan(),
                41: self.tid,
                42: self.mid,
                48: subfields.format_batch_end(count),
                60: subfields.Field60("00", self.batch, "202").format(),
            },
        )

    # -- bytes -----------------------------------------------------------------------------
    def encode(self, msg: Message) -> bytes:
        """MAC'd: financial messages, and any other carrying a field-64 placeholder."""
        if msg.mti[:2] in MAC_CLASSES or 64 in msg:
            if self.mak is None:
                raise TerminalError("sign on first: no MAK")
            return terminal_codec.encode_with_mac(msg.without(64), self.mac)
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
        if resp.mti[:2] in MAC_CLASSES and self.mak is not None:
            if 64 not in resp:
                # An answer to a MAC'd request is MAC'd, unless the host could not (format
                # error, unknown terminal, MAC error): those carry no MAC and are no approval.
                if resp.get(39) == "00":
                    raise BadResponseMac("approved response without a MAC")
                return resp
            expected = unionpay_ecb_mac(self.mak, terminal_codec.mac_data(payload))
            if not verify(expected, str(resp[64]).encode("ascii")):
                raise BadResponseMac("response MAC is wrong")
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
