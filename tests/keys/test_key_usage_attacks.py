"""The key-usage attacks of issue 18, each performed through SoftHSM's public API and refused.

The attacker holds tokens and cryptograms only, on an HSM configured as the running host
builds it. Where an attack needs crafted material (a cut-and-paste cryptogram, a key block
under a weak KBPK), the test makes it from keys entered in a ceremony on the same LMK, so the
attacker gets the strongest inputs possible (even the right check value) and is still refused.
"""

from __future__ import annotations

import attrs
import pytest

from keys import des, pinblock, tr31
from keys.checkvalue import kcv
from keys.errors import KeyError_, KeysError, KeyUsageError, TR31Error
from keys.hsm import SoftHSM
from keys.tokens import Algorithm, KeyToken, KeyType

T = KeyType
LMK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")
PAN = "4012345678909"
# Two custodians' components; each XOR has odd parity and distinct halves.
C1 = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
C2 = bytes.fromhex("7230F04B7D1B4836FA9F4730E8A9BD69")
KNOWN = bytes(a ^ b for a, b in zip(C1, C2, strict=True))
AES_C1 = bytes(range(32))
AES_C2 = bytes(range(100, 132))


@pytest.fixture(scope="module")
def hsm() -> SoftHSM:
    """The HSM as the running host has it: no clear keys, no components, MAK/PIK may be 8."""
    return SoftHSM(LMK, single_length={T.TAK, T.TPK})


@pytest.fixture(scope="module")
def ceremony() -> SoftHSM:
    """A key ceremony on the same LMK (the test knows the clear values, the attacker not)."""
    return SoftHSM(LMK, ceremony=True)


@pytest.fixture(scope="module")
def keys(hsm):
    """A terminal's and a zone's keys, all generated inside the HSM."""
    return {
        "tmk": hsm.generate_key(T.TMK),
        "pik": hsm.generate_key(T.TPK),
        "mak": hsm.generate_key(T.TAK, 8),
        "tdk": hsm.generate_key(T.TDK),
        "zmk": hsm.generate_key(T.ZMK),
        "zpk": hsm.generate_key(T.ZPK),
        "zak": hsm.generate_key(T.ZAK),
        "kek": hsm.generate_key(T.KEK),
        "pvk": hsm.generate_key(T.PVK),
        "bdk": hsm.generate_key(T.BDK),
        "kbpk": hsm.generate_key(T.KBPK),
    }


WRAPPERS = ("tmk", "zmk", "kek")


def _every_reimport(hsm, keys, cryptogram, cv, as_type):
    """Try to bring ``cryptogram`` back in as ``as_type`` under every wrapping key."""
    for name in WRAPPERS:
        with pytest.raises(KeysError):
            hsm.import_key(as_type, cryptogram, keys[name], check_value=cv)


def test_pik_exported_under_tmk_never_returns_as_a_track_key(hsm, keys):
    crypt, cv = hsm.export_key(keys["pik"], keys["tmk"])
    with pytest.raises(KeyUsageError, match="TMK carries nothing"):
        hsm.import_key(T.TDK, crypt, keys["tmk"], check_value=cv)
    _every_reimport(hsm, keys, crypt, cv, T.TDK)
    # and the PIK itself cannot open "track data" (a PIN block) either
    with pytest.raises(KeyUsageError, match="TDK"):
        hsm.decrypt_track(keys["pik"], bytes(9).hex())
    # nor does a TR-31 P0 block of it import as a data key
    kbpk = keys["kbpk"]
    with pytest.raises(KeyUsageError, match="P0"):
        hsm.import_tr31(T.TDK, hsm.export_tr31(keys["pik"], kbpk), kbpk)


def test_issuer_zpk_never_returns_as_a_data_key_under_any_kek(hsm, keys):
    crypt, cv = hsm.export_key(keys["zpk"], keys["zmk"])
    for as_type in (T.TDK, T.ZEK, T.TMK, T.KEK):
        _every_reimport(hsm, keys, crypt, cv, as_type)
    with pytest.raises(KeyUsageError, match="KEK carries"):
        hsm.export_key(keys["zpk"], keys["kek"])
    with pytest.raises(KeyUsageError, match="TMK carries"):
        hsm.export_key(keys["zpk"], keys["tmk"])


