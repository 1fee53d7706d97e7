import pytest

from codec.errors import CodecError
from codec.message import Message
from codec.txntypes import TYPES, UnknownTransaction, identify, identify_original

from .samples import RESPONSES, TXN_REQUESTS

CONTRACT_NAMES = {
    "balance_inquiry", "purchase", "void", "refund", "preauth", "preauth_cancel", "completion",
    "completion_void", "completion_advice", "reversal", "sign_on", "sign_off", "echo",
    "parameter_download", "settlement", "batch_upload", "batch_upload_end",
    "activation",  # merchant operations: 0800 / 60.3 380 (README "Operations")
    "batch_upload_detail",  # a refund detail 0320 (NewPOS-type terminals)
    "transfer",  # card to card: 0200 / 400000 / 00 / 47, the payee's PAN in 48
    "qr_pay", "qr_order", "qr_query",  # QR wallet payments (docs/qr.md)
}  # fmt: skip


def test_table_covers_every_contract_name():
    assert set(TYPES) == CONTRACT_NAMES


@pytest.mark.parametrize("name", sorted(TXN_REQUESTS))
def test_every_sample_identifies_as_its_row(name):
    t = identify(TXN_REQUESTS[name])
    assert t.name == name.replace("sign_on_single", "sign_on").replace("sign_on_tdk", "sign_on")
    assert t.request_mti == TXN_REQUESTS[name].mti


def test_responses_identify_too():
    assert identify(RESPONSES["purchase_response"]).name == "purchase"
    assert identify(RESPONSES["sign_on_response"]).name == "sign_on"


def test_attributes():
    assert TYPES["purchase"].reversible and not TYPES["purchase"].management
    assert TYPES["refund"].response_mti == "0230" and not TYPES["refund"].reversible
    assert TYPES["echo"].management


def test_reversal_and_its_original():
    rev = TXN_REQUESTS["reversal"]
    assert identify(rev).name == "reversal"
    assert identify(rev.with_mti("0401")).name == "reversal"
    assert identify_original(rev).name == "purchase"
    preauth_rev = TXN_REQUESTS["preauth"].with_mti("0400")
    assert identify_original(preauth_rev).name == "preauth"
    with pytest.raises(UnknownTransaction):
        identify_original(TXN_REQUESTS["refund"].with_mti("0400"))  # not reversible
    with pytest.raises(UnknownTransaction):
        identify_original(TXN_REQUESTS["purchase"])


def test_transfer_and_its_reversal():
    msg = Message("0200", {3: "400000", 25: "00", 48: "6222020000000007", 60: "47000001000"})
    assert identify(msg).name == "transfer" and identify(msg.with_mti("0210")).name == "transfer"
    assert identify_original(msg.with_mti("0400")).name == "transfer"
    with pytest.raises(UnknownTransaction):  # the 40 transaction code under a sale's 60.1
        identify(msg.with_fields({60: "22000001000"}))


def test_unknown_combination_is_reported_clearly():
    odd = TXN_REQUESTS["purchase"].with_fields({25: "06"})  # 60.1 22 with 25 = 06
    with pytest.raises(UnknownTransaction) as ei:
        identify(odd)
    assert isinstance(ei.value, CodecError)
    assert "3=000000" in ei.value.reason and "25=06" in ei.value.reason
    with pytest.raises(UnknownTransaction) as ei:
        identify(Message("0800", {60: "00000001999"}))
    assert ei.value.field == "60.3"
    with pytest.raises(UnknownTransaction):
        identify(Message("0200", {3: "000000"}))
