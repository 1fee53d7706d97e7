"""DUKPT against ANSI X9.24-1-2009 Annex A and X9.24-3-2017 test vectors."""

import pytest

from keys import des, dukpt, mac, pinblock
from keys.errors import DukptError

BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
IKSN = "FFFF9876543210"
IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")

# ANSI X9.24-1-2009 A.4 "DUKPT Test Data Examples": A.4.2 (initial sequence E00001..E00015)
# and A.4.3 (roll-over sequence EFF800..F00000): KSN -> PIN-variant key, MAC-variant key, and
# the PIN block (PIN 1234, PAN 4012345678909, format 0 = 041274EDCBA9876F) encrypted under the
# PIN key. The E10000..E80000 rows (single high counter bits, where the PyPI `dukpt` package
# goes wrong) are from the verification table published with marianovolker/jmps-public
# (GVRlib dukpt.py, "DUKPT2000"), which reproduces the A.4 rows above exactly.
ANNEX_A = [
    (
        "E00001",
        "042666B49184CF5C68DE9628D0397B36",
        "042666B4918430A368DE9628D03984C9",
        "1B9C1845EB993A7A",
    ),
    (
        "E00002",
        "C46551CEF9FD244FAA9AD834130D3B38",
        "C46551CEF9FDDBB0AA9AD834130DC4C7",
        "10A01C8D02C69107",
    ),
    (
        "E00003",
        "0DF3D9422ACA561A47676D07AD6BAD05",
        "0DF3D9422ACAA9E547676D07AD6B52FA",
        "18DC07B94797B466",
    ),
    (
        "E00004",
        "279C0F6AEED0BE9A2B2C733E1383AE6E",
        "279C0F6AEED041652B2C733E13835191",
        "0BC79509D5645DF7",
    ),
    (
        "E00005",
        "5F8DC6D2C845C1DA508DDC048093B8C0",
        "5F8DC6D2C8453E25508DDC048093473F",
        "5BC0AF22AD87B327",
    ),
    (
        "E00006",
        "5E415CB0BAF9F0C3D0C14B63FB62FFBC",
        "5E415CB0BAF90F3CD0C14B63FB620043",
        "A16DF70AE36158D8",
    ),
    (
        "E00007",
        "0C8F780B7C8B492FAE84A9EB2A6CE69F",
        "0C8F780B7C8BB6D0AE84A9EB2A6C1960",
        "27711C16CB257F8E",
    ),
    (
        "E00008",
        "27F66D5244FF621EAA6F6120EDEB427F",
        "27F66D5244FF9DE1AA6F6120EDEBBD80",
        "50E55547A5027551",
    ),
    (
        "E00009",
        "27E31064FDC565968900E2057F658E81",
        "27E31064FDC59A698900E2057F65717E",
        "536CF7F678ACFC8D",
    ),
    (
        "E0000A",
        "6CF2500A22507C83C776CEADC1E330EB",
        "6CF2500A2250837CC776CEADC1E3CF14",
        "EDABBA23221833FE",
    ),
    (
        "E00010",
        "59598DCBD9BD943F94165CE453585FA8",
        "59598DCBD9BD6BC094165CE45358A057",
        "D5D9638559EF53D6",
    ),
    (
        "E00015",
        "E161D1956A61F62DF37AFD7F9CC36965",
        "E161D1956A6109D2F37AFD7F9CC3969A",
        "72105C22EBC791E6",
    ),
    (
        "E10000",
        "2F9A0C0B46ECCBA1F8287A7A071AF54B",
        "2F9A0C0B46EC345EF8287A7A071A0AB4",
        "19776D96D73AF1E2",
    ),
    (
        "E20000",
        "DEFDE0EA1043B58D2FA013DE6C4B8F04",
        "DEFDE0EA10434A722FA013DE6C4B70FB",
        "83F14581B8946B2D",
    ),
    (
        "E40000",
        "9F59E8536BDB056513C856FCCF9A0981",
        "9F59E8536BDBFA9A13C856FCCF9AF67E",
        "96B3ADCBF9F5219C",
    ),
    (
        "E80000",
        "87B9983D9D23047A8D199F5CA0C3DEEC",
        "87B9983D9D23FB858D199F5CA0C32113",
        "1E0F453FD55FCE45",
    ),
    (
        "EFF800",
        "F9CDFEBF4F5B1D61B3EC12454527E189",
        "F9CDFEBF4F5BE29EB3EC124545271E76",
        "33365F5CC6F23C35",
    ),
    (
        "EFF801",
        "5BEE92627E9782A3911BF619DF72CAC4",
        "5BEE92627E977D5C911BF619DF72353B",
        "3A86BF003F835C9D",
    ),
    (
        "EFF880",
        "CA8225C587124D04B87F279C0BE297D8",
        "CA8225C58712B2FBB87F279C0BE26827",
        "22E340D6ABB40981",
    ),
    (
        "EFFC00",
        "F9430DF97508246EC77BE4EF4FDB9111",
        "F9430DF97508DB91C77BE4EF4FDB6EEE",
        "DEFC6F09F8927B71",
    ),
    (
        "F00000",
        "AA4D58DB653EC7B548C75F2F047DD24A",
        "AA4D58DB653E384A48C75F2F047D2DB5",
        "73EC88AD0AC5830E",
    ),
]


