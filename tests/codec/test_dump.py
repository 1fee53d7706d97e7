import json

from codec import issuer, terminal
from codec.dump import format_message, mask_pan, masked_fields, unmasked_fields
from codec.message import Message

from .samples import PAN, RESPONSES, TRACK2, TXN_REQUESTS


def test_mask_pan():
    assert mask_pan("6212345678901234567") == "621234*********4567"
    assert mask_pan("4111111111111111") == "411111******1111"
    assert mask_pan("12345678") == "****5678"
    assert mask_pan("12") == "*2"


def _all_text(msg, dialect="terminal") -> str:
    return format_message(msg, dialect) + json.dumps(masked_fields(msg, dialect))


def test_no_secret_ever_appears():
    for name, msg in {**TXN_REQUESTS, **RESPONSES}.items():
        text = _all_text(msg)
        assert PAN not in text, name
        assert PAN[6:15] not in text, name
        assert TRACK2 not in text and "28121011234567" not in text, name
        for n in (52, 55, 62):
            if n in msg and n != 62:
                assert msg[n].hex().upper() not in text, name
    signon = RESPONSES["sign_on_response"].with_fields({62: bytes.fromhex("A0F4BAB158444777" * 5)})
    text = _all_text(signon)
    assert "A0F4BAB1" not in text and "[40 bytes]" in text


def test_masked_fields_shapes():
    d = masked_fields(TXN_REQUESTS["purchase"])
    assert d["mti"] == "0200" and d["2"] == "622848*********0018"
    assert d["35"] == "[34 chars]" and d["52"] == "[8 bytes]"
    assert d["4"] == "000000012345"
    tusn = masked_fields(TXN_REQUESTS["sign_on_tdk"])["62"]
    assert tusn == "TUSN 0123ABC-45678901 [29 bytes]"
    batch = masked_fields(TXN_REQUESTS["batch_upload"])["48"]
    assert "622848*********0018" in batch and PAN not in batch


def test_unmasked_is_clear():
    d = unmasked_fields(TXN_REQUESTS["purchase"])
    assert d["2"] == PAN and d["52"] == "8D3F2A1B0C9E7766"


def test_format_message_names_type_and_fields():
    text = format_message(TXN_REQUESTS["purchase"])
    assert text.splitlines()[0] == "0200 purchase (terminal)"
    assert "processing code" in text and "622848*********0018" in text
    unknown = format_message(Message("0200", {3: "990000"}))
    assert unknown.splitlines()[0] == "0200 (terminal)"


def test_issuer_dump_hides_key_exchange_data():
    m = Message("0800", {11: "000001", 70: "101", 48: "A" * 32 + "1A2B3C", 2: PAN})
    assert issuer.decode(issuer.encode(m)) == m
    text = _all_text(m, "issuer")
    assert "A" * 32 not in text and "[38 chars]" in text and PAN not in text
    assert terminal.TABLE.name in format_message(TXN_REQUESTS["echo"])


def test_management_63_beyond_the_operator_number_is_hidden():
    """A sign-on's operator password and an activation code ride in 63 after the operator
    number: every dump (host log, `poshost decode`, the emulator's --trace) hides them."""
    from codec.dump import format_message, masked_fields
    from codec.message import Message

    sign_on = Message("0800", {11: "000001", 41: "12345678", 63: "01 s3cret"})
    assert masked_fields(sign_on)["63"] == "[9 chars]"
    assert "s3cret" not in format_message(sign_on)
    assert masked_fields(sign_on.with_fields({63: "01 "}))["63"] == "01 "
    sale = Message("0210", {11: "000001", 63: "CUP"})
    assert masked_fields(sale)["63"] == "CUP"
