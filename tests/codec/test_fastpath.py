"""The precompiled fast path against the pyiso8583 reference path, differentially.

Contract (codec.fastpath): fast encode is byte-identical to the reference for every message it
takes; fast decode returns an equal Message for every input it takes, and only takes inputs the
reference accepts; everything else defers, so the public ``encode``/``decode`` behave exactly as
the reference does - same bytes, same Message, same CodecError (field, offset, reason).
"""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec import fastpath, issuer, terminal
from codec.dialect import Codec
from codec.errors import CodecError
from codec.fastpath import FastPath, compile_field
from codec.framing import LengthPrefixedDecoder, parse_envelope
from codec.message import Message

from .samples import RESPONSES, TXN_REQUESTS
from .strategies import messages

CODECS = {"terminal": terminal.CODEC, "issuer": issuer.CODEC}
TABLES = {"terminal": terminal.TABLE, "issuer": issuer.TABLE}
MTI = {"terminal": b"\x02\x00", "issuer": b"0200"}
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(fn, arg):
    try:
        return ("ok", fn(arg))
    except CodecError as e:
        return ("error", type(e), e.field, e.offset, e.reason)


def check_decode(codec: Codec, data: bytes) -> None:
    """Public decode == reference decode; a fast-path answer implies the reference's answer."""
    ref = _outcome(codec.reference_decode, data)
    assert _outcome(codec.decode, data) == ref
    fast = codec.fast.decode(data)
    if fast is not None:
        assert ref == ("ok", fast)


def check_encode(codec: Codec, msg: Message) -> None:
    """Public encode == reference encode; a fast-path answer is the reference's bytes."""
    ref = _outcome(codec.reference_encode, msg)
    assert _outcome(codec.encode, msg) == ref
    fast = codec.fast.encode(msg)
    if fast is not None:
        assert ref == ("ok", fast)


# ------------------------------------------------------------------ valid messages


@pytest.mark.parametrize("dialect", sorted(CODECS))
@SETTINGS
@given(data=st.data())
def test_generated_messages_take_the_fast_path_both_ways(dialect, data):
    codec = CODECS[dialect]
    m = data.draw(messages(TABLES[dialect], mtis=("0100", "0200", "0210", "0400", "0800")))
    wire = codec.fast.encode(m)
    assert wire is not None  # valid messages are the fast path's job, not the fallback's
    assert wire == codec.reference_encode(m)
    assert codec.fast.decode(wire) == codec.reference_decode(wire) == m


@pytest.mark.parametrize("dialect", sorted(CODECS))
@SETTINGS
@given(data=st.data())
def test_field_insertion_order_does_not_matter(dialect, data):
    codec = CODECS[dialect]
    m = data.draw(messages(TABLES[dialect]))
    keys = data.draw(st.permutations(list(m.fields)))
    shuffled = Message(m.mti, {k: m.fields[k] for k in keys})
    wire = codec.fast.encode(shuffled)
    assert wire is not None
    assert wire == codec.reference_encode(shuffled) == codec.fast.encode(m)


@pytest.mark.parametrize("name", sorted({**TXN_REQUESTS, **RESPONSES}))
def test_every_terminal_sample_takes_the_fast_path(name):
    m = {**TXN_REQUESTS, **RESPONSES}[name]
    codec = terminal.CODEC
    wire = codec.fast.encode(m)
    assert wire is not None and wire == codec.reference_encode(m)
    assert codec.fast.decode(wire) == m


FIXTURES = json.loads(
    (Path(__file__).parent / "fixtures" / "terminal-samples.json").read_text(encoding="utf-8")
)


def _payload(fx) -> bytes:
    data = bytes.fromhex(fx["hex"])
    if fx["framing"].startswith("length"):
        (body,) = LengthPrefixedDecoder().feed(data)
        return parse_envelope(body).payload
    return data


@pytest.mark.parametrize("fx", FIXTURES, ids=[f["name"] for f in FIXTURES])
def test_public_dumps_fast_decode_and_re_encode(fx):
    codec = terminal.CODEC
    payload = _payload(fx)
    m = codec.fast.decode(payload)  # F pads included: the fast path takes them too
    assert m is not None and m == codec.reference_decode(payload)
    assert m.mti == fx["expect"]["mti"]
    again = codec.fast.encode(m)
    assert again is not None and again == codec.reference_encode(m)
    # byte for byte, except that an F pad nibble received is sent back as 0 (the dialect's choice)
    assert len(again) == len(payload)
    assert all(
        a == b or (b ^ a == 0x0F and a & 0x0F == 0) for a, b in zip(again, payload, strict=True)
    )