def test_ipek_x924_annex_a():
    # ANSI X9.24-1-2009 Annex A: BDK 0123456789ABCDEFFEDCBA9876543210, KSN
    # FFFF9876543210E00000 -> IPEK 6AC292FAA1315B4D858AB3A3D7D5933A.
    assert dukpt.derive_ipek(BDK, bytes.fromhex(IKSN + "E00000")) == IPEK
    # The IPEK ignores the counter bits (the PyPI `dukpt` 1.0.1 gets this wrong).
    assert dukpt.derive_ipek(BDK, bytes.fromhex(IKSN + "EFF800")) == IPEK


@pytest.mark.parametrize(("ctr", "pin_key", "mac_key", "epb"), ANNEX_A)
def test_transaction_keys_annex_a(ctr, pin_key, mac_key, epb):
    ksn = bytes.fromhex(IKSN + ctr)
    tk = dukpt.derive_transaction_key(IPEK, ksn)
    assert dukpt.pin_key(tk).hex().upper() == pin_key
    assert dukpt.mac_key(tk).hex().upper() == mac_key
    clear = pinblock.encode(0, "1234", "4012345678909")
    assert des.encrypt_ecb(dukpt.pin_key(tk), clear).hex().upper() == epb


@pytest.mark.parametrize(
    ("ctr", "mac4"),
    [
        ("E00001", "BF3DF9F4"),
        ("E00002", "1F05D23A"),
        ("E10000", "D9DFF7D6"),
        ("F00000", "E771B48A"),
    ],
)
def test_dukpt_x919_mac_secondary_table(ctr, mac4):
    # Same verification table (marianovolker/jmps-public GVRlib dukpt.py): X9.19 MAC, with the
    # MAC request variant, of the ASCII text "1234567890" * 4, first 4 bytes.
    tk = dukpt.derive_transaction_key(IPEK, bytes.fromhex(IKSN + ctr))
    out = mac.x919_mac(dukpt.mac_key(tk), b"1234567890" * 4)
    assert out[:4].hex().upper() == mac4


def test_cache_gives_identical_keys_in_any_order():
    cache = dukpt.DukptCache(1000)
    for ctr, pin_key, _, _ in reversed(ANNEX_A):
        tk = dukpt.derive_transaction_key(IPEK, bytes.fromhex(IKSN + ctr), cache=cache)
        assert dukpt.pin_key(tk).hex().upper() == pin_key
    for ctr, pin_key, _, _ in ANNEX_A:
        tk = dukpt.derive_transaction_key(IPEK, bytes.fromhex(IKSN + ctr), cache=cache)
        assert dukpt.pin_key(tk).hex().upper() == pin_key


def test_data_keys_variant_and_2009():
    tk = dukpt.derive_transaction_key(IPEK, bytes.fromhex(IKSN + "E00001"))
    variant = dukpt.data_variant(tk)
    # The bare variant is a plain XOR with 0000000000FF0000 0000000000FF0000.
    assert variant == bytes(a ^ b for a, b in zip(tk, dukpt.DATA_VARIANT, strict=True))
    # X9.24-1-2009 A.4.1 figure A-2 (X9.24-3-2017 C.5.2 figure 6): the data key is the
    # variant with each half TDES-encrypted under the variant itself.
    key2009 = dukpt.data_key_2009(tk)
    assert key2009 == des.encrypt_ecb(variant, variant[:8]) + des.encrypt_ecb(variant, variant[8:])
    assert key2009 != variant


@pytest.mark.parametrize(
    ("ctr", "msg"),
    [
        ("E00000", "counter is 0"),
        ("EFFE00", "more than 10 one bits"),  # 11 bits set
        ("FFFFFF", "exhausted"),
        ("FFFC00", "exhausted"),
    ],
)
def test_bad_counters_refused(ctr, msg):
    with pytest.raises(DukptError, match=msg):
        dukpt.derive_transaction_key(IPEK, bytes.fromhex(IKSN + ctr))


