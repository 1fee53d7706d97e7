import datetime as dt
import pathlib

import attrs
import pytest

from host.clock import BusinessCalendar
from host.config import ConfigError, RouteSettings, load_settings


def test_defaults_run_out_of_the_box():
    settings = load_settings(environ={})
    assert settings.server.listen == "127.0.0.1:8583"
    assert settings.journal_url.endswith("poshost.sqlite")
    assert all(source == "default" for _, _, source in settings.describe())


def test_file_then_environment_override_and_provenance(tmp_path):
    cfg = tmp_path / "poshost.toml"
    cfg.write_text(
        '[server]\nlisten = "127.0.0.1:9999"\nmax_frame = 2048\n'
        '[links.a]\naddress = "127.0.0.1:1"\n[[routes]]\nprefix = "62"\nlink = "a"\n'
    )
    settings = load_settings(cfg, environ={"POSHOST_SERVER_MAX_FRAME": "1024"})
    assert settings.server.listen == "127.0.0.1:9999"
    assert settings.server.max_frame == 1024
    sources = {key: source for key, _, source in settings.describe()}
    assert sources["server.listen"] == f"file:{cfg}"
    assert sources["server.max_frame"] == "env:POSHOST_SERVER_MAX_FRAME"
    assert sources["server.idle_timeout"] == "default"
    assert settings.routes == (RouteSettings(link="a", prefix="62"),)


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("[nope]\na = 1\n", {}, "unknown section"),
        ("[server]\nlisten = 'nowhere'\n", {}, "HOST:PORT"),
        ("[[routes]]\nprefix = '4'\nlink = 'missing'\n", {}, "not defined"),
        ("", {"POSHOST_SERVER_NO_SUCH": "1"}, "unknown setting"),
        ("[server\n", {}, "not valid TOML"),
        ("[journal]\ncommit_delay_ms = -1\n", {}, "commit_delay_ms"),
        ("", {"POSHOST_JOURNAL_COMMIT_DELAY_MS": "'2'"}, "commit_delay_ms"),
        ("[server]\nmax_per_peer = 0\n", {}, "max_per_peer"),
        ("", {"POSHOST_SERVER_FIRST_FRAME_TIMEOUT": "'soon'"}, "first_frame_timeout"),
    ],
)
def test_bad_configuration_is_named(tmp_path, text, env, fragment):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg, environ=env)


def test_business_date_advances_at_cutover():
    cal = BusinessCalendar.from_settings("Asia/Shanghai", "23:00")
    before = dt.datetime(2026, 11, 25, 14, 59, tzinfo=dt.UTC)  # 22:59 in Shanghai
    after = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)  # 23:00 in Shanghai
    assert cal.business_date(before) == dt.date(2026, 11, 25)
    assert cal.business_date(after) == dt.date(2026, 11, 26)
    midnight = BusinessCalendar.from_settings("UTC", "00:00")
    assert midnight.business_date(before) == dt.date(2026, 11, 25)


def test_print_config_shows_no_secret_in_any_section(tmp_path):
    """Every key, password and URL password is `<set>`/masked, nested link tables included."""
    from click.testing import CliRunner

    from host.cli import main

    cfg = tmp_path / "poshost.toml"
    cfg.write_text(
        '[journal]\nurl = "postgresql://app:Hunter2pass@127.0.0.1:5432/test"\n'
        'pan_fingerprint_key = "00112233445566778899AABBCCDDEEFF"\n'
        '[hsm]\nlmk = "0123456789ABCDEFFEDCBA9876543210"\n'
        '[links.visa]\naddress = "127.0.0.1:1"\n'
        'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\nzpk = "U1234567890ABCDEF"\n'
        '[[routes]]\nprefix = ""\nlink = "visa"\n'
    )
    r = CliRunner().invoke(main, ["serve", "--config", str(cfg), "--print-config"], env={})
    assert r.exit_code == 0, r.output
    for secret in ("Hunter2pass", "00112233445566778899", "0123456789ABCDEF",
                   "4CA2161637D0133E", "U1234567890ABCDEF"):  # fmt: skip
        assert secret not in r.output
    lines = {line.split("=", 1)[0].strip(): line for line in r.output.splitlines()}
    assert "<set>" in lines["links.visa.zpk_clear_test_key"]
    assert "<set>" in lines["links.visa.zpk"]
    assert "127.0.0.1:1" in lines["links.visa.address"]  # what is not secret stays readable
    assert "postgresql://app:***@127.0.0.1:5432/test" in lines["journal.url"]


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("[server]\nidel_timeout = 5\n", {}, 'server.idel_timeout; did you mean "idle_timeout"?'),
        ("[sever]\nmax_frame = 1\n", {}, 'section [sever]; did you mean "server"?'),
        ("", {"POSHOST_ISSUER_TIMEOUTS": "3"}, 'did you mean "timeout"?'),
    ],
)
def test_a_misspelt_setting_is_refused_with_the_nearest_name(tmp_path, text, env, fragment):
    cfg = tmp_path / "poshost.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ=env)
    assert fragment in str(info.value)


