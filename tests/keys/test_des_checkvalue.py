"""DES/TDES primitives, parity and check values."""

import pytest
from Crypto.Cipher import AES, DES
from Crypto.Hash import CMAC

from keys import des
from keys.checkvalue import kcv, kcv_aes, kcv_hex
from keys.errors import KeyError_

K2 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
K1 = bytes.fromhex("0123456789ABCDEF")


def test_kk_key_falls_back_to_single_des():
    # docs/design.md "Known pitfalls": pycryptodome refuses K||K; TDES-EDE(K,K) == DES(K).
    kk = K1 + K1
    block = bytes.fromhex("4E6F772069732074")
    assert des.encrypt_ecb(kk, block) == DES.new(K1, DES.MODE_ECB).encrypt(block)
    assert des.decrypt_ecb(kk, des.encrypt_ecb(kk, block)) == block


def test_kk_detected_even_when_parity_bits_differ():
    # DES ignores parity bits, so halves equal up to parity are the same key.
    other = bytes(b ^ 1 for b in K1)
    assert des.effective_key(K1 + other) == K1


def test_three_key_degenerate_forms():
    k3 = bytes.fromhex("89ABCDEF01234567")
    block = bytes(8)
    # K1 == K2 -> E_K3
    assert des.encrypt_ecb(K1 + K1 + k3, block) == DES.new(k3, DES.MODE_ECB).encrypt(block)
    # K2 == K3 -> E_K1
    assert des.encrypt_ecb(K1 + k3 + k3, block) == DES.new(K1, DES.MODE_ECB).encrypt(block)
    # K1 == K3 -> two-key TDES
    assert des.encrypt_ecb(K1 + k3 + K1, block) == des.encrypt_ecb(K1 + k3, block)


def test_parity():
    key = bytes.fromhex("0022446688AACCEE")
    fixed = des.adjust_parity(key)
    assert des.has_odd_parity(fixed)
    assert not des.has_odd_parity(key)
    assert fixed == bytes.fromhex("0123456789ABCDEF")  # the classic test key has odd parity


def test_bad_lengths_refused():
    with pytest.raises(KeyError_):
        des.encrypt_ecb(bytes(7), bytes(8))
    with pytest.raises(KeyError_):
        des.encrypt_ecb(K2, bytes(7))


def test_tdes_kcv_published_values():
    # The widely published KCVs of the standard test keys (e.g. payShield and EFTlab
    # calculators): 0123456789ABCDEFFEDCBA9876543210 -> 08D7B4, 0123456789ABCDEF -> D5D44F.
    assert kcv(K2).hex().upper() == "08D7B4"
    assert kcv(K1).hex().upper() == "D5D44F"
    assert kcv(K2, 4) == des.encrypt_ecb(K2, bytes(8))[:4]


def test_aes_kcv_is_cmac_of_zero_block():
    # ANSI X9.24-1:2017 A.3: AES KCV = leftmost 5 bytes of CMAC(key, 16 zero bytes).
    # Cross-checked against pycryptodome's independent CMAC implementation.
    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    ref = CMAC.new(key, ciphermod=AES).update(bytes(16)).digest()[:5]
    assert kcv_aes(key) == ref
    assert kcv_hex(key, "aes") == ref.hex().upper()
    assert len(kcv_hex(key, "aes")) == 10