def test_bad_ksn_length():
    with pytest.raises(DukptError):
        dukpt.derive_transaction_key(IPEK, bytes(9))


# --- AES DUKPT ----------------------------------------------------------------------------

AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
IKID = bytes.fromhex("1234567890123456")


def _ksn(counter: int) -> bytes:
    return IKID + counter.to_bytes(4, "big")


def test_aes128_initial_key():
    # ANSI X9.24-3-2017 Annex B / test-vector supplement: BDK-128, IKID 1234567890123456
    # -> initial key 1273671EA26AC29AFA4D1084127652A1.
    assert dukpt.derive_initial_key(AES_BDK, IKID).hex().upper() == (
        "1273671EA26AC29AFA4D1084127652A1"
    )


def test_aes256_initial_key():
    # X9.24-3-2017 test-vector supplement, AES-256 BDK (the 128-bit BDK twice).
    bdk = AES_BDK + AES_BDK
    assert dukpt.derive_initial_key(bdk, IKID).hex().upper() == (
        "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F"
    )


@pytest.mark.parametrize(
    ("counter", "derivation", "usage", "key"),
    [
        # X9.24-3-2017 test-vector supplement, AES-128 BDK, AES-128 working keys.
        (
            1,
            "4F21B565BAD9835E112B6465635EAE44",
            "PIN_ENCRYPTION",
            "AF8CB133A78F8DC2D1359F18527593FB",
        ),
        (
            1,
            "4F21B565BAD9835E112B6465635EAE44",
            "MAC_GENERATION",
            "A2DC23DE6FDE0824A2BC321E08E4B8B7",
        ),
        (1, "4F21B565BAD9835E112B6465635EAE44", "DATA_ENCRYPT", "A35C412EFD41FDB98B69797C02DCD08F"),
        (
            2,
            "2F34D68DE10F68D38091A73B9E7C437C",
            "PIN_ENCRYPTION",
            "D30BDC73EC9714B000BEC66BDB7B6D09",
        ),
    ],
)
def test_aes128_working_keys(counter, derivation, usage, key):
    ik = dukpt.derive_initial_key(AES_BDK, IKID)
    dk = dukpt.derive_aes_derivation_key(ik, _ksn(counter))
    assert dk.hex().upper() == derivation
    wk = dukpt.derive_working_key(
        dk, _ksn(counter), dukpt.KeyUsage[usage], dukpt.DerivedKeyType.AES128
    )
    assert wk.hex().upper() == key
    assert (
        dukpt.host_derive_working_key(
            AES_BDK, _ksn(counter), dukpt.KeyUsage[usage], dukpt.DerivedKeyType.AES128
        )
        .hex()
        .upper()
        == key
    )


def test_aes_counter_rules():
    ik = dukpt.derive_initial_key(AES_BDK, IKID)
    with pytest.raises(DukptError, match="counter is 0"):
        dukpt.derive_aes_derivation_key(ik, _ksn(0))
    with pytest.raises(DukptError, match="more than 16 one bits"):
        dukpt.derive_aes_derivation_key(ik, _ksn(0x0001FFFF))  # 17 bits
    with pytest.raises(DukptError, match="exhausted"):
        dukpt.derive_aes_derivation_key(ik, _ksn(0xFFFF8000))
    dukpt.derive_aes_derivation_key(ik, _ksn(0xFFFF0000))  # 16 bits: the last usable one


def test_aes_cache_consistency():
    cache = dukpt.DukptCache(100)
    ik = dukpt.derive_initial_key(AES_BDK, IKID)
    for c in (0x845FED, 1, 2, 0x845FEE, 0x845FED):
        assert dukpt.derive_aes_derivation_key(ik, _ksn(c), cache=cache) == (
            dukpt.derive_aes_derivation_key(ik, _ksn(c))
        )


