"""The wallet link's wire shapes (codec/wallet.py): amounts, order numbers, payment-code masks,
request and answer bodies, and what they refuse."""

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import wallet as w
from codec.dump import masked_fields
from codec.errors import CodecError
from codec.message import Message


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_amounts_round_trip_through_yuan(fen):
    text = w.yuan(fen)
    assert w.fen(text) == fen and text.count(".") == 1 and len(text.split(".")[1]) == 2


@given(st.text(max_size=20))
def test_an_amount_is_a_plain_decimal_or_refused(text):
    try:
        value = w.fen(text)
    except CodecError:
        return
    assert value >= 0 and text.replace(".", "", 1).isdigit()


def test_amount_edge_cases():
    assert (w.fen("10"), w.fen("10.5"), w.fen("0.05")) == (1000, 1050, 5)
    for bad in ("-1.00", "1.234", "1e3", " 1.00", "", "1,00"):
        with pytest.raises(CodecError):
            w.fen(bad)


@given(
    st.dates(min_value=dt.date(1000, 1, 1)).map(lambda d: d.strftime("%Y%m%d")),
    st.integers(0, 10**12 - 1),
)
def test_order_numbers_name_their_row_back(day, journal_id):
    number = w.order_number(day, journal_id)
    assert len(number) == 20 and w.parse_order_number(number) == (day, journal_id)


@given(st.text(alphabet="0123456789", min_size=w.CODE_MIN, max_size=w.CODE_MAX))
def test_a_payment_code_shows_six_and_four_only(code):
    masked = w.mask_code(code)
    assert w.valid_payment_code(code)
    assert masked[:6] == code[:6] and masked[-4:] == code[-4:]
    assert set(masked[6:-4]) == {"*"} and len(masked) == len(code)


@given(st.text(alphabet="0123456789", min_size=w.CODE_MIN, max_size=w.CODE_MAX))
def test_the_terminal_dump_of_a_qr_sale_masks_the_code(code):
    msg = Message("0200", {3: "000000", 11: "000001", 48: code, 60: "36000001"})
    shown = masked_fields(msg)["48"]
    assert code not in shown and shown[:6] == code[:6]


def test_request_bodies_are_read_back_and_refused_when_incomplete():
    call = w.WalletCall("trade.pay", {"out_trade_no": "1", "total_amount": "1.00"})
    params = w.request_params("app", call, timestamp="2026-01-01 00:00:00", notify_url="http://x")
    params["sign"] = "s"
    got_params, got = w.parse_request(json.dumps(params).encode())
    assert got == call and got_params["notify_url"] == "http://x"
    for missing in ("sign", "method", "biz_content"):
        broken = {k: v for k, v in params.items() if k != missing}
        with pytest.raises(CodecError):
            w.parse_request(json.dumps(broken).encode())
    with pytest.raises(CodecError):
        w.parse_request(json.dumps({**params, "method": "trade.steal"}).encode())
    for junk in (b"", b"[]", b"{", b'{"biz_content": 1}'):
        with pytest.raises(CodecError):
            w.parse_request(junk)


def test_stored_calls_round_trip_and_refuse_junk():
    call = w.WalletCall("trade.cancel", {"out_trade_no": "20260101000000000001"})
    assert w.WalletCall.from_bytes(call.to_bytes()) == call
    for junk in (b"", b"{}", b'{"method": "x", "biz": {}}', b'{"method": "trade.pay", "biz": 1}'):
        with pytest.raises(CodecError):
            w.WalletCall.from_bytes(junk)


def test_answers_must_carry_the_method_s_response_object():
    body = w.response_body("trade.query", {"code": "10000", "trade_status": "TRADE_SUCCESS"}, "s")
    response, sign = w.parse_response("trade.query", body)
    assert response["code"] == "10000" and sign == "s"
    with pytest.raises(CodecError):
        w.parse_response("trade.pay", body)  # another method's answer
    with pytest.raises(CodecError):
        w.parse_response("trade.pay", b"<html>")
