"""Loading a terminal's TMK: components, token, TR-31, and a clear key only behind the flag."""

from click.testing import CliRunner

from host.cli import main
from keys.checkvalue import kcv


def invoke(tmp_path, *args):
    journal = f"sqlite:///{tmp_path}/j.sqlite"
    env = {"POSHOST_DATA_DIR": str(tmp_path / "data"), "POSHOST_JOURNAL_URL": journal}
    return CliRunner().invoke(main, ["estate", *args], env=env, catch_exceptions=False)


def test_set_tmk_by_components_clear_key_needs_the_flag(tmp_path):
    assert invoke(tmp_path, "merchant", "add", "123456789012345", "--name", "X", "--mcc", "5411")
    add = invoke(
        tmp_path, "terminal", "add", "12345678", "--mid", "123456789012345", "--key-mode", "003"
    )
    assert add.exit_code == 0, add.output
    # two components whose XOR has odd parity and distinct halves (the HSM checks both)
    c1, c2 = "0123456789ABCDEF0123456789ABCDEF", "7230F04B7D1B4836FA9F4730E8A9BD69"
    out = invoke(tmp_path, "terminal", "set-key", "12345678", "--component", c1, "--component", c2)
    assert out.exit_code == 0, out.output
    combined = bytes(a ^ b for a, b in zip(bytes.fromhex(c1), bytes.fromhex(c2), strict=True))
    assert kcv(combined).hex().upper() in out.output
    assert c1 not in out.output and combined.hex().upper() not in out.output

    refused = invoke(tmp_path, "terminal", "set-key", "12345678", "--clear-test-key", c1)
    assert refused.exit_code != 0 and "test estates only" in refused.output
    ok = invoke(
        tmp_path, "terminal", "set-key", "12345678", "--clear-test-key", c1,
        "--i-know-this-is-a-clear-test-key",
    )  # fmt: skip
    assert ok.exit_code == 0 and kcv(bytes.fromhex(c1)).hex().upper() in ok.output


def test_set_tmk_from_a_tr31_block(tmp_path):
    from host.app import load_lmk
    from host.config import load_settings
    from keys.hsm import SoftHSM
    from keys.tokens import KeyType

    invoke(tmp_path, "merchant", "add", "123456789012345", "--name", "X", "--mcc", "5411")
    invoke(tmp_path, "terminal", "add", "12345678", "--mid", "123456789012345", "--key-mode", "003")
    settings = load_settings(environ={"POSHOST_DATA_DIR": str(tmp_path / "data")})
    hsm = SoftHSM(load_lmk(settings)[0], clear_test_keys=True)
    kbpk = hsm.import_clear(KeyType.KBPK, bytes.fromhex("89E88CF7931444F334BD7547FC3F380C"))
    tmk = bytes.fromhex("F138131AEC83D36B169BDCD5B32AAE8F")  # odd parity: imports refuse even
    block = hsm.export_tr31(hsm.import_clear(KeyType.TMK, tmk), kbpk)  # as a KDH would send it
    out = invoke(
        tmp_path, "terminal", "set-key", "12345678", "--tr31", block, "--kbpk", kbpk.to_text()
    )
    assert out.exit_code == 0, out.output
    assert kcv(tmk).hex().upper() in out.output
