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