def test_each_section_is_a_typed_class_holding_exactly_its_defaults():
    from host.config import DEFAULTS, RISK_LIMITS, SECTIONS
    from host.store.merchant_records import LIMIT_FIELDS

    for name, cls in SECTIONS.items():
        assert set(attrs.fields_dict(cls)) == set(DEFAULTS[name]), name
    assert set(SECTIONS) | {"links", "routes"} == set(DEFAULTS)
    assert set(RISK_LIMITS) == set(LIMIT_FIELDS)


def test_settings_are_typed_attributes_built_once():
    settings = load_settings(
        environ={
            "POSHOST_ISSUER_TIMEOUT": "7",
            "POSHOST_ACQUIRER_INSTITUTION_ID": "00012345",
            "POSHOST_MERCHANT_FEE_RATE": "0.65",
        }
    )
    assert settings.issuer.timeout == 7.0 and isinstance(settings.issuer.timeout, float)
    assert settings.acquirer.institution_id == "00012345"  # digits of a text setting stay text
    assert settings.merchant.fee_rate == "0.65"
    assert settings.acquirer.domestic_bins == ("62",)
    assert settings.data.dir == pathlib.Path("var") == settings.data_dir
    assert settings.link_timeout("sim") == 7.0
    assert settings.risk.mcc == {} and settings.hsm.single_length_types == ("TAK", "TPK")
    assert not hasattr(settings, "get")  # no untyped reads left
    assert "4CA2161637D0133E" not in repr(settings)  # key material stays out of reprs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[server]\nmax_per_peer = 'many'\n",
            "server.max_per_peer must be a whole number, not 'many'",
        ),
        ("[server]\nmax_per_peer = true\n", "server.max_per_peer must be a whole number, not True"),
        ("[risk]\nenabled = 1\n", "risk.enabled must be true or false, not 1"),
        ("[journal]\nwriter = 'disk'\n", "journal.writer must be one of 'process', 'thread', not"),
        ("[log]\nformat = 'xml'\n", "log.format must be one of 'auto', 'json', 'console', not"),
        ("[acquirer]\ndomestic_bins = '62'\n", "acquirer.domestic_bins must be a list of texts"),
        ("[acquirer]\ndomestic_bins = [62]\n", "acquirer.domestic_bins[0] must be text, not 62"),
        ("[links.visa]\naddres = '1.2.3.4:1'\n", 'links.visa.addres; did you mean "address"?'),
        ("[links.visa]\nport = 1\n", "unknown setting links.visa.port"),
        ("[links.visa]\nprotocol = 'iso8583'\n", "links.visa: missing address"),
        ("[links.visa]\naddress = '1.2.3.4:1'\ntimeout = 'slow'\n", "links.visa.timeout must be"),
        (
            '[risk.mcc."5411"]\nmax_amout = 1\n',
            "risk.mcc.5411: unknown limit max_amout; did you mean",
        ),
        ('[risk.mcc."5411"]\nmax_amount = "lots"\n', "risk.mcc.5411.max_amount must be a whole"),
        ("[[routes]]\nprefix = '4'\n", "routes: missing link"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_the_setting(tmp_path, text, message):
    cfg = tmp_path / "poshost.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_secret_of_the_wrong_type_is_named_but_not_shown(tmp_path):
    cfg = tmp_path / "poshost.toml"
    cfg.write_text("[hsm]\nlmk = 123456789\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert "hsm.lmk must be text" in str(info.value)
    assert "123456789" not in str(info.value)


def test_an_unknown_override_is_refused_like_a_file_setting():
    with pytest.raises(ConfigError, match='did you mean "saf_interval"'):
        load_settings(environ={}, overrides={"issuer.saf_intervall": 1.0})