@pytest.mark.parametrize(
    ("counter", "derivation_key"),
    [
        # ANSI X9.24-3-2017 test-vector supplement, AES-256 BDK (FEDCBA9876543210F1F1F1F1F1F1F1F1
        # twice): first KSNs (p. 7), the 0x1FFFE/0x20000 roll-over (p. 10) and the last
        # counters (p. 12) — transaction-derivation keys as listed there.
        (0x00000001, "54AC2B32B145EA4A554CB8BC44B17467063A799856B1CCC2A138D36E8DBF78B3"),
        (0x00000002, "5DD5A0253842BBBE1D7C0DA27021412C6F1FAB53FB928DEAE56DA06090A9DE97"),
        (0x00000008, "20A796D5077D51B8E7613893A4F095B134E02917DC84BD391F3661D0873FF308"),
        (0x0001FFFE, "A289508CBF1228452CD86AB77B15CB35577AC828C18BB66681E5A16D6C9CCED3"),
        (0x00020000, "D62DDA94A47D7DA5D763443B4ECB15EA8DD62E0E4F915958BA459591F8312E37"),
        (0x00020001, "44110A1102748D4A3AC326F53D8CAC650212590CA7126D54546DDE0F20E89CEE"),
        (0xFFFE2000, "4625EB06E4886D4AFCC9AE37ED4F4E4E1653C9E60E3F24742A87A26AA96AB7A6"),
        (0xFFFE8000, "630535C9C53E1EC6524016930B56F6728909C45403536B419AEBCB25B7351C07"),
        (0xFFFF0000, "6D6DB7AAAE8B3EA90E57A39E4BBA71E173B21B446B30A78D64BFC6A8806C55EE"),
    ],
)
def test_aes256_derivation_keys_supplement(counter, derivation_key):
    ik = dukpt.derive_initial_key(AES_BDK + AES_BDK, IKID)
    cache = dukpt.DukptCache(64)
    for _ in range(2):  # cold, then through the cache
        dk = dukpt.derive_aes_derivation_key(ik, _ksn(counter), cache=cache)
        assert dk.hex().upper() == derivation_key


def test_aes256_counter_0x1ffff_refused():
    # The supplement lists 0x1FFFF, but it has 17 one bits: X9.24-3-2017 devices skip it.
    ik = dukpt.derive_initial_key(AES_BDK + AES_BDK, IKID)
    with pytest.raises(DukptError):
        dukpt.derive_aes_derivation_key(ik, _ksn(0x1FFFF))


def test_aes256_working_key_lengths():
    ik = dukpt.derive_initial_key(AES_BDK + AES_BDK, IKID)
    dk = dukpt.derive_aes_derivation_key(ik, _ksn(1))
    k128 = dukpt.derive_working_key(
        dk, _ksn(1), dukpt.KeyUsage.PIN_ENCRYPTION, dukpt.DerivedKeyType.AES128
    )
    k256 = dukpt.derive_working_key(
        dk, _ksn(1), dukpt.KeyUsage.PIN_ENCRYPTION, dukpt.DerivedKeyType.AES256
    )
    assert len(k128) == 16 and len(k256) == 32 and k256[:16] != k128
    small = dukpt.derive_aes_derivation_key(dukpt.derive_initial_key(AES_BDK, IKID), _ksn(1))
    with pytest.raises(DukptError):
        dukpt.derive_working_key(
            small, _ksn(1), dukpt.KeyUsage.PIN_ENCRYPTION, dukpt.DerivedKeyType.AES256
        )


# --- HMAC key types (X9.24-3-2017 6.2.1/6.2.2) ------------------------------------------------
# No vector for an HMAC working key itself was found: not in the X9 supplement as its public
# reference implementations quote it (openemv/dukpt, joyner-perez/aes_dukpt_x9.24-3-2017 list
# AES working keys only; openemv/dukpt tests HMAC by generate-then-verify). The one published
# set of fixed values is moov-io/dukpt's (an independent Go implementation; below), HMAC-SHA256
# MACs under HMAC128 keys, which pin the HMAC128 derivation; HMAC192/HMAC256 keep the property
# tests against the derivation-data layout of X9.24-3-2017 table 4 (version 01, block counter,
# usage, algorithm 0005, length, 8 data bytes).

