"""RSA-SHA256 over the canonical string (keys/rsa_sign.py): what is signed, what verifies, and
that nothing about a bad signature raises or shows a key."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import rsa_sign

KEY = rsa_sign.generate()
OTHER = rsa_sign.generate()

values = st.one_of(st.text(max_size=30), st.integers(), st.booleans(),
                   st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))  # fmt: skip
names = st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True).filter(lambda k: k != "sign")
params = st.dictionaries(names, values, max_size=8)  # parameter names as the APIs spell them


@settings(max_examples=40, deadline=None)
@given(params)
def test_a_signature_verifies_in_any_key_order_and_not_when_anything_changes(p):
    sig = rsa_sign.sign(KEY, p)
    assert rsa_sign.verify(KEY.public, dict(reversed(list(p.items()))), sig)
    assert rsa_sign.verify(KEY.public, {**p, "sign": "ignored"}, sig)
    assert not rsa_sign.verify(OTHER.public, p, sig)
    assert not rsa_sign.verify(KEY.public, {**p, "zz_added": "1"}, sig)


@given(params)
def test_canonical_string_is_sorted_and_skips_sign_and_empty_values(p):
    text = rsa_sign.canonical({**p, "sign": "x", "empty": ""}).decode()
    assert text == rsa_sign.canonical(dict(sorted(p.items(), reverse=True))).decode()
    assert not text.startswith("sign=") and "&sign=" not in text and "empty=" not in text
    assert rsa_sign.canonical({"b": "2", "a": "1", "c": ""}) == b"a=1&b=2"


@given(st.one_of(st.text(max_size=400), st.integers(), st.none(), st.binary()))
def test_garbage_signatures_are_false_never_an_exception(sig):
    assert rsa_sign.verify(KEY.public, {"a": "1"}, sig) is False


def test_keys_are_made_once_kept_0600_and_never_shown(tmp_path: Path):
    private, public = tmp_path / "k.pem", tmp_path / "k_public.pem"
    key = rsa_sign.load_or_create(private, public)
    assert private.stat().st_mode & 0o777 == 0o600
    again = rsa_sign.load_or_create(private, public)
    assert again.public.fingerprint == key.public.fingerprint
    assert rsa_sign.load_public(public).fingerprint == key.public.fingerprint
    shown = repr(key) + repr(key.public) + str(key)
    assert "PRIVATE" not in shown and str(key.key.d) not in shown
    with pytest.raises(rsa_sign.SignatureKeyError):
        rsa_sign.private_from_pem(public.read_bytes())  # a public key is not a private one
    with pytest.raises(rsa_sign.SignatureKeyError):
        rsa_sign.load_public(tmp_path / "missing.pem")