def test_pin_key_never_returns_as_a_mac_key(hsm, keys):
    # terminal side: nothing comes back under a TMK
    crypt, cv = hsm.export_key(keys["pik"], keys["tmk"])
    with pytest.raises(KeyUsageError):
        hsm.import_key(T.TAK, crypt, keys["tmk"], check_value=cv)
    # zone side: the ZMK carries ZPK and ZAK, but a ZAK travels under the ZMK's variant, so a
    # ZPK cryptogram opened as a ZAK gives another key, which its check value betrays
    crypt, cv = hsm.export_key(keys["zpk"], keys["zmk"])
    with pytest.raises(KeyError_, match="check value"):
        hsm.import_key(T.ZAK, crypt, keys["zmk"], check_value=cv)
    crypt, cv = hsm.export_key(keys["zak"], keys["zmk"])
    with pytest.raises(KeyError_, match="check value"):
        hsm.import_key(T.ZPK, crypt, keys["zmk"], check_value=cv)
    # the honest round trips still work
    assert hsm.import_key(T.ZAK, crypt, keys["zmk"], check_value=cv) == keys["zak"]
    crypt, cv = hsm.export_key(keys["zpk"], keys["zmk"])
    assert hsm.import_key(T.ZPK, crypt, keys["zmk"], check_value=cv) == keys["zpk"]


def test_data_key_never_becomes_a_tmk(hsm, keys):
    crypt, cv = hsm.export_key(keys["tdk"], keys["tmk"])
    _every_reimport(hsm, keys, crypt, cv, T.TMK)
    with pytest.raises(KeyUsageError):
        hsm.export_key(keys["tdk"], keys["kek"])
    with pytest.raises(KeyUsageError):
        hsm.export_key(keys["tdk"], keys["zmk"])


def test_tmk_never_becomes_a_track_key(hsm, keys):
    crypt, cv = hsm.export_key(keys["tmk"], keys["kek"])
    _every_reimport(hsm, keys, crypt, cv, T.TDK)
    # a TMK cryptogram under the KEK opened as a ZMK hits the ZMK variant: wrong check value
    with pytest.raises(KeyError_, match="check value"):
        hsm.import_key(T.ZMK, crypt, keys["kek"], check_value=cv)
    with pytest.raises(KeyUsageError, match="TDK"):
        hsm.decrypt_track(keys["tmk"], "6222020200112233445=29122201234567890")


@pytest.mark.parametrize("key_type", [T.KEK, T.KBPK, T.ZMK, T.TMK, T.ZPK])
def test_no_clear_key_enters_the_running_hsm(hsm, key_type):
    with pytest.raises(KeyUsageError, match=r"clear key import .* refused"):
        hsm.import_clear(key_type, KNOWN)
    with pytest.raises(KeyUsageError, match="ceremony"):
        hsm.import_components(key_type, [C1, C2])


def test_a_ceremony_needs_two_components(ceremony):
    with pytest.raises(KeyError_, match="two components"):
        ceremony.import_components(T.KEK, [KNOWN])
    assert ceremony.import_components(T.KEK, [C1, C2]).check_value == kcv(KNOWN).hex().upper()


def test_cut_and_paste_halves_are_refused(hsm, ceremony):
    zmk_clear = KNOWN
    zmk = ceremony.import_components(T.ZMK, [C1, C2])
    zpk = hsm.generate_key(T.ZPK)
    crypt, _ = hsm.export_key(zpk, zmk)
    pasted = crypt[:8] + crypt[:8]  # C_L || C_L: a 56-bit key if accepted
    clear = des.new_ecb(zmk_clear).decrypt(pasted)
    assert clear[:8] == clear[8:]
    with pytest.raises(KeyError_, match="equal adjacent halves"):
        hsm.import_key(T.ZPK, pasted, zmk, check_value=kcv(clear, 4))


@pytest.mark.parametrize("cv", [None, b"", b"\x00", b"\x00\x00", bytes(9)])
def test_import_needs_a_full_check_value(hsm, keys, cv):
    crypt, good = hsm.export_key(keys["zpk"], keys["zmk"])
    with pytest.raises(KeyError_, match="check value"):
        hsm.import_key(T.ZPK, crypt, keys["zmk"], check_value=cv)
    # a prefix of the right check value is still a check value; a wrong byte anywhere is not
    assert hsm.import_key(T.ZPK, crypt, keys["zmk"], check_value=good[:3]) == keys["zpk"]
    with pytest.raises(KeyError_, match="check value"):
        hsm.import_key(T.ZPK, crypt, keys["zmk"], check_value=good[:3] + bytes([good[3] ^ 1]))


