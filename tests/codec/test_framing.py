import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.errors import FrameError
from codec.framing import (
    Envelope,
    LengthPrefixedDecoder,
    build_envelope,
    parse_envelope,
    prefix_length,
)


def test_prefix_length():
    assert prefix_length(b"abc") == b"\x00\x03abc"
    with pytest.raises(FrameError):
        prefix_length(b"x" * 70000)


def test_partial_reads_and_several_frames_in_one_read():
    d = LengthPrefixedDecoder()
    stream = prefix_length(b"one") + prefix_length(b"two") + prefix_length(b"three")
    assert d.feed(stream[:1]) == []
    assert d.feed(stream[1:4]) == []
    assert d.buffered == 4
    assert d.feed(stream[4:12]) == [b"one", b"two"]
    assert d.feed(stream[12:]) == [b"three"]
    assert d.buffered == 0


def test_oversize_frame_rejected_on_the_prefix_and_decoder_stays_poisoned():
    d = LengthPrefixedDecoder(max_length=10)
    assert d.feed(prefix_length(b"ok")) == [b"ok"]
    with pytest.raises(FrameError) as ei:
        d.feed(b"\x00\x0b")
    assert ei.value.field == "frame" and ei.value.offset == 4
    with pytest.raises(FrameError):
        d.feed(b"\x00\x01a")


def test_zero_length_frame_rejected():
    with pytest.raises(FrameError):
        LengthPrefixedDecoder().feed(b"\x00\x00")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=50), max_size=8),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
)
def test_any_chunking_yields_the_same_frames(bodies, cuts):
    stream = b"".join(prefix_length(b) for b in bodies)
    d = LengthPrefixedDecoder(max_length=64)
    out, pos, i = [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += d.feed(stream[pos : pos + step])
        pos += step
        i += 1
    assert out == bodies and d.buffered == 0


def test_envelope_parse_and_response():
    body = bytes.fromhex("60000300006031003100000800")
    env = parse_envelope(body)
    assert env.tpdu == bytes.fromhex("6000030000")
    assert env.header == bytes.fromhex("603100310000")
    assert env.payload == b"\x08\x00"
    assert env.to_body() == body
    resp = env.response(payload=b"\x08\x10")
    assert resp.tpdu == bytes.fromhex("6000000003")
    assert resp.header == env.header and resp.payload == b"\x08\x10"
    signon_again = env.response(processing=3)
    assert signon_again.header == bytes.fromhex("603103310000")
    assert signon_again.processing == 3
    # the terminal-status nibble is kept
    test_mode = Envelope(env.tpdu, bytes.fromhex("603110000000"), b"")
    assert test_mode.response(processing=1).header == bytes.fromhex("603111000000")
    with pytest.raises(FrameError):
        env.response(processing=16)


def test_envelope_errors():
    with pytest.raises(FrameError) as ei:
        parse_envelope(b"\x60\x00")
    assert ei.value.field == "frame"
    with pytest.raises(FrameError) as ei:
        parse_envelope(bytes.fromhex("50000300006031000000000800"))
    assert ei.value.field == "tpdu"


def test_build_envelope_frame():
    env = build_envelope(b"\x08\x00")
    assert env.to_frame() == bytes.fromhex("000d60000300006031000000000800")
    with pytest.raises(FrameError):
        build_envelope(b"", tpdu=b"\x60")
