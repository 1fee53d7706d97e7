"""Issue 16 items 5-7: one --config for every subcommand, a query never creates a journal,
`keys lmk-kcv` reads the host's LMK, distinct exit codes, inputs checked where they enter."""

from __future__ import annotations

from click.testing import CliRunner

from host.cli import main
from host.store import SyncStore
from keys.hsm import SoftHSM

MID = "123456789012345"
CLEAN_ENV = {"POSHOST_CONFIG": None, "POSHOST_JOURNAL": None, "POSHOST_JOURNAL_URL": None,
             "POSHOST_DATA_DIR": None, "POSHOST_LMK": None}  # fmt: skip


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env={**CLEAN_ENV, **(env or {})})


def host_config(tmp_path):
    """A host whose data dir is elsewhere, with a journal and an LMK as `serve` leaves them."""
    data = tmp_path / "hostdata"
    data.mkdir()
    lmk = SoftHSM.generate_lmk(32)
    (data / "lmk.hex").write_text(lmk.hex().upper() + "\n")
    with SyncStore.open(f"sqlite:///{data / 'poshost.sqlite'}") as store:
        store.add_merchant(MID, "ELSEWHERE SHOP", "5411")
    config = tmp_path / "host.toml"
    config.write_text(f'[data]\ndir = "{data}"\n')
    return config, lmk


def test_root_config_is_honoured_by_every_subcommand(tmp_path, monkeypatch):
    config, lmk = host_config(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    r = run("--config", str(config), "estate", "merchant", "list")
    assert r.exit_code == 0 and "ELSEWHERE SHOP" in r.output, r.output
    r = run("journal", "list", env={"POSHOST_CONFIG": str(config)})
    assert r.exit_code == 0, r.output
    r = run("--config", str(config), "keys", "lmk-kcv")
    assert r.exit_code == 0 and r.output.strip() == SoftHSM(lmk).lmk_check_value
    assert not (other / "var").exists()  # nothing created in the wrong folder


def test_a_query_without_a_journal_says_so_and_creates_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["journal", "list"], ["risk", "events"], ["settle", "status"]):
        r = run(*args)
        assert r.exit_code == 4, (args, r.output)
        assert "no journal at var/poshost.sqlite" in r.output
    assert not (tmp_path / "var").exists()
    r = run("keys", "lmk-kcv")
    assert r.exit_code == 1 and "no LMK at var/lmk.hex" in r.output
    assert not (tmp_path / "var").exists()


def test_the_old_journal_variable_is_refused_not_silently_ignored(tmp_path):
    r = run("journal", "list", env={"POSHOST_JOURNAL": f"sqlite:///{tmp_path}/j.sqlite"})
    assert r.exit_code == 2 and "POSHOST_JOURNAL_URL" in r.output


def test_inputs_are_refused_where_they_enter_naming_the_option(tmp_path):
    config, _ = host_config(tmp_path)
    r = run("--config", str(config), "journal", "list", "--status", "aproved")
    assert r.exit_code == 2 and "'--status'" in r.output and "approved" in r.output
    r = run("--config", str(config), "journal", "list", "--date", "2026-12-01")
    assert r.exit_code == 2 and "'--date'" in r.output and "YYYYMMDD" in r.output
    r = run("--config", str(config), "journal", "list", "--date", "20261301")
    assert r.exit_code == 2 and "'--date'" in r.output
    r = run("--config", str(config), "risk", "events", "--date", "yesterday")
    assert r.exit_code == 2 and "'--date'" in r.output
    r = run("--config", str(config), "estate", "device", "enroll", "SN1",
            "--component", "0123..", "--component", "00" * 16)  # fmt: skip
    assert r.exit_code == 2 and "'--component'" in r.output and "not hexadecimal" in r.output
    assert "fromhex" not in r.output