# moov-io/dukpt, pkg/aes/aes_test.go at commit b119e5195a6f14f83af993fb6a503e7c826ddf2e
# (InitialSequence, TestAES128): AES-128 BDK FEDCBA9876543210F1F1F1F1F1F1F1F1, KSNs
# 1234567890123456 00000001..00000008, HMAC-SHA256 over the ASCII text "4012345678909D987" under
# the HMAC128 working key for MAC generation (request, usage 2000) and for MAC verification
# (response, usage 2001). The transaction keys there are the X9 supplement's (4F21B565...).
MOOV_HMAC128 = [
    (1, "B6F8B3159CD4E140159DA87A68C0FB7AF2F123D222662E98988C76386E8E8A02",
     "DDE7CB7BDE05AC9A934919B5D94C37954F2376BAF5D45031A56FE74D94C4B64D"),
    (2, "A884FD458692820E8458AD9FF4FCE58D6B809AB3AE617AE1FC6B70E9E9C12B08",
     "32C4EEBF5FB820C4E90A580C0769E5BF8188007191AFAEF53F7C585B03285314"),
    (3, "5CCB50FB8001C07C51191502BFC7586E165219F59D87938C8A7A84D41AF44F18",
     "255E08E91BB5AFFD26C695110FAB5167AB36C9A3C61C78BD2401292A8EFE7C0A"),
    (4, "5E3C734C41496A10130BE415CBDB8E4F9027250997803DC742D4988123C2963F",
     "6493E4DB82E4ACFB3AA3830EBEF7365A31B0D7E3B463304FB3EBBC372A866292"),
    (5, "E49D95FD38DF4E39371FD6FD0789E1A2E9A663E20764BF935B457ECEEAE46CBD",
     "401CBB584E48C3E08A212A3117E087520D38E4EC054749747D1435B421C9DCE6"),
    (6, "D5B61390352342D2027DFD120F32E77831B32BF34700FBA8232D80780D492766",
     "6644594E7C867C2BF0FBA7F00CAF2E184823AE0D9C40FCAA6F48A3605737094D"),
    (7, "E0A41D52B44C96D5D730BB0DC2F747E7FE5970CE58C0043C42CD3769F6CA3925",
     "55F096E89E56A27438F6D01A6DCBF9D396E29EA076C3CC9823B2BB5996ED17EE"),
    (8, "D7CAB17596E6D193B83E0E13CAB35A179B7296DC04A42D8145B9DF6E60A2A47F",
     "32403C170DD07A7C823247DF37649D49FDE905482D1B1C6A62E03E735FA2E384"),
]  # fmt: skip


@pytest.mark.parametrize(("counter", "request_mac", "response_mac"), MOOV_HMAC128)
def test_hmac128_working_keys_match_moov_io_dukpt(counter, request_mac, response_mac):
    import hashlib
    import hmac

    data = b"4012345678909D987"
    for usage, expected in (
        (dukpt.KeyUsage.MAC_GENERATION, request_mac),
        (dukpt.KeyUsage.MAC_VERIFICATION, response_mac),
    ):
        key = dukpt.host_derive_working_key(
            AES_BDK, _ksn(counter), usage, dukpt.DerivedKeyType.HMAC128
        )
        assert len(key) == 16
        assert hmac.new(key, data, hashlib.sha256).hexdigest().upper() == expected


@pytest.mark.parametrize(
    ("key_type", "bits"),
    [
        (dukpt.DerivedKeyType.HMAC128, 128),
        (dukpt.DerivedKeyType.HMAC192, 192),
        (dukpt.DerivedKeyType.HMAC256, 256),
    ],
)
def test_hmac_working_keys_follow_the_table_4_layout(key_type, bits):
    from Crypto.Cipher import AES

    ik = dukpt.derive_initial_key(AES_BDK + AES_BDK, IKID)
    ksn = _ksn(5)
    dk = dukpt.derive_aes_derivation_key(ik, ksn)
    usage = dukpt.KeyUsage.MAC_GENERATION
    key = dukpt.derive_working_key(dk, ksn, usage, key_type)
    assert key_type.indicator == 0x0005 and len(key) == bits // 8
    ecb = AES.new(dk, AES.MODE_ECB)
    blocks = b""
    for counter in range(1, (bits + 127) // 128 + 1):
        data = bytes([1, counter]) + (0x2000).to_bytes(2, "big") + bytes.fromhex("0005")
        data += bits.to_bytes(2, "big") + IKID[4:] + (5).to_bytes(4, "big")
        blocks += ecb.encrypt(data)
    assert key == blocks[: bits // 8]
    aes_same_length = {128: "AES128", 192: "AES192", 256: "AES256"}[bits]
    other = dukpt.derive_working_key(dk, ksn, usage, dukpt.DerivedKeyType[aes_same_length])
    assert other != key  # the algorithm indicator separates an HMAC key from an AES key


def test_hmac_key_not_longer_than_its_derivation_key():
    dk = dukpt.derive_aes_derivation_key(dukpt.derive_initial_key(AES_BDK, IKID), _ksn(1))
    with pytest.raises(DukptError):
        dukpt.derive_working_key(
            dk, _ksn(1), dukpt.KeyUsage.MAC_BOTH_WAYS, dukpt.DerivedKeyType.HMAC256
        )
    for usage in dukpt.KeyUsage:
        for kt in dukpt.DerivedKeyType:
            if kt.bits <= 128:
                assert len(dukpt.derive_working_key(dk, _ksn(1), usage, kt)) == kt.bits // 8
