"""A transfer's payee PAN (48 in the terminal dialect, 103 on the issuer side): the parser
accepts exactly the card numbers the dialect allows and says why it refuses without showing a
digit; every dump masks the payee like field 2, whatever the message's type."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import issuer, terminal
from codec.dump import format_message, masked_fields, masked_hex
from codec.errors import CodecError
from codec.message import Message
from codec.subfields import Field60, luhn_valid, parse_payee

PAYER = "6222020000000001"
PAYEE = "6222020000000007"


def check_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass the Luhn check, computed the textbook way."""
    digits = [int(c) for c in body + "0"]
    for i in range(len(digits) - 2, -1, -2):
        digits[i] = sum(divmod(digits[i] * 2, 10))
    return str((10 - sum(digits) % 10) % 10)


bodies = st.text("0123456789", min_size=11, max_size=18)
pans = bodies.map(lambda b: b + check_digit(b))


@given(pans)
def test_every_valid_card_number_is_accepted_as_it_is(pan):
    assert luhn_valid(pan) and parse_payee(pan) == pan


@given(pans, st.data())
def test_one_wrong_digit_is_refused_without_showing_the_number(pan, data):
    i = data.draw(st.integers(0, len(pan) - 1))
    wrong = data.draw(st.sampled_from([c for c in "0123456789" if c != pan[i]]))
    typo = pan[:i] + wrong + pan[i + 1 :]
    with pytest.raises(CodecError) as caught:
        parse_payee(typo)
    assert caught.value.field == "48" and typo not in str(caught.value)
    assert typo[-4:] not in str(caught.value)


@given(pans, st.data())
def test_two_neighbours_swapped_are_refused(pan, data):
    i = data.draw(st.integers(0, len(pan) - 2))
    a, b = pan[i], pan[i + 1]
    if a == b or {a, b} == {"0", "9"}:  # the one swap the Luhn check cannot see
        return
    with pytest.raises(CodecError):
        parse_payee(pan[:i] + b + a + pan[i + 2 :])


@given(st.text(max_size=25))
def test_anything_else_is_refused_or_is_a_card_number(value):
    try:
        assert parse_payee(value) == value
    except CodecError as exc:
        assert exc.field == "48"
        if len(value) >= 4:
            assert value not in str(exc)
        return
    assert value.isascii() and value.isdigit() and 12 <= len(value) <= 19 and luhn_valid(value)


@pytest.mark.parametrize("value", ["", "62220200007", "6" * 20, "6222 0200 0000 0007", "٦" * 16])
def test_refused_shapes(value):
    with pytest.raises(CodecError):
        parse_payee(value)


def transfer(mti="0200", f60="47000001000") -> Message:
    return Message(mti, {2: PAYER, 3: "400000", 4: "000000001000", 11: "000123",
                         25: "00", 41: "12345678", 42: "123456789012345", 48: PAYEE,
                         49: "156", 60: f60})  # fmt: skip


@pytest.mark.parametrize(
    "msg",
    [
        transfer(),
        transfer("0210"),
        transfer("0400"),  # the terminal's reversal carries the original's 48
        transfer(f60="99000001000"),  # no such type: still masked (logged by the refusal)
    ],
    ids=["request", "response", "reversal", "unidentifiable"],
)
def test_terminal_dumps_mask_48_of_a_financial_message(msg):
    fields = masked_fields(msg)
    assert fields["48"] == "622202******0007"
    text = format_message(msg) + json.dumps(fields)
    assert PAYEE not in text and PAYER not in text
    payload = terminal.encode(msg)
    hexdump = masked_hex(payload, terminal.decode(payload)).replace("\n", "")
    flat = "".join(line[6:] for line in masked_hex(payload, msg).splitlines())
    assert PAYEE not in flat and PAYER not in flat and "622202******0007" in flat
    assert PAYEE not in hexdump


def test_settlement_totals_in_48_stay_readable():
    totals = "0" * 12 + "000" + "0" * 12 + "000" + "0"
    msg = Message("0500", {11: "000001", 41: "12345678", 48: totals * 2,
                           60: Field60("00", "000001", "201").format()})  # fmt: skip
    assert masked_fields(msg)["48"] == totals * 2


def test_issuer_dumps_mask_103():
    msg = Message("0200", {2: PAYER, 3: "400000", 4: "000000001000", 11: "000123",
                           41: "12345678", 103: PAYEE})  # fmt: skip
    assert masked_fields(msg, "issuer")["103"] == "622202******0007"
    body = issuer.encode(msg)
    flat = "".join(line[6:] for line in masked_hex(body, msg, dialect="issuer").splitlines())
    assert PAYEE.encode().hex().upper() not in flat and PAYEE not in format_message(msg, "issuer")
