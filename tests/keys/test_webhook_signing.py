"""Webhook signatures and sealed secrets (keys/webhook.py). The expected signature is computed
here with the standard library from the documented recipe (docs/webhooks.md), not with the
module under test."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys import webhook as w

SECRETS = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=16,
                  max_size=80)  # fmt: skip
BODIES = st.binary(max_size=2048)
TIMES = st.integers(min_value=1_600_000_000, max_value=2_200_000_000)


def documented(secret: str, t: int, body: bytes) -> str:
    """docs/webhooks.md: hex HMAC-SHA256, key = the secret's text, message = "<t>." + body."""
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_fixed_example_as_the_docs_show_it():
    secret, t, body = "whsec_" + "ab" * 32, 1_767_225_600, b'{"id":"evt_1"}'
    header = w.sign(secret, t, body)
    assert header == f"t=1767225600,v1={documented(secret, t, body)}"
    assert w.verify(secret, header, body, now=t + 299)


@given(SECRETS, TIMES, BODIES)
def test_sign_matches_the_recipe_and_verifies(secret, t, body):
    header = w.sign(secret, t, body)
    assert header == f"t={t},v1={documented(secret, t, body)}"
    assert w.verify(secret, header, body, now=t)


@given(SECRETS, SECRETS, TIMES, BODIES, st.integers(min_value=0, max_value=2047))
def test_another_secret_a_changed_body_or_an_old_timestamp_fail(secret, other, t, body, i):
    header = w.sign(secret, t, body)
    if other != secret:
        assert not w.verify(other, header, body, now=t)
    changed = body[:i] + bytes([(body[i] ^ 1)]) + body[i + 1 :] if i < len(body) else body + b" "
    assert not w.verify(secret, header, changed, now=t)
    assert not w.verify(secret, header, body, now=t + w.DEFAULT_TOLERANCE + 1)
    assert not w.verify(secret, header, body, now=t - w.DEFAULT_TOLERANCE - 1)
    # a signature moved to another timestamp does not verify
    moved = header.replace(f"t={t}", f"t={t + 1}")
    assert not w.verify(secret, moved, body, now=t)


@given(st.text(max_size=200))
def test_any_header_text_is_an_answer_never_an_exception(header):
    assert w.verify("whsec_" + "0" * 64, header, b"{}", now=1_700_000_000) in (True, False)


@given(SECRETS, st.text(min_size=1, max_size=20))
def test_sealed_secret_opens_only_for_its_merchant_and_key(secret, mid):
    key, other_key = bytes(range(32)), bytes(32)
    sealed = w.seal(key, mid, secret)
    assert secret not in sealed and w.unseal(key, mid, sealed) == secret
    with pytest.raises(w.WebhookSecretError):
        w.unseal(other_key, mid, sealed)
    with pytest.raises(w.WebhookSecretError):
        w.unseal(key, mid + "x", sealed)


def test_secret_rules_and_check_value():
    fresh = w.new_secret()
    assert fresh.startswith("whsec_") and len(fresh) == 70 and w.new_secret() != fresh
    assert w.check_secret("  " + fresh + "\n") == fresh
    for bad in ("short", "has a space in it!!", "x" * 257, "ünïcödé-secret-0123"):
        with pytest.raises(w.WebhookSecretError):
            w.check_secret(bad)
    assert len(w.check_value(fresh)) == 6 and w.check_value(fresh) != w.check_value(fresh + "x")
