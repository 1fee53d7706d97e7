from click.testing import CliRunner

from host.cli import SUBCOMMANDS, main


def test_help_lists_every_registered_subcommand():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "poshost" in result.output
    for name in SUBCOMMANDS:
        assert name in result.output


def test_every_registered_subcommand_imports_and_has_help():
    runner = CliRunner()
    for name in SUBCOMMANDS:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_unknown_subcommand_fails_cleanly():
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code != 0
    assert "No such command" in result.output


def test_a_config_error_met_inside_a_tool_is_one_line_not_a_traceback(tmp_path):
    # A network-HSM installation keeps its LMK in the HSM: provisioning load terminals without
    # the HSM's LMK file must say so and stop (a fresh LMK would make keys the HSM cannot read).
    config = tmp_path / "poshost.toml"
    config.write_text(
        f'[data]\ndir = "{tmp_path}"\n[journal]\nurl = "sqlite:///{tmp_path}/j.sqlite"\n'
        '[hsm]\nkind = "network"\n'
    )
    result = CliRunner().invoke(
        main, ["--config", str(config), "load", "provision", "--count", "1"]
    )
    assert result.exit_code == 1, result.output
    assert "the LMK lives in the HSM" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "lmk.hex").exists()
