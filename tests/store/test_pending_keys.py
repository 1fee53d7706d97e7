"""Pending sign-on keys in the store (migration v10), on both backends: a terminal with keys
keeps them until the new ones are proven; promotion and dropping name the set by its MAK."""

import pytest

from host.store import NotFound


def test_pending_keys_wait_until_promoted(sync_store):
    sync_store.add_merchant("M1", "Shop", "5411")
    sync_store.add_terminal("T1", "M1", "004")
    with pytest.raises(NotFound):
        sync_store.sign_on("T9", pik_token="P", mak_token="M")
    assert sync_store.sign_on("T1", pik_token="P1", mak_token="M1", operator="01") == "current"
    assert sync_store.sign_on("T1", pik_token="P2", mak_token="M2", tdk_token="D2",
                              operator="02", now=1000) == "pending"  # fmt: skip
    t = sync_store.get_terminal("T1")
    assert (t.pik_token, t.mak_token, t.operator) == ("P1", "M1", "01")
    assert (t.pending_pik_token, t.pending_mak_token, t.pending_tdk_token, t.pending_at) == (
        "P2", "M2", "D2", 1000,
    )  # fmt: skip
    assert "M2" not in repr(t)
    assert sync_store.sign_on("T1", pik_token="P3", mak_token="M3", now=2000) == "replaced"
    assert not sync_store.promote_keys("T1", "M2")  # replaced: no longer pending
    assert sync_store.promote_keys("T1", "M3")
    t = sync_store.get_terminal("T1")
    assert (t.pik_token, t.mak_token, t.tdk_token, t.pending_mak_token) == ("P3", "M3", None, None)
    assert sync_store.promote_keys("T1", "M3")  # a concurrent request promoted them first
    sync_store.sign_on("T1", pik_token="P4", mak_token="M4", now=3000)
    assert not sync_store.drop_pending_keys("T1", "M3")
    assert sync_store.drop_pending_keys("T1", "M4")
    t = sync_store.get_terminal("T1")
    assert (t.mak_token, t.pending_mak_token, t.pending_at) == ("M3", None, None)
    sync_store.sign_on("T1", pik_token="P5", mak_token="M5")
    sync_store.sign_off("T1")
    t = sync_store.get_terminal("T1")
    assert (t.signed_on, t.mak_token, t.pending_mak_token) == (False, None, None)
    assert sync_store.sign_on("T1", pik_token="P6", mak_token="M6") == "current"
