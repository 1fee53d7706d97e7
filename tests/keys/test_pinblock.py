"""ISO 9564-1 PIN blocks."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys import pinblock
from keys.errors import PinError

pins = st.text(alphabet="0123456789", min_size=4, max_size=12)
pans = st.text(alphabet="0123456789", min_size=8, max_size=19)


def test_format0_x924_annex_a_example():
    # ANSI X9.24-1-2009 Annex A: PIN 1234, PAN 4012345678909 -> clear block 041274EDCBA9876F.
    assert pinblock.encode(0, "1234", "4012345678909").hex().upper() == "041274EDCBA9876F"
    assert pinblock.decode(0, bytes.fromhex("041274EDCBA9876F"), "4012345678909") == "1234"


def test_format0_iso9564_structure():
    # ISO 9564-1 9.3.1: PIN field 0 N P..P F..F, PAN field 0000 + 12 rightmost digits
    # excluding the check digit. PIN 1234, PAN 43219876543210987: PAN field 0000987654321098.
    block = pinblock.encode(0, "1234", "43219876543210987")
    assert block.hex().upper() == "0412AC89ABCDEF67"  # 041234FFFFFFFFFF ^ 0000987654321098


def test_format4_x924_3_supplement_example():
    # ANSI X9.24-3-2017 test-vector supplement, format 4 example: PIN key (counter 1 of the
    # AES-128 BDK example) AF8CB133A78F8DC2D1359F18527593FB, PIN 1234, PAN 4111111111111111,
    # random fill 2F69ADDE2E9E7ACE -> A912150391AB65A67E52883D81CE2D15.
    key = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")
    block = pinblock.encipher_format4(
        key, "1234", "4111111111111111", rand=bytes.fromhex("2F69ADDE2E9E7ACE")
    )
    assert block.hex().upper() == "A912150391AB65A67E52883D81CE2D15"
    assert pinblock.decode(4, block, "4111111111111111", key=key) == "1234"
    # The same supplement, counter 2 PIN key D30BDC73EC9714B000BEC66BDB7B6D09.
    key2 = bytes.fromhex("D30BDC73EC9714B000BEC66BDB7B6D09")
    block2 = pinblock.encipher_format4(
        key2, "1234", "4111111111111111", rand=bytes.fromhex("2F69ADDE2E9E7ACE")
    )
    assert block2.hex().upper() == "52A00503BD34BA1383F6A7EE9FE2547F"


def test_format4_decipher_psec_example():
    # knovichikhin/psec decipher example: key 00112233445566778899AABBCCDDEEFF,
    # PAN 1234567890123456, block E4BE5B623AF7E006AC319E5B93544564 -> PIN 1234.
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    block = bytes.fromhex("E4BE5B623AF7E006AC319E5B93544564")
    assert pinblock.decode(4, block, "1234567890123456", key=key) == "1234"


def test_format4_pan_field():
    # ISO 9564-1:2017 9.4.2: M = PAN length - 12, then the PAN, 0-filled to 32 nibbles.
    assert pinblock.pan_field_4("4111111111111111").hex().upper() == (
        "44111111111111111000000000000000"
    )
    assert pinblock.pan_field_4("123456789012").hex().upper() == (
        "01234567890120000000000000000000"
    )


def test_format3_fill_and_format1_are_random():
    b1 = pinblock.encode(3, "1234", "4012345678909")
    b2 = pinblock.encode(3, "1234", "4012345678909")
    assert b1 != b2  # 10 random A-F nibbles: a collision has probability 6^-10
    for b in (b1, b2):
        clear = bytes(x ^ y for x, y in zip(b, bytes.fromhex("0000401234567890"), strict=True))
        assert clear.hex().upper()[:6] == "341234"
        assert all(c in "ABCDEF" for c in clear.hex().upper()[6:])
    f1 = pinblock.encode(1, "98765", None)
    assert f1.hex().upper().startswith("1598765")


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "", "١٢٣٤"])
def test_bad_pin_refused(pin):
    with pytest.raises(PinError):
        pinblock.encode(0, pin, "4012345678909")


@pytest.mark.parametrize("pan", ["1234567", "40123456789012345678", "40123x5678909", ""])
def test_bad_pan_refused(pan):
    with pytest.raises(PinError):
        pinblock.encode(0, "1234", pan)


def test_undecodable_blocks():
    pan = "4012345678909"
    good = pinblock.encode(0, "1234", pan)
    with pytest.raises(PinError):
        pinblock.decode(3, good, pan)  # wrong control nibble
    with pytest.raises(PinError):
        pinblock.decode(0, good, "4012345678999")  # another PAN spoils the fill
    with pytest.raises(PinError):
        pinblock.decode(0, good[:7], pan)
    with pytest.raises(PinError):
        pinblock.decode(1, bytes.fromhex("1312345FFFFFFFFF"), None)  # length 3


@given(pin=pins, pan=pans, fmt=st.sampled_from([0, 1, 3]))
def test_round_trip(pin, pan, fmt):
    assert pinblock.decode(fmt, pinblock.encode(fmt, pin, pan), pan) == pin


@given(pin=pins, pan=pans, key=st.binary(min_size=16, max_size=16))
def test_format4_round_trip(pin, pan, key):
    block = pinblock.encode(4, pin, pan, key=key)
    assert len(block) == 16
    assert pinblock.decode(4, block, pan, key=key) == pin


@given(block=st.binary(max_size=40), fmt=st.sampled_from([0, 1, 3, 4, 2, 9]), pan=pans)
def test_any_bytes_decode_cleanly(block, fmt, pan):
    try:
        pin = pinblock.decode(fmt, block, pan, key=bytes(16))
    except PinError:
        return
    assert pin.isdigit() and 4 <= len(pin) <= 12


def test_format_2_published_example():
    # IBM 4758 CCA Basic Services, Release 2.54 (February 2005), appendix E, figure E-5
    # "ISO-2 PIN-block format": PIN 123456 -> X'26123456FFFFFFFF'.
    assert pinblock.encode(2, "123456") == bytes.fromhex("26123456FFFFFFFF")
    assert pinblock.decode(2, bytes.fromhex("26123456FFFFFFFF")) == "123456"
    assert 2 not in pinblock.FORMATS  # offline PIN to the card only, never translated


@given(st.text("0123456789", min_size=4, max_size=12))
def test_format_2_round_trip_without_pan(pin):
    block = pinblock.encode(2, pin)
    assert block.hex().upper().startswith("2" + format(len(pin), "X") + pin)
    assert pinblock.decode(2, block) == pin


@pytest.mark.parametrize("text", ["2612345FFFFFFFF0", "3612345FFFFFFFFF", "2312FFFFFFFFFFFF"])
def test_format_2_malformed_refused(text):
    with pytest.raises(PinError):
        pinblock.decode(2, bytes.fromhex(text))
