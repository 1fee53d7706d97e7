"""Issue 16 blocker 4: the README's `poshost issuer-sim cards add ...` must not edit the tracked
specs/issuer_sim/cards.toml; the card lives in the simulator's state (or a file the user names)."""

from __future__ import annotations

from click.testing import CliRunner

from host.cli import main
from tools.issuer_sim.config import SPECS_DIR
from tools.issuer_sim.ledger import Ledger

README_ADD = ["issuer-sim", "cards", "add", "6222021234567890", "--expiry", "2912",
              "--pin", "4321", "--balance", "500000"]  # fmt: skip


def test_readme_cards_add_keeps_the_shipped_specs_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # like a clone: the default state is var/issuer_sim.sqlite
    shipped = (SPECS_DIR / "cards.toml").read_bytes()
    r = CliRunner().invoke(main, README_ADD)
    assert r.exit_code == 0, r.output
    assert (SPECS_DIR / "cards.toml").read_bytes() == shipped
    ledger = Ledger(tmp_path / "var" / "issuer_sim.sqlite")
    try:
        added = ledger.card("6222021234567890")
        assert added is not None and added.balance == 500000
        assert ledger.card("6222020000000001") is not None  # seeded from the demo cards
    finally:
        ledger.close()
    listed = CliRunner().invoke(main, ["issuer-sim", "cards", "list"])
    assert "622202******7890" in listed.output
    again = CliRunner().invoke(main, README_ADD)
    assert again.exit_code != 0 and "already" in again.output


def test_cards_add_refuses_the_shipped_file_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = (SPECS_DIR / "cards.toml").read_bytes()
    r = CliRunner().invoke(main, [*README_ADD, "--file", str(SPECS_DIR / "cards.toml")])
    assert r.exit_code == 2 and "--file" in r.output and "shipped card file" in r.output
    assert (SPECS_DIR / "cards.toml").read_bytes() == shipped


def test_cards_add_appends_to_a_file_the_user_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "my_cards.toml"
    r = CliRunner().invoke(main, [*README_ADD, "--file", str(mine)])
    assert r.exit_code == 0, r.output
    assert "6222021234567890" in mine.read_text() and "4321" not in mine.read_text()
