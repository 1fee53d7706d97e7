import pytest

from host.store import AlreadyExists, NotFound, hash_password, verify_password


def test_merchants(sync_store):
    m = sync_store.add_merchant("898340154110001", "Corner Shop", "5411")
    assert (m.mid, m.name, m.mcc, m.status) == ("898340154110001", "Corner Shop", "5411", "active")
    with pytest.raises(AlreadyExists):
        sync_store.add_merchant("898340154110001", "Other", "5812")
    sync_store.add_merchant("M2", "Cafe", "5812")
    sync_store.disable_merchant("M2")
    assert sync_store.get_merchant("M2").status == "disabled"
    assert [m.mid for m in sync_store.list_merchants(status="active")] == ["898340154110001"]
    sync_store.enable_merchant("M2")
    assert len(sync_store.list_merchants(status="active")) == 2
    with pytest.raises(NotFound):
        sync_store.get_merchant("nope")
    with pytest.raises(NotFound):
        sync_store.disable_merchant("nope")


def test_terminals(sync_store):
    sync_store.add_merchant("M1", "Shop", "5411")
    with pytest.raises(NotFound):
        sync_store.add_terminal("T0", "no-such-merchant", "003")
    with pytest.raises(ValueError):
        sync_store.add_terminal("T0", "M1", "002")
    t = sync_store.add_terminal("T1", "M1", "003", serial="0123ABC-45678901")
    assert (t.key_mode, t.current_batch, t.status, t.signed_on) == (
        "003",
        "000001",
        "active",
        False,
    )
    with pytest.raises(AlreadyExists):
        sync_store.add_terminal("T1", "M1", "001")
    sync_store.add_terminal("T2", "M1", "dukpt")

    sync_store.set_terminal_keys("T1", tmk_token="TMK-TOKEN-TEXT")
    sync_store.set_terminal_keys("T2", bdk_token="BDK-TOKEN-TEXT")
    assert sync_store.get_terminal("T1").tmk_token == "TMK-TOKEN-TEXT"
    assert sync_store.get_terminal("T2").bdk_token == "BDK-TOKEN-TEXT"

    sync_store.sign_on("T1", pik_token="PIK-TOK", mak_token="MAK-TOK", operator="01")
    t = sync_store.get_terminal("T1")
    assert (t.signed_on, t.pik_token, t.mak_token, t.tdk_token, t.operator) == (
        True, "PIK-TOK", "MAK-TOK", None, "01",
    )  # fmt: skip
    assert t.signed_on_at is not None
    assert "TOK" not in repr(t)  # key tokens never end up in logs via repr
    sync_store.sign_off("T1")
    t = sync_store.get_terminal("T1")
    assert (t.signed_on, t.pik_token, t.mak_token) == (False, None, None)
    assert t.tmk_token == "TMK-TOKEN-TEXT"

    sync_store.set_current_batch("T1", "000002")
    assert sync_store.get_terminal("T1").current_batch == "000002"
    sync_store.disable_terminal("T2")
    assert [t.tid for t in sync_store.list_terminals(mid="M1", status="active")] == ["T1"]
    sync_store.enable_terminal("T2")
    assert [t.tid for t in sync_store.list_terminals()] == ["T1", "T2"]
    with pytest.raises(NotFound):
        sync_store.set_current_batch("nope", "000002")


def test_operators(sync_store):
    sync_store.add_merchant("M1", "Shop", "5411")
    sync_store.add_terminal("T1", "M1", "001")
    with pytest.raises(NotFound):
        sync_store.add_operator("T9", "01", hash_password("x"), "operator")
    op = sync_store.add_operator("T1", "01", hash_password("1234"), "operator")
    assert (op.role, op.status) == ("operator", "active")
    assert verify_password("1234", sync_store.get_operator("T1", "01").password_hash)
    sync_store.add_operator("T1", "99", hash_password("0000"), "supervisor")
    with pytest.raises(AlreadyExists):
        sync_store.add_operator("T1", "01", hash_password("1234"), "operator")
    with pytest.raises(ValueError):
        sync_store.add_operator("T1", "02", hash_password("1234"), "admin")
    sync_store.disable_operator("T1", "01")
    assert sync_store.get_operator("T1", "01").status == "disabled"
    assert [o.operator_no for o in sync_store.list_operators("T1")] == ["01", "99"]
    sync_store.enable_operator("T1", "01")
    assert sync_store.get_operator("T1", "01").status == "active"


def test_password_hashes_are_salted_and_verify():
    a, b = hash_password("1234"), hash_password("1234")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("1234", a) and verify_password("1234", b)
    assert not verify_password("1235", a)
    assert not verify_password("1234", "garbage")