def _kbpk(ceremony):
    return ceremony.import_components(T.KBPK, [C1, C2]), KNOWN


def test_encrypt_only_pin_key_cannot_decrypt_pin_blocks(hsm, ceremony, keys):
    kbpk, kbpk_clear = _kbpk(ceremony)
    pik_clear = des.adjust_parity(bytes.fromhex("F039121BEC83D26B169BDCD5B22AAF8F"))
    block = tr31.wrap(kbpk_clear, tr31.Header("B", "P0", "T", "E"), pik_clear)
    pik = hsm.import_tr31(T.TPK, block, kbpk)
    assert pik.mode == "E"
    enc = des.encrypt_ecb(pik_clear, pinblock.encode(0, "1234", PAN))
    with pytest.raises(KeyUsageError, match="mode of use E"):
        hsm.translate_pin(enc, PAN, pik, keys["zpk"])
    # relabelling the token's mode does not unwrap: the mode is bound under the LMK
    with pytest.raises(KeyUsageError, match="does not unwrap"):
        hsm.translate_pin(enc, PAN, attrs.evolve(pik, mode=""), keys["zpk"])
    # nor can it leave with a wider mode
    with pytest.raises(KeyUsageError, match="mode of use E"):
        hsm.export_tr31(pik, kbpk, mode="B")
    # decrypt-only keys cannot encrypt; verify-only MAC keys cannot generate
    zpk_d = hsm.import_tr31(
        T.ZPK, tr31.wrap(kbpk_clear, tr31.Header("B", "P0", "T", "D"), pik_clear), kbpk
    )
    with pytest.raises(KeyUsageError, match="mode of use D"):
        hsm.translate_pin(enc, PAN, zpk_d, zpk_d)
    mak_v = hsm.import_tr31(
        T.ZAK, tr31.wrap(kbpk_clear, tr31.Header("B", "M3", "T", "V"), pik_clear), kbpk
    )
    with pytest.raises(KeyUsageError, match="mode of use V"):
        hsm.generate_mac(mak_v, b"data", "x9.19")
    assert hsm.verify_mac(mak_v, b"data", bytes(8), "x9.19") is False


def test_one_k0_block_is_one_key_type(hsm, ceremony, keys):
    kbpk, kbpk_clear = _kbpk(ceremony)
    block = hsm.export_tr31(keys["tmk"], kbpk)
    assert hsm.import_tr31(T.TMK, block, kbpk) == keys["tmk"]
    for other in (T.ZMK, T.KEK):
        with pytest.raises(KeyUsageError, match="K0 key block is a TMK"):
            hsm.import_tr31(other, block, kbpk)
    zmk_block = hsm.export_tr31(keys["zmk"], kbpk)
    with pytest.raises(KeyUsageError, match="K0 key block is a ZMK"):
        hsm.import_tr31(T.TMK, zmk_block, kbpk)
    # a foreign K0 block (no poshost type block) becomes the configured type only
    foreign = tr31.wrap(kbpk_clear, tr31.Header("B", "K0", "T", "B"), KNOWN)
    assert hsm.import_tr31(T.TMK, foreign, kbpk).key_type is T.TMK
    for other in (T.ZMK, T.KEK):
        with pytest.raises(KeyUsageError, match="K0 key block is a TMK"):
            hsm.import_tr31(other, foreign, kbpk)


def test_a_wrapping_key_is_at_least_as_strong_as_what_it_wraps(hsm, ceremony):
    kbpk, kbpk_clear = _kbpk(ceremony)  # 2-key TDES: 80 bits
    bdk = ceremony.import_components(T.BDK_AES, [AES_C1, AES_C2], Algorithm.AES)
    with pytest.raises(KeyUsageError, match="256-bit key cannot be wrapped under a 80-bit"):
        hsm.export_tr31(bdk, kbpk)
    aes_bdk = bytes(a ^ b for a, b in zip(AES_C1, AES_C2, strict=True))
    block = tr31.wrap(kbpk_clear, tr31.Header("B", "B0", "A", "X"), aes_bdk)
    with pytest.raises(KeyUsageError, match="cannot be wrapped"):
        hsm.import_tr31(T.BDK_AES, block, kbpk)
    # a triple-length TDES key under a double-length ZMK is refused too
    zmk = ceremony.import_components(T.ZMK, [C1, C2])
    zpk3 = hsm.generate_key(T.ZPK, 24)
    with pytest.raises(KeyUsageError, match="cannot be wrapped"):
        hsm.export_key(zpk3, zmk)