def test_f_pads_everywhere_decode_fast():
    m = Message("0200", {2: "6212345678901234567", 22: "021", 32: "123", 60: "22000001000"})
    wire = terminal.encode(m)
    patched = (
        wire.replace(
            bytes.fromhex("19621234567890123456 70"), bytes.fromhex("19621234567890123456 7F")
        )
        .replace(bytes.fromhex("0210"), bytes.fromhex("021F"), 1)
        .replace(bytes.fromhex("031230"), bytes.fromhex("03123F"))
        .replace(bytes.fromhex("0011 220000010000"), bytes.fromhex("0011 22000001000F"))
    )
    assert terminal.CODEC.fast.decode(patched) == terminal.CODEC.reference_decode(patched) == m


# ------------------------------------------------------------------ irregular input


def _mutations(wire: bytes, draw) -> list[bytes]:
    """Truncation, a flipped byte, a nibble forced to a value (hits pads), insert, append."""
    n = len(wire)
    pos = draw(st.integers(0, n - 1))
    nib = draw(st.integers(0, 15))
    hi = draw(st.booleans())
    b = wire[pos]
    forced = (b & 0x0F) | (nib << 4) if hi else (b & 0xF0) | nib
    return [
        wire[: draw(st.integers(0, n - 1))],
        wire[:pos] + bytes([b ^ draw(st.integers(1, 255))]) + wire[pos + 1 :],
        wire[:pos] + bytes([forced]) + wire[pos + 1 :],
        wire[:pos] + draw(st.binary(min_size=1, max_size=3)) + wire[pos:],
        wire + draw(st.binary(min_size=1, max_size=3)),
    ]


@pytest.mark.parametrize("dialect", sorted(CODECS))
@SETTINGS
@given(data=st.data())
def test_mutated_encodings_decode_as_the_reference_does(dialect, data):
    codec = CODECS[dialect]
    wire = codec.encode(data.draw(messages(TABLES[dialect])))
    for bad in _mutations(wire, data.draw):
        check_decode(codec, bad)


@pytest.mark.parametrize("dialect", sorted(CODECS))
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=120))
def test_random_bytes_decode_as_the_reference_does(dialect, data):
    check_decode(CODECS[dialect], data)


@pytest.mark.parametrize("dialect", sorted(CODECS))
@settings(max_examples=200, deadline=None)
@given(bitmap=st.binary(min_size=8, max_size=16), rest=st.binary(max_size=80))
def test_random_bitmaps_decode_as_the_reference_does(dialect, bitmap, rest):
    check_decode(CODECS[dialect], MTI[dialect] + bitmap + rest)


@pytest.mark.parametrize(
    "data",
    [
        b"0200" + bytes.fromhex("4000000000000000") + b" 5" + b"12345",  # int(" 5")
        b"0200" + bytes.fromhex("4000000000000000") + b"+5" + b"12345",  # int("+5")
        b"0200" + bytes.fromhex("4000000000000000") + b"-1" + b"1",
        b"0200" + bytes.fromhex("4000000000000000") + b"20" + b"1" * 20,  # > 19
        b"0200" + bytes.fromhex("8000000000000000"),  # bit 1, secondary missing
        b"0200" + bytes.fromhex("80000000000000008000000000000000") + bytes(8),  # bit 65
        b"0200" + bytes.fromhex("80000000000000000000000000000000"),  # empty secondary
        b"0200" + bytes.fromhex("2000000000000000") + "00000٠".encode(),  # non-ASCII digit
        b"0200" + bytes.fromhex("0000000020000000") + b"\xff" * 12,  # 35 z: non-ASCII
        b"0200" + bytes.fromhex("0000000000000000"),  # no fields
        b"020",
    ],
)
def test_issuer_edge_inputs(data):
    check_decode(issuer.CODEC, data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x02\x00" + bytes.fromhex("0000000000000000"),  # no fields
        b"\x02\x00" + bytes.fromhex("8000000000000000") + bytes(8),  # secondary not used
        b"\x02\x00" + bytes.fromhex("2000000000000000") + b"\x00\x00\x0f",  # F not a pad here
        b"\x02\x00" + bytes.fromhex("0000020000000000") + b"\xf1\x23",  # n3 23 left pad F
        b"\x02\x00" + bytes.fromhex("0000040000000000") + b"\x02\x1a",  # 22 pad A
        b"\x02\x00" + bytes.fromhex("4000000000000000") + b"\x01\x1f",  # LL 1, pad F
        b"\x02\x00" + bytes.fromhex("4000000000000000") + b"\x00",  # empty PAN
        b"\x02\x00" + bytes.fromhex("0000000000002000") + b"\x01\xf0",  # 35 z: F digit
        b"\x0a\x00" + bytes(8),  # non-BCD MTI
    ],
)
def test_terminal_edge_inputs(data):
    check_decode(terminal.CODEC, data)


