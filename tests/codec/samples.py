"""One terminal-dialect message of every transaction and management message type
(docs/terminal-dialect.md).

Shared by the round-trip, transaction-type and dump tests so they all cover the same rows.
"""

from __future__ import annotations

from codec.message import Message

PAN = "6228480402564890018"
TRACK2 = PAN + "=28121011234567"
COMMON = {11: "000139", 41: "12345678", 42: "123456789012345"}
CARD = {2: PAN, 14: "2812", 22: "021", 35: TRACK2, 49: "156"}
PIN = {26: "12", 52: bytes.fromhex("8D3F2A1B0C9E7766"), 53: "2600000000000000"}
ORIG61 = "000001000120" + "1125"  # original batch, STAN, date


def _m(mti: str, **named) -> Message:
    fields: dict = {}
    for part in named.pop("parts", ()):
        fields.update(part)
    fields.update({int(k[1:]): v for k, v in named.items()})
    return Message(mti, fields)


TXN_REQUESTS: dict[str, Message] = {
    "balance_inquiry": _m("0200", parts=(COMMON, CARD, PIN), f3="310000", f25="00", f60="01000001"),
    "purchase": _m(
        "0200",
        parts=(COMMON, CARD, PIN),
        f3="000000",
        f4="000000012345",
        f25="00",
        f60="22000001000501",
        f63="01 ",
        f64="1A2B3C4D",
    ),
    "void": _m(
        "0200",
        parts=(COMMON, CARD),
        f3="200000",
        f4="000000012345",
        f25="00",
        f37="000000004808",
        f38="002098",
        f60="23000001",
        f61=ORIG61,
        f64="1A2B3C4D",
    ),
    "refund": _m(
        "0220",
        parts=(COMMON, CARD),
        f3="200000",
        f4="000000000500",
        f25="00",
        f37="000000004808",
        f60="25000001",
        f61="000000000000" + "1124",
        f64="1A2B3C4D",
    ),
    "preauth": _m(
        "0100", parts=(COMMON, CARD, PIN), f3="030000", f4="000000100000", f25="06", f60="10000001"
    ),
    "preauth_cancel": _m(
        "0100",
        parts=(COMMON, CARD),
        f3="200000",
        f4="000000100000",
        f25="06",
        f38="123456",
        f60="11000001",
        f61=ORIG61,
    ),
    "completion": _m(
        "0200",
        parts=(COMMON, CARD),
        f3="000000",
        f4="000000090000",
        f25="06",
        f38="123456",
        f60="20000001",
        f61=ORIG61,
    ),
    "completion_void": _m(
        "0200",
        parts=(COMMON, CARD),
        f3="200000",
        f4="000000090000",
        f25="06",
        f37="000000004809",
        f38="123456",
        f60="21000001",
        f61=ORIG61,
    ),
    "completion_advice": _m(
        "0220",
        parts=(COMMON, CARD),
        f3="000000",
        f4="000000090000",
        f25="06",
        f38="123456",
        f60="24000001",
        f61=ORIG61,
    ),
    "reversal": _m(
        "0400",
        parts=(COMMON,),
        f2=PAN,
        f3="000000",
        f4="000000012345",
        f22="021",
        f25="00",
        f39="98",
        f49="156",
        f60="22000001",
        f64="1A2B3C4D",
    ),
    "sign_on": _m(
        "0800", f11="000001", f41="12345678", f42="123456789012345", f60="00000001003", f63="01 "
    ),
    "sign_on_single": _m(
        "0800", f11="000002", f41="12345678", f42="123456789012345", f60="00000001001", f63="01 "
    ),
    "sign_on_tdk": _m(
        "0800",
        f11="000003",
        f41="12345678",
        f42="123456789012345",
        f60="00000001004",
        f62=b"Sequence No16" + b"0123ABC-45678901",
        f63="01 ",
    ),
    "sign_off": _m("0820", f11="000004", f41="12345678", f42="123456789012345", f60="00000001002"),
    "echo": _m("0820", f11="000005", f41="12345678", f42="123456789012345", f60="00000001301"),
    "parameter_download": _m(
        "0800", f11="000006", f41="12345678", f42="123456789012345", f60="00000001360"
    ),
    "settlement": _m(
        "0500",
        f11="000007",
        f41="12345678",
        f42="123456789012345",
        f48="000000123456001"
        + "000000000500001"
        + "0"
        + "000000000000000"
        + "000000000000000"
        + "0",
        f49="156",
        f60="00000001201",
        f63="01 ",
    ),
    "batch_upload": _m(
        "0320",
        f11="000008",
        f41="12345678",
        f42="123456789012345",
        f48="01" + "00" + "19" + PAN + "000000012345" + "000139" + "22",
        f60="00000001201",
    ),
    "batch_upload_end": _m(
        "0320", f11="000009", f41="12345678", f42="123456789012345", f48="0001", f60="00000001202"
    ),
}

ECHO = (3, 11, 25, 41, 42, 60)

RESPONSES: dict[str, Message] = {
    "purchase_response": TXN_REQUESTS["purchase"].response(
        code="00",
        echo=ECHO,
        extra={
            12: "112604",
            13: "1031",
            37: "000000004808",
            38: "002098",
            32: "48615840",
            44: "0000000000000000000000",
            63: "CUP",
        },
    ),
    "balance_response": TXN_REQUESTS["balance_inquiry"].response(
        code="00", echo=ECHO, extra={54: "1002156C000000012345"}
    ),
    "sign_on_response": TXN_REQUESTS["sign_on"].response(
        code="00", echo=ECHO, extra={60: "00000002003", 62: bytes(40)}
    ),
    "settlement_response": TXN_REQUESTS["settlement"].response(
        code="00", echo=ECHO, extra={48: "0" * 30 + "1" + "0" * 30 + "1"}
    ),
}
