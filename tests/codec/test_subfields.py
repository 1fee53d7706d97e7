import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import terminal
from codec.errors import CodecError
from codec.subfields import (
    Balance,
    BatchRecord,
    Field44,
    Field60,
    Field61,
    SecurityControl,
    SettlementTotals,
    SignOnKeys,
    format_batch_end,
    format_batch_upload,
    format_field48_settlement,
    format_field54,
    format_signon_keys,
    format_tusn,
    parse_batch_end,
    parse_batch_upload,
    parse_field48_settlement,
    parse_field54,
    parse_signon_keys,
    parse_tusn,
)

from .samples import TXN_REQUESTS


def test_field60_from_public_dumps():
    assert Field60.parse("22000049000501") == Field60("22", "000049", "000", "5", "0", "1")
    f = Field60.parse("00000001003")
    assert (f.txn_type, f.batch, f.nmc, f.read_capability) == ("00", "000001", "003", "")
    assert f.format() == "00000001003"
    assert Field60.parse("22").format() == "22"
    assert Field60("22", "000001", rest="").format() == "22000001"


def test_field60_errors():
    with pytest.raises(CodecError) as ei:
        Field60.parse("2200004")
    assert ei.value.field == "60.2" and ei.value.offset == 2
    with pytest.raises(CodecError):
        Field60.parse("2A")
    with pytest.raises(CodecError):
        Field60("22", "1").format()


@settings(max_examples=80, deadline=None)
@given(st.text("0123456789", min_size=2, max_size=17))
def test_field60_parse_format_round_trip(s):
    try:
        f = Field60.parse(s)
    except CodecError as e:
        assert e.field.startswith("60.")
        return
    assert f.format() == s


def test_field61():
    f = Field61.parse("0000010001201125")
    assert (f.batch, f.stan, f.date) == ("000001", "000120", "1125")
    assert f.format() == "0000010001201125"
    assert Field61.parse("000001000120").format() == "000001000120"
    with pytest.raises(CodecError):
        Field61.parse("00000100012011")


def test_signon_keys_all_modes_and_fixture():
    pik16, mak8, tdk16 = bytes(range(16)), bytes(range(16, 24)), bytes(range(24, 40))
    cv = b"\xaa\xbb\xcc\xdd"
    single = SignOnKeys(pik16[:8], cv, mak8, cv)
    assert len(format_signon_keys(single, "001")) == 24
    assert parse_signon_keys(format_signon_keys(single, "001"), "001") == single
    double = SignOnKeys(pik16, cv, mak8, cv)
    raw = format_signon_keys(double, "003")
    assert len(raw) == 40 and raw[28:36] == bytes(8)
    assert parse_signon_keys(raw, "003") == double
    track = SignOnKeys(pik16, cv, mak8, cv, tdk16, cv)
    assert parse_signon_keys(format_signon_keys(track, "004"), "004") == track
    fixture62 = bytes.fromhex(
        "A0F4BAB158444777DCCEFA04F3B4652318ECC792EF3AEC72A5011D350000000000000000F1737A9E"
    )
    keys = parse_signon_keys(fixture62, "003")
    assert keys.pik_cv.hex().upper() == "18ECC792" and keys.mak_cv.hex().upper() == "F1737A9E"
    assert len(keys.mak) == 8
    assert "A0F4" not in repr(keys)
    with pytest.raises(CodecError):
        parse_signon_keys(fixture62, "004")
    with pytest.raises(CodecError):
        parse_signon_keys(fixture62, "009")
    with pytest.raises(CodecError):
        format_signon_keys(single, "003")


def test_tusn():
    raw = b"Sequence No16" + b"0123ABC-45678901"
    assert parse_tusn(raw) == "0123ABC-45678901"
    assert format_tusn("0123ABC-45678901") == raw
    assert parse_tusn(b"\x01\x02") is None
    assert parse_tusn(b"Sequence No99abc") is None
    assert parse_tusn(TXN_REQUESTS["sign_on_tdk"][62]) == "0123ABC-45678901"


def test_field44_and_53():
    f = Field44.parse("8888888888866666666666")
    assert f == Field44("88888888888", "66666666666")
    assert f.format() == "8888888888866666666666"
    sc = SecurityControl.parse("0610000000000000")
    assert sc == SecurityControl("0", "6", True)
    assert sc.format() == "0610000000000000"
    assert SecurityControl().format() == "2600000000000000"


def test_settlement_totals():
    s = TXN_REQUESTS["settlement"][48]
    dom, foreign = parse_field48_settlement(s)
    assert dom == SettlementTotals(123456, 1, 500, 1, "0")
    assert foreign == SettlementTotals(0, 0, 0, 0, "0")
    assert format_field48_settlement(dom, foreign) == s
    # domestic block only: foreign totals are zero
    assert parse_field48_settlement(s[:31])[1] == SettlementTotals(0, 0, 0, 0, "0")
    with pytest.raises(CodecError):
        parse_field48_settlement("12")
    with pytest.raises(CodecError):
        SettlementTotals(10**12, 0, 0, 0).format()


def test_batch_upload_records():
    recs = (
        BatchRecord("00", "6212345678901234567", 12345, "000139", "22"),
        BatchRecord("01", "4111111111111111", 99, "000140", "20"),
    )
    s = format_batch_upload(recs)
    assert parse_batch_upload(s) == recs
    # carried in a 0320 and through the terminal codec (odd digit count gets a pad)
    assert parse_batch_upload(TXN_REQUESTS["batch_upload"][48])[0].stan == "000139"
    assert len(s) % 2 == 1
    with pytest.raises(CodecError):
        parse_batch_upload(s[:-1])
    with pytest.raises(CodecError):
        format_batch_upload([recs[0]] * 8)
    assert parse_batch_end(format_batch_end(7)) == 7


def test_balances():
    bals = (Balance("10", "02", "156", 12345), Balance("10", "01", "156", -5))
    s = format_field54(bals)
    assert s == "1002156C0000000123451001156D000000000005"
    assert parse_field54(s) == bals
    with pytest.raises(CodecError):
        parse_field54("1002156X000000012345")
    with pytest.raises(CodecError):
        parse_field54("1002")


def test_fixture_subfields_via_codec():
    m = terminal.decode(terminal.encode(TXN_REQUESTS["void"]))
    f61 = Field61.parse(m[61])
    assert f61.stan == "000120"
    assert Field60.parse(m[60]).txn_type == "23"


def test_batch_upload_in_the_newpos_layout_is_told_from_ours():
    """40-digit records: type n2, STAN n6, PAN n20 right-aligned, amount n12."""
    s = "02" + "22000139" + "0000" + "6222020000000001" + "000000001000" + (
        "25000140" + "0" + "4761340000000000019" + "000000000250"
    )  # fmt: skip
    recs = parse_batch_upload(s)
    assert recs == (
        BatchRecord(None, "6222020000000001", 1000, "000139", "22"),
        BatchRecord(None, "4761340000000000019", 250, "000140", "25"),
    )
    # our layout with a 16-digit PAN is 40 digits too; the organisation (00/01) tells it apart
    ours = format_batch_upload([BatchRecord("00", "6222020000000001", 1000, "000139", "22")])
    assert len(ours) == 2 + 40 and parse_batch_upload(ours)[0].organisation == "00"
