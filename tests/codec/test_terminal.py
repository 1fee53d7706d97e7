import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec import terminal
from codec.errors import CodecError
from codec.framing import LengthPrefixedDecoder, parse_envelope
from codec.message import Message

from .samples import RESPONSES, TXN_REQUESTS
from .strategies import decodes_or_codec_error, messages

FIXTURES = json.loads(
    (Path(__file__).parent / "fixtures" / "terminal-samples.json").read_text(encoding="utf-8")
)
BINARY = {52, 55, 62}


def _payload(fx) -> bytes:
    data = bytes.fromhex(fx["hex"])
    if fx["framing"].startswith("length"):
        (body,) = LengthPrefixedDecoder().feed(data)
        env = parse_envelope(body)
        assert env.tpdu.hex().upper() == fx["expect"]["tpdu"]
        assert env.header.hex().upper() == fx["expect"]["header"]
        return env.payload
    return data


@pytest.mark.parametrize("fx", FIXTURES, ids=[f["name"] for f in FIXTURES])
def test_public_dumps_decode_to_expected_fields(fx):
    m = terminal.decode(_payload(fx))
    assert m.mti == fx["expect"]["mti"]
    for key, want in fx["expect"]["fields"].items():
        n = int(key)
        got = m[n]
        assert (got.hex().upper() if n in BINARY else got) == want, n


def test_dump_without_f_pad_re_encodes_byte_for_byte():
    (fx,) = [f for f in FIXTURES if f["name"].startswith("purchase response")]
    payload = _payload(fx)
    assert terminal.encode(terminal.decode(payload)) == payload


def test_request_dump_with_encrypted_track_re_encodes_byte_for_byte():
    (fx,) = [f for f in FIXTURES if f["name"].startswith("purchase request")]
    payload = _payload(fx)
    m = terminal.decode(payload)
    # the encrypted track keeps its non-decimal nibbles; D shows as the separator
    assert m[35].startswith("6013822000594988787=B26C")
    assert terminal.encode(m) == payload


def test_f_pad_accepted_and_zero_pad_sent():
    (fx,) = [f for f in FIXTURES if f["name"].startswith("sign-on response")]
    payload = _payload(fx)
    m = terminal.decode(payload)
    assert m[60] == "00000001003"
    again = terminal.encode(m)
    assert again == payload.replace(bytes.fromhex("00000001003F"), bytes.fromhex("000000010030"))


def test_f_pad_in_several_fields_and_field_22():
    m = Message("0200", {2: "6212345678901234567", 22: "021", 32: "123", 60: "22000001000"})
    wire = terminal.encode(m)
    # every pad nibble 0 -> F: PAN (odd), 22 (left-aligned), 32 (odd), 60 (odd)
    patched = (
        wire.replace(
            bytes.fromhex("19621234567890123456 70"), bytes.fromhex("19621234567890123456 7F")
        )
        .replace(bytes.fromhex("0210"), bytes.fromhex("021F"), 1)
        .replace(bytes.fromhex("031230"), bytes.fromhex("03123F"))
        .replace(bytes.fromhex("0011 220000010000"), bytes.fromhex("0011 22000001000F"))
    )
    assert patched != wire
    assert terminal.decode(patched) == m


def test_pad_other_than_0_or_f_refused():
    m = Message("0200", {2: "6212345678901234567"})
    wire = terminal.encode(m)
    with pytest.raises(CodecError) as ei:
        terminal.decode(wire[:-1] + bytes([wire[-1] | 0x05]))
    assert ei.value.field == 2 and ei.value.offset == 11


def test_wire_details():
    m = Message(
        "0200",
        {
            3: "000000",
            22: "021",
            23: "001",
            32: "12345678901",
            44: "AB",
            52: b"\x01\x02\x03\x04\x05\x06\x07\x08",
            64: "52A6DBEC",
        },
    )
    wire = terminal.encode(m)
    assert wire[:2] == b"\x02\x00"
    body = wire[10:]
    assert (
        body
        == bytes.fromhex(
            "000000"  # 3
            "0210"  # 22 left-aligned
            "0001"  # 23 right-aligned
            "11 123456789010"  # 32 LL counts digits, right pad 0
            "02 4142"  # 44 LL counts bytes
            "0102030405060708"  # 52
        )
        + b"52A6DBEC"
    )  # 64 as ASCII hex


def test_fixed_text_fields_space_padded_on_encode():
    wire = terminal.encode(Message("0800", {63: "01 ", 41: "1234"}))
    assert terminal.decode(wire)[41] == "1234    "


