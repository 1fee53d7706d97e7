import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec import issuer
from codec.errors import CodecError
from codec.framing import LengthPrefixedDecoder, prefix_length
from codec.message import Message

from .strategies import decodes_or_codec_error, messages

BASE = {
    2: "6212345678901234567",
    3: "000000",
    4: "000000012345",
    7: "1125093015",
    11: "000042",
    12: "093015",
    13: "1125",
    14: "2812",
    18: "5411",
    22: "021",
    25: "00",
    32: "48615840",
    37: "000000004808",
    41: "12345678",
    42: "123456789012345",
    43: "POSHOST TEST MERCHANT SHANGHAI".ljust(40),
    49: "156",
    52: bytes.fromhex("0123456789ABCDEF"),
    53: "2600000000000000",
}

ORIG = issuer.original_data("0200", "000042", "1125093015", "48615840")

# one message of every issuer-link transaction type and management message (docs/issuer-contract.md)
CASES = {
    "balance_inquiry": ("0200", {**BASE, 3: "310000", 4: None}),
    "purchase": ("0200", BASE),
    "void": ("0200", {**BASE, 3: "200000", 90: ORIG}),
    "refund": ("0220", {**BASE, 3: "200000", 52: None}),
    "preauth": ("0100", {**BASE, 3: "030000", 25: "06"}),
    "preauth_cancel": ("0100", {**BASE, 3: "200000", 25: "06", 90: ORIG}),
    "completion": ("0200", {**BASE, 25: "06", 90: ORIG}),
    "completion_void": ("0200", {**BASE, 3: "200000", 25: "06", 90: ORIG}),
    "completion_advice": ("0220", {**BASE, 25: "06", 90: ORIG, 52: None}),
    "reversal": ("0400", {**BASE, 39: "98", 90: ORIG, 52: None}),
    "reversal_repeat": ("0401", {**BASE, 39: "98", 90: ORIG, 52: None}),
    "reversal_advice": ("0420", {**BASE, 39: "98", 90: ORIG, 95: "000000001000" + "0" * 30}),
    "sign_on": ("0800", {7: "1125093015", 11: "000001", 70: "001"}),
    "sign_off": ("0800", {7: "1125093015", 11: "000002", 70: "002"}),
    "echo": ("0800", {7: "1125093015", 11: "000003", 70: "301"}),
    "key_exchange": ("0800", {7: "1125093015", 11: "000004", 70: "101", 48: "A" * 32 + "1A2B3C"}),
    "balance_response": (
        "0210",
        {**BASE, 39: "00", 38: "123456", 54: "1002156C000000012345", 52: None},
    ),
    "with_icc_and_mac": (
        "0200",
        {**BASE, 55: bytes.fromhex("9F2608A1B2C3D4E5F60718"), 128: b"\x00" * 8},
    ),
    "track2": ("0200", {**BASE, 35: "6212345678901234567=28121011234"}),
}


def _msg(case):
    mti, fields = CASES[case]
    return Message(mti, {k: v for k, v in fields.items() if v is not None})


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_every_type(case):
    m = _msg(case)
    wire = issuer.encode(m)
    assert issuer.decode(wire) == m
    assert issuer.encode(issuer.decode(wire)) == wire


def test_wire_layout_ascii_mti_binary_bitmaps_ascii_lengths():
    m = Message("0800", {7: "1125093015", 11: "000001", 70: "001"})
    wire = issuer.encode(m)
    assert wire[:4] == b"0800"
    # primary bitmap: bit 1 (secondary present), 7, 11
    assert wire[4:12] == bytes.fromhex("8220000000000000")
    # secondary bitmap: bit 70 -> 6th bit of the secondary
    assert wire[12:20] == bytes.fromhex("0400000000000000")
    assert wire[20:] == b"1125093015000001001"
    # LLVAR with an ASCII length
    pan = issuer.encode(Message("0200", {2: "6212345678901234567"}))
    assert pan[12:] == b"196212345678901234567"


def test_framing_round_trip():
    wire = prefix_length(issuer.encode(_msg("purchase")))
    (body,) = LengthPrefixedDecoder().feed(wire)
    assert issuer.decode(body) == _msg("purchase")


def test_field_90_helpers():
    assert len(ORIG) == 42
    assert issuer.parse_original_data(ORIG) == ("0200", "000042", "1125093015", "00048615840")
    with pytest.raises(ValueError):
        issuer.original_data("200", "1", "2", "3")


def test_values_are_str_except_binary_fields():
    m = issuer.decode(issuer.encode(_msg("with_icc_and_mac")))
    assert isinstance(m[52], bytes) and isinstance(m[55], bytes) and isinstance(m[128], bytes)
    assert all(isinstance(m[n], str) for n in m.fields if n not in (52, 55, 128))


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({3: "00000"}, 3, "expecting 6"),
        ({3: "00000A"}, 3, "non-decimal"),
        ({2: "1" * 20}, 2, "larger than maximum"),
        ({52: "0011223344556677"}, 52, "expected bytes"),
        ({41: b"12345678"}, 41, "expected str"),
        ({64: "ABCDEF01"}, 64, "not defined"),
    ],
)
def test_encode_errors_name_the_field(fields, field, fragment):
    with pytest.raises(CodecError) as ei:
        issuer.encode(Message("0200", fields))
    assert ei.value.field == field and fragment in ei.value.reason


def test_decode_errors_name_field_and_offset():
    wire = issuer.encode(Message("0200", {3: "000000", 11: "000001"}))
    with pytest.raises(CodecError) as ei:
        issuer.decode(wire[:-2])
    assert ei.value.field == 11 and ei.value.offset == 18
    with pytest.raises(CodecError) as ei:
        issuer.decode(wire + b"x")
    assert "Extra data" in ei.value.reason
    with pytest.raises(CodecError) as ei:
        issuer.decode(b"02\x00")
    assert ei.value.field == "mti"
    bad_numeric = wire[:12] + b"00000A" + wire[18:]
    with pytest.raises(CodecError) as ei:
        issuer.decode(bad_numeric)
    assert ei.value.field == 3 and ei.value.offset == 12


def test_undefined_field_in_bitmap():
    # bit 5 is not an issuer field
    with pytest.raises(CodecError) as ei:
        issuer.decode(b"0200" + bytes.fromhex("0800000000000000") + b"x" * 12)
    assert ei.value.field == "bitmap" and "field 5" in ei.value.reason
    # bit 65 (tertiary bitmap) is not used
    with pytest.raises(CodecError):
        issuer.decode(b"0200" + bytes.fromhex("80000000000000008000000000000000") + bytes(8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(issuer.TABLE, mtis=("0100", "0200", "0220", "0400", "0420", "0800", "0810")))
def test_any_valid_message_round_trips(m):
    assert issuer.decode(issuer.encode(m)) == m


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_gives_message_or_codec_error(data):
    decodes_or_codec_error(issuer.decode, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(issuer.TABLE), st.data())
def test_truncations_and_corruptions(m, data):
    wire = issuer.encode(m)
    cut = data.draw(st.integers(min_value=0, max_value=max(len(wire) - 1, 0)))
    with pytest.raises(CodecError):
        issuer.decode(wire[:cut])
    pos = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
    flipped = wire[:pos] + bytes([wire[pos] ^ data.draw(st.integers(1, 255))]) + wire[pos + 1 :]
    decodes_or_codec_error(issuer.decode, flipped)
