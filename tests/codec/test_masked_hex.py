"""The raw hex a certification report shows on demand never shows a PAN, track or PIN block."""

from __future__ import annotations

from codec import terminal as terminal_codec
from codec.dump import masked_hex
from tools.terminal.device import Device

PAN = "6222020000000001"


def _request(**kw):
    device = Device("12345678", "123456789012345", bytes.fromhex("11" * 8 + "22" * 8), "003")
    device.pik = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    device.mak = bytes.fromhex("89ABCDEF01234567")
    msg = device.financial_request("purchase", amount=1234, **kw)
    payload = device.encode(msg)
    return payload, terminal_codec.decode(payload)


def test_pan_and_pin_block_are_masked_the_rest_is_the_frame():
    payload, msg = _request(pan=PAN, expiry="3012", pin="1234")
    assert PAN in payload.hex().upper()  # packed BCD: the digits are there in clear hex
    dump = masked_hex(payload, msg)
    flat = "".join(line[6:] for line in dump.splitlines())
    assert PAN not in flat and "622202******0001" in flat
    assert bytes(msg[52]).hex().upper() not in flat and "*" * 16 in flat
    assert len(flat) == len(payload) * 2  # one character per nibble: offsets still line up
    assert dump.splitlines()[1].startswith("0010  ")
    assert "000000001234" in flat  # the amount is left as it is


def test_track2_is_masked():
    payload, msg = _request(track2=PAN + "=30121010000000000000", pin="1234")
    flat = "".join(line[6:] for line in masked_hex(payload, msg).splitlines())
    assert PAN not in flat and "D3012101" not in flat


def test_undecoded_frame_hides_what_could_be_a_pan():
    assert masked_hex(b"\x01\x02", None) == "0000  0102"
    payload, _ = _request(pan=PAN, expiry="3012")
    assert PAN not in masked_hex(payload, None).replace("\n", "")
