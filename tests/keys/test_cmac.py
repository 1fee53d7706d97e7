"""CMAC against NIST SP 800-38B Appendix D examples."""

import pytest

from keys.cmac import cmac

M64 = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
AES128 = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")


@pytest.mark.parametrize(
    ("mlen", "tag"),
    [
        # NIST SP 800-38B, D.1 AES-128 examples 1-4
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ],
)
def test_aes128_cmac_nist(mlen, tag):
    assert cmac(AES128, M64[:mlen], "aes").hex() == tag


@pytest.mark.parametrize(
    ("mlen", "tag"),
    [
        # NIST SP 800-38B, D.3 AES-256 examples 9-12
        (0, "028962f61b7bf89efc6b551f4667d983"),
        (16, "28a7023f452e8f82bd4bf28d8c37c35c"),
        (40, "aaf3d8f1de5640c232f5b169b9c911e6"),
        (64, "e1992190549f6ed5696a2c056c315410"),
    ],
)
def test_aes256_cmac_nist(mlen, tag):
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    assert cmac(key, M64[:mlen], "aes").hex() == tag


@pytest.mark.parametrize(
    ("mlen", "tag"),
    [
        # NIST SP 800-38B, D.4 three-key TDEA examples 13-16 (Mlen 0, 64, 160, 256 bits)
        (0, "b7a688e122ffaf95"),
        (8, "8e8f293136283797"),
        (20, "743ddbe0ce2dc2ed"),
        (32, "33e6b1092400eae5"),
    ],
)
def test_tdes3_cmac_nist(mlen, tag):
    key = bytes.fromhex("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5")
    assert cmac(key, M64[:mlen], "tdes").hex() == tag


@pytest.mark.parametrize(
    ("mlen", "tag"),
    [
        # NIST SP 800-38B (2005), D.5 two-key TDEA examples 17-20 (Mlen 0, 64, 160, 256 bits)
        (0, "bd2ebf9a3ba00361"),
        (8, "4ff2ab813c53ce83"),
        (20, "62dd1b471902bd4e"),
        (32, "31b1e431dabc4eb8"),
    ],
)
def test_tdes2_cmac_nist(mlen, tag):
    key = bytes.fromhex("4cf15134a2850dd58a3d10ba80570d38")
    assert cmac(key, M64[:mlen], "tdes").hex() == tag