def test_even_parity_and_repeated_halves_are_refused(hsm, ceremony, keys):
    zmk = ceremony.import_components(T.ZMK, [C1, C2])
    kbpk, kbpk_clear = _kbpk(ceremony)
    even = bytes(b ^ 1 for b in KNOWN)  # every byte's parity flipped
    k_k = KNOWN[:8] * 2
    for bad, why in ((even, "odd parity"), (k_k, "equal adjacent halves")):
        crypt = des.new_ecb(KNOWN).encrypt(bad)
        with pytest.raises(KeyError_, match=why):
            hsm.import_key(T.ZPK, crypt, zmk, check_value=kcv(bad, 4))
        block = tr31.wrap(kbpk_clear, tr31.Header("B", "P0", "T", "B"), bad)
        with pytest.raises(KeyError_, match=why):
            hsm.import_tr31(T.ZPK, block, kbpk)
        with pytest.raises(KeyError_, match=why):
            ceremony.import_components(T.ZPK, [bad, bytes(16)])


def test_single_length_keys_only_for_the_configured_types(hsm, ceremony):
    assert len(hsm.generate_key(T.TAK, 8).cryptogram) > 8  # the dialect's MAK
    for key_type in (T.ZPK, T.TMK, T.KEK, T.TDK):
        with pytest.raises(KeyError_, match="single-length"):
            hsm.generate_key(key_type, 8)
    with pytest.raises(KeyError_, match="single-length"):
        ceremony.import_components(T.TPK, [C1[:8], C2[:8]])


def test_legacy_key_blocks_only_behind_the_setting(hsm, ceremony):
    # TR-31:2018 A.7.2.1 (version A, published in ANSI X9 TR-31:2018 annex A)
    block = "A0072P0TE00E0000F5161ED902807AF26F1D62263644BD24D52C8D44AAEDA6D81752022B"
    with pytest.raises(TR31Error, match="legacy"):
        hsm.import_tr31(T.TPK, block, hsm.generate_key(T.KBPK))
    with pytest.raises(TR31Error, match="never produced"):
        tr31.wrap(KNOWN, tr31.Header("A", "P0", "T", "E"), KNOWN)


def test_forged_tokens_stay_refused(hsm, keys):
    for tok in keys.values():
        relabelled = attrs.evolve(tok, key_type=T.TDK if tok.key_type is not T.TDK else T.TAK)
        with pytest.raises(KeysError):
            hsm.decrypt_track(relabelled, "6222020200112233445=29122201234567890")
    narrowed = KeyToken.from_text(keys["mak"].to_text() + ":MG")
    with pytest.raises(KeyUsageError, match="does not unwrap"):
        hsm.generate_mac(narrowed, b"data")


def test_a_token_used_once_is_checked_again_for_every_other_use(hsm):
    """The SoftHSM finds a token's engine by identity on the hot path: a token that served a MAC
    is still refused as a PIN key, or for a direction its mode of use excludes, however often
    it served before and however the caller builds the set of allowed types."""
    tak = hsm.generate_key(T.TAK, 8)
    data = b"0200 a message"
    mac = hsm.generate_mac(tak, data)
    for _ in range(3):
        assert hsm.verify_mac(tak, data, mac)
        with pytest.raises(KeyUsageError):
            hsm._engine(tak, frozenset({T.ZPK, T.TPK}), "PIN translation (source)", "decrypt")
        with pytest.raises(KeyUsageError):
            hsm._engine(tak, frozenset(set([T.ZPK])), "PIN translation", "encrypt")
    verify_only = attrs.evolve(tak, mode="V")
    with pytest.raises(KeysError):  # the wrapping binds the mode: never a way to generate
        hsm.generate_mac(verify_only, data)