NIBBLE_FIELDS = [fd for fd in terminal.TABLE.fields if fd.format in ("n", "z")]


@pytest.mark.parametrize("fd", NIBBLE_FIELDS, ids=[str(fd.number) for fd in NIBBLE_FIELDS])
def test_every_pad_nibble_value_decodes_as_the_reference_does(fd):
    """Odd-length nibble fields: try all 16 values in the pad nibble (only 0, or 0/F, pass)."""
    length = fd.length if fd.prefix == 0 else 3
    value = "1" * length
    wire = terminal.encode(Message("0200", {fd.number: value}))
    if length % 2 == 0:  # even fixed field: no pad nibble, just the round trip
        check_decode(terminal.CODEC, wire)
        return
    start = 10 + {0: 0, 2: 1, 3: 2}[fd.prefix]
    left = fd.prefix == 0 and fd.align == "right"
    i = start if left else len(wire) - 1
    for nib in range(16):
        b = (wire[i] & 0x0F) | (nib << 4) if left else (wire[i] & 0xF0) | nib
        check_decode(terminal.CODEC, wire[:i] + bytes([b]) + wire[i + 1 :])


# ------------------------------------------------------------------ unusual values on encode

ODD_VALUES = st.one_of(
    st.text(max_size=45),
    st.text(alphabet="0123456789", max_size=45),
    st.text(alphabet="0123456789=ABCDEFabcdef٠²", max_size=45),
    st.binary(max_size=45),
    st.binary(max_size=45).map(bytearray),
    st.integers(),
    st.none(),
)


@pytest.mark.parametrize("dialect", sorted(CODECS))
@SETTINGS
@given(data=st.data())
def test_unusual_values_encode_as_the_reference_does(dialect, data):
    codec = CODECS[dialect]
    numbers = [fd.number for fd in TABLES[dialect].fields] + [1, 5, 65, 129]
    fields = data.draw(st.dictionaries(st.sampled_from(numbers), ODD_VALUES, max_size=4))
    base = data.draw(messages(TABLES[dialect]))
    check_encode(codec, Message(base.mti, {**base.fields, **fields}))


@pytest.mark.parametrize(
    "fields",
    [
        {41: "1234"},  # fixed text, space-padded
        {41: "123456789"},  # too long
        {43: "é" * 40},  # latin-1 in the issuer dialect
        {43: "€" * 40},  # not latin-1
        {2: ""},  # empty LL
        {35: "6212=34", 2: "1" * 19},
        {35: "6212=3d"},  # lower-case hex letter
        {3: "٠١٢٣٤٥"},  # decimal but not ASCII
        {3: "²²²²²²"},  # digit but not decimal
        {52: memoryview(b"12345678")},
        {52: bytearray(b"12345678")},
        {2.0: "6212345678901234567"},  # equal key of another type
        {True: "x"},
    ],
)
@pytest.mark.parametrize("dialect", sorted(CODECS))
def test_edge_values_encode_as_the_reference_does(dialect, fields):
    check_encode(CODECS[dialect], Message("0200", fields))


def test_non_ascii_decimal_mti_defers():
    m = Message("0200", {3: "000000"})
    object.__setattr__(m, "mti", "٠٢٠٠")  # bypass the validator: the fast path must not care
    for codec in CODECS.values():
        assert codec.fast.encode(m) is None
        check_encode(codec, m)


def test_zero_length_row_always_defers():
    class Row:
        number, format, length, prefix, align = 2, "n", 0, 0, "right"

    enc, dec = compile_field(Row, bcd=True)
    with pytest.raises(Exception):  # noqa: B017 - any exception means "defer"
        enc("")
    with pytest.raises(Exception):  # noqa: B017
        dec(b"", 0, {})


def test_plan_caches_are_bounded_and_stay_correct_when_full(monkeypatch):
    monkeypatch.setattr(fastpath, "_PLAN_CACHE_MAX", 3)
    fp = FastPath(issuer.TABLE)
    singles = [Message("0200", {n: "1" * 6}) for n in (3, 11, 12)] + [
        Message("0200", {3: "000000", 11: "000001", 41: f"T{i:07d}"}) for i in range(3)
    ]
    singles += [Message("0800", {70: "301", 7: "1125093015"}), Message("0800", {2: "123"})]
    for m in singles * 2:
        wire = fp.encode(m)
        assert wire == issuer.CODEC.reference_encode(m)
        assert fp.decode(wire) == m
    assert len(fp._enc_plans) <= 3 and len(fp._dec_plans) <= 3
