"""`poshost keys`: ceremony commands, and clear keys only behind the named flag."""

import re

import pytest
from click.testing import CliRunner

from host.cli import main
from keys import des
from keys.checkvalue import kcv

LMK = "00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210"
FLAG = "--i-understand-this-prints-clear-keys"
BDK = "0123456789ABCDEFFEDCBA9876543210"
IPEK = "6AC292FAA1315B4D858AB3A3D7D5933A"


def run(*args, env=None):
    result = CliRunner().invoke(main, ["keys", *args], env={"POSHOST_LMK": LMK, **(env or {})})
    return result


def test_kcv_command():
    r = run("kcv", BDK)
    assert r.exit_code == 0 and r.output.strip() == "08D7B4"
    r = run("kcv", "--algorithm", "aes", "2B7E151628AED2A6ABF7158809CF4F3C")
    assert r.exit_code == 0 and len(r.output.strip()) == 10


def test_derive_ipek_hides_the_key_unless_flagged():
    # X9.24-1-2009 Annex A IPEK
    r = run("derive-ipek", "--bdk", BDK, "--ksn", "FFFF9876543210E00000")
    assert r.exit_code == 0, r.output
    assert IPEK not in r.output.upper()
    assert "IPEK kcv: " + kcv(bytes.fromhex(IPEK)).hex().upper() in r.output
    r = run("derive-ipek", "--bdk", BDK, "--ksn", "FFFF9876543210E00000", FLAG)
    assert IPEK in r.output


def test_derive_aes_initial_key():
    r = run(
        "derive-ipek",
        "--bdk",
        "FEDCBA9876543210F1F1F1F1F1F1F1F1",
        "--ksn",
        "123456789012345600000001",
        FLAG,
    )
    assert r.exit_code == 0 and "1273671EA26AC29AFA4D1084127652A1" in r.output


def test_combine_shows_check_values_and_hides_result():
    r = run("combine", "0123456789ABCDEF0123456789ABCDEF", "FEDCBA9876543210FEDCBA9876543210")
    assert r.exit_code == 0
    assert "component 1 kcv: D5D44F" in r.output
    combined = des.adjust_parity(bytes.fromhex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"))
    assert f"combined key kcv: {kcv(combined).hex().upper()}" in r.output
    assert combined.hex().upper() not in r.output
    r = run("combine", "0123456789ABCDEF0123456789ABCDEF", "FEDCBA9876543210FEDCBA9876543210", FLAG)
    assert combined.hex().upper() in r.output


def test_import_and_tr31_unwrap_never_print_clear_keys():
    r = run("import", "--type", "ZPK", "--key", BDK)
    assert r.exit_code == 0 and "token: ZPK:T:08D7B4:" in r.output
    assert BDK not in r.output
    # ANSI X9 TR-31:2018 version B example
    block = "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E"
    r = run("tr31-unwrap", block, "--kbpk", "DD7515F2BFC17F85CE48F3CA25CB21F6")
    assert r.exit_code == 0 and "usage: P0" in r.output
    assert "3F419E1CB7079442AA37474C2EFBF8B8" not in r.output
    r = run("tr31-unwrap", block, "--kbpk", "DD7515F2BFC17F85CE48F3CA25CB21F6", FLAG)
    assert "3F419E1CB7079442AA37474C2EFBF8B8" in r.output


def test_tr31_wrap_then_unwrap():
    kbpk = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6"
    r = run("tr31-wrap", "--kbpk", kbpk, "--key", BDK, "--usage", "B0", "--mode", "X")
    assert r.exit_code == 0, r.output
    block = r.output.strip()
    assert block.startswith("D0112B0TX00E")
    r = run("tr31-unwrap", block, "--kbpk", kbpk)
    assert "key kcv: 08D7B4" in r.output
    r = run("tr31-wrap", "--kbpk", kbpk, "--key", BDK, "--usage", "B0", "--mode", "E")
    assert r.exit_code != 0 and "not allowed" in r.output


@pytest.mark.parametrize(("mode", "length"), [("001", 24), ("003", 40), ("004", 60)])
def test_sign_on_keys_field62_layout(mode, length):
    tmk = "70F2A84CCBC2AE8625CBB0F2C22AB923"
    r = run("import", "--type", "TMK", "--key", tmk)
    token = re.search(r"token: (\S+)", r.output).group(1)
    r = run("sign-on-keys", "--tmk", token, "--mode", mode)
    assert r.exit_code == 0, r.output
    field = bytes.fromhex(re.search(r"field 62 \((\d+) bytes\): (\S+)", r.output).group(2))
    assert len(field) == length
    pik_kcv = re.search(r"TPK token: TPK:T:(\w+):", r.output).group(1)
    pik_len = 8 if mode == "001" else 16
    pik = des.decrypt_ecb(bytes.fromhex(tmk), field[:pik_len])
    # docs/terminal-dialect.md: each key under the TMK followed by its 4-byte check value
    assert field[pik_len : pik_len + 4] == kcv(pik, 4)
    assert kcv(pik).hex().upper() == pik_kcv
    mak_at = pik_len + 4
    mak = des.decrypt_ecb(bytes.fromhex(tmk), field[mak_at : mak_at + 8])
    cv_at = mak_at + (8 if mode == "001" else 16)
    assert field[cv_at : cv_at + 4] == kcv(mak, 4)


def test_generate_lmk_components_combine_to_the_shown_check_value():
    r = run("generate-lmk", "--components", "2")
    assert r.exit_code == 0
    comps = re.findall(r"component \d: (\w+)", r.output)
    shown = re.search(r"LMK check value: (\w+)", r.output).group(1)
    r2 = run("lmk-kcv", "--lmk", "00" * 32)
    assert r2.exit_code == 0
    lmk = bytes(
        a ^ b for a, b in zip(bytes.fromhex(comps[0]), bytes.fromhex(comps[1]), strict=True)
    )
    r3 = run("lmk-kcv", "--lmk", lmk.hex())
    assert r3.output.strip() == shown


def test_bad_input_is_a_clean_error():
    r = run("tr31-unwrap", "XYZ", "--kbpk", "00" * 16)
    assert r.exit_code == 1 and "Error:" in r.output
    r = run("derive-ipek", "--bdk", BDK, "--ksn", "FFFF9876543210E00000AA")
    assert r.exit_code != 0
