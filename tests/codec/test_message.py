import pickle

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.errors import CodecError, FrameError
from codec.message import Message, response_mti


def make() -> Message:
    return Message(
        "0200",
        {
            2: "6212345678901234",
            3: "000000",
            4: "000000001234",
            11: "000139",
            22: "021",
            41: "12345678",
            42: "123456789012345",
            52: b"\x01" * 8,
        },
    )


def test_message_is_immutable_and_copies_its_input():
    src = {3: "000000"}
    m = Message("0200", src)
    src[4] = "000000000001"
    assert 4 not in m
    with pytest.raises(TypeError):
        m.fields[4] = "x"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        m.mti = "0210"  # type: ignore[misc]


def test_accessors():
    m = make()
    assert m[3] == "000000"
    assert m.get(39) is None and m.get(39, "zz") == "zz"
    assert 52 in m and 53 not in m
    with pytest.raises(KeyError):
        m[39]


def test_with_fields_without_and_with_mti():
    m = make()
    m2 = m.with_fields({39: "00", 52: None})
    assert m2[39] == "00" and 52 not in m2 and 52 in m
    m3 = m.without(26, 35, 52)
    assert 52 not in m3 and m3[3] == m[3]
    assert m.with_mti("0400").mti == "0400"


def test_equality_and_hash():
    assert make() == make()
    assert hash(make()) == hash(make())
    assert make() != make().with_fields({4: "000000000001"})


def test_repr_shows_no_values():
    assert "6212345678901234" not in repr(make())


def test_bad_mti_refused():
    with pytest.raises(ValueError):
        Message("02A0", {})
    with pytest.raises(ValueError):
        Message("200", {})


def test_response_echoes_the_amount_whatever_the_code():
    r = make().response("00")
    assert r.mti == "0210"
    assert dict(r.fields) == {
        3: "000000",
        4: "000000001234",
        11: "000139",
        39: "00",
        41: "12345678",
        42: "123456789012345",
    }
    declined = make().response("51")  # strict terminals compare 4 on declines too
    assert declined[4] == "000000001234" and declined[39] == "51"
    bare = make().response()
    assert 39 not in bare and 4 not in bare


def test_response_extra_and_echo():
    r = make().response("00", echo=(11, 41), extra={37: "000000004808", 4: None})
    assert set(r.fields) == {11, 41, 37, 39}


@pytest.mark.parametrize(
    ("req", "resp"),
    [("0200", "0210"), ("0100", "0110"), ("0400", "0410"), ("0401", "0411"), ("0820", "0830")],
)
def test_response_mti(req, resp):
    assert response_mti(req) == resp


def test_response_mti_refuses_a_response():
    with pytest.raises(ValueError):
        response_mti("0210")


def test_codec_error_carries_location_and_pickles():
    e = FrameError("too long", field="frame", offset=7)
    assert isinstance(e, CodecError) and isinstance(e, ValueError)
    assert (e.field, e.offset, e.reason) == ("frame", 7, "too long")
    assert "offset 7" in str(e)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is FrameError and e2.offset == 7


@given(
    fields=st.dictionaries(
        st.integers(min_value=2, max_value=64), st.text(max_size=8), max_size=12
    ),
    extra=st.dictionaries(
        st.integers(min_value=2, max_value=64), st.none() | st.text(max_size=8), max_size=6
    ),
    code=st.none() | st.sampled_from(["00", "05", "96"]),
)
def test_response_in_one_step_is_the_response_then_with_fields(fields, extra, code):
    """``response`` builds its message once (no copy per step): the same as the skeleton
    followed by ``with_fields``, and the request is untouched."""
    req = Message("0200", fields)
    before = dict(req.fields)
    out: dict = {n: req.fields[n] for n in (3, 11, 41, 42) if n in req.fields}
    if code is not None:
        out[39] = code
        if 4 in req.fields:
            out[4] = req.fields[4]
    expected = Message("0210", out).with_fields(extra)
    assert req.response(code, extra=extra) == expected
    assert dict(req.fields) == before


def test_a_message_over_its_own_dict_still_checks_the_mti():
    with pytest.raises(ValueError):
        Message.owning("21", {})
    assert Message.owning("0210", {39: "00"}) == Message("0210", {39: "00"})