@pytest.mark.parametrize("name", sorted({**TXN_REQUESTS, **RESPONSES}))
def test_round_trip_every_transaction_and_management_message(name):
    m = {**TXN_REQUESTS, **RESPONSES}[name]
    wire = terminal.encode(m)
    assert terminal.decode(wire) == m
    assert terminal.encode(terminal.decode(wire)) == wire


def test_encode_with_mac_and_mac_data():
    seen = []

    def mac(data: bytes) -> str:
        seen.append(data)
        return "0A1B2C3D"

    m = TXN_REQUESTS["purchase"].without(64)
    wire = terminal.encode_with_mac(m, mac)
    assert terminal.decode(wire)[64] == "0A1B2C3D"
    assert seen == [terminal.mac_data(wire)] and wire[:-8] == seen[0]
    assert wire[9] & 1  # bit 64 set, covered by the MAC
    no_mac = terminal.encode(m)
    assert terminal.mac_data(no_mac) == no_mac
    with pytest.raises(CodecError):
        terminal.encode_with_mac(m, lambda _d: "XYZ")
    with pytest.raises(CodecError):
        terminal.mac_data(b"\x02\x00")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "mti"),
        (b"\x02", "mti"),
        (b"\x02\x00\x20", "bitmap"),
        (b"\x0a\x00" + bytes(8), "mti"),  # non-BCD MTI
        (b"\x02\x00" + bytes.fromhex("8000000000000000"), "bitmap"),  # secondary bitmap
        (b"\x02\x00" + bytes.fromhex("0800000000000000") + b"x", "bitmap"),  # field 5 undefined
        (b"\x02\x00" + bytes.fromhex("2000000000000000") + b"\x00\x00\x0a", 3),  # non-BCD nibble
        (b"\x02\x00" + bytes.fromhex("4000000000000000") + b"\x20" + bytes(10), 2),  # LL 20 > 19
        (b"\x02\x00" + bytes.fromhex("4000000000000000") + b"\x1a", 2),  # non-BCD length
        (b"\x02\x00" + bytes.fromhex("4000000000000000") + b"\x19\x12", 2),  # truncated
        (b"\x02\x00" + bytes.fromhex("2000000000000000") + bytes(4), "message"),  # extra data
    ],
)
def test_malformed_inputs_raise_codec_error_with_location(data, field):
    with pytest.raises(CodecError) as ei:
        terminal.decode(data)
    if field != "message":
        assert ei.value.field == field
    assert ei.value.offset >= 0


def test_non_bytes_input():
    with pytest.raises(CodecError):
        terminal.decode("0200")  # type: ignore[arg-type]
    assert terminal.decode(bytearray(terminal.encode(TXN_REQUESTS["echo"]))) == TXN_REQUESTS["echo"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(terminal.TABLE))
def test_any_valid_message_round_trips(m):
    assert terminal.decode(terminal.encode(m)) == m


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_gives_message_or_codec_error(data):
    decodes_or_codec_error(terminal.decode, data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=8, max_size=8), st.binary(max_size=120))
def test_random_bitmaps_over_a_valid_mti(bitmap, rest):
    decodes_or_codec_error(terminal.decode, b"\x02\x00" + bitmap + rest)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(terminal.TABLE), st.data())
def test_truncations_and_corruptions(m, data):
    wire = terminal.encode(m)
    cut = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
    with pytest.raises(CodecError):
        terminal.decode(wire[:cut])
    pos = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
    flipped = wire[:pos] + bytes([wire[pos] ^ data.draw(st.integers(1, 255))]) + wire[pos + 1 :]
    decodes_or_codec_error(terminal.decode, flipped)


def test_f_pad_followed_by_an_undefined_field_is_a_codec_error():
    # found by a long random run: the F-pad retry must wrap errors like the first pass
    wire = terminal.encode(Message("0200", {2: "6212345678901"}))
    bad = wire[:2] + bytes([wire[2] | 0x04]) + wire[3:-1] + bytes([wire[-1] | 0x0F])
    with pytest.raises(CodecError) as ei:
        terminal.decode(bad)
    assert ei.value.field == "bitmap" and "field 6" in ei.value.reason


@given(data=st.data())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_readable_fields_of_a_cut_message_are_its_own_leading_fields(data):
    """Whatever the cut, what a format-error answer would echo is exactly some leading fields
    of the message that was sent, with their values; never a field invented from the bytes."""
    from tests.codec.strategies import messages

    msg = data.draw(messages(terminal.TABLE))
    wire = terminal.encode(msg)
    cut = data.draw(st.integers(0, len(wire)))
    readable = terminal.readable_fields(wire[:cut])
    sent = sorted(msg.fields)
    assert list(readable) == sent[: len(readable)]
    assert all(readable[n] == msg.fields[n] for n in readable)
    if cut == len(wire):
        assert readable == dict(msg.fields)
