import json
from pathlib import Path

from click.testing import CliRunner

from codec import terminal
from host.cli import main

FIXTURES = json.loads(
    (Path(__file__).parent / "fixtures" / "terminal-samples.json").read_text(encoding="utf-8")
)
RESPONSE_0210 = next(f for f in FIXTURES if f["name"].startswith("purchase response"))
SIGNON_0810 = next(f for f in FIXTURES if f["name"].startswith("sign-on response"))
CLEAR_PAN = "6013822000594988787"


def test_decode_fixture_prints_masked_dump_without_clear_pan():
    r = CliRunner().invoke(main, ["decode", RESPONSE_0210["hex"]])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("0210 purchase (terminal)")
    assert "601382*********8787" in r.output
    assert CLEAR_PAN not in r.output
    assert "000000004808" in r.output  # RRN shown


def test_decode_framed_json_masks_62():
    r = CliRunner().invoke(main, ["decode", "--framed", "--json", SIGNON_0810["hex"]])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["tpdu"] == "6000000004" and d["mti"] == "0810" and d["62"] == "[40 bytes]"
    assert d["60"] == "00000001003"


def test_decode_json_unmasked_for_test_data():
    r = CliRunner().invoke(main, ["decode", "--json", "--unmasked", RESPONSE_0210["hex"]])
    assert json.loads(r.output)["2"] == CLEAR_PAN
    r = CliRunner().invoke(main, ["decode", "--json", RESPONSE_0210["hex"]])
    assert CLEAR_PAN not in r.output


def test_decode_errors_are_clean():
    r = CliRunner().invoke(main, ["decode", "0200FF"])
    assert r.exit_code == 1 and "Error:" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["decode", "zz"])
    assert r.exit_code == 2


def test_encode_round_trips_through_decode():
    doc = json.loads(
        CliRunner().invoke(main, ["decode", "--json", "--unmasked", RESPONSE_0210["hex"]]).output
    )
    r = CliRunner().invoke(main, ["encode"], input=json.dumps(doc))
    assert r.exit_code == 0, r.output
    assert r.output.strip() == RESPONSE_0210["hex"]


def test_encode_framed_terminal_and_issuer():
    doc = {"mti": "0800", "11": "000001", "41": "12345678", "60": "00000001003", "62": "00" * 3}
    r = CliRunner().invoke(
        main, ["encode", "--framed", "--tpdu", "6000030000"], input=json.dumps(doc)
    )
    wire = bytes.fromhex(r.output.strip())
    assert wire[:2] == (len(wire) - 2).to_bytes(2, "big")
    assert wire[2:7] == bytes.fromhex("6000030000")
    assert terminal.decode(wire[13:])[62] == bytes(3)
    r = CliRunner().invoke(
        main, ["encode", "--dialect", "issuer"], input='{"mti": "0800", "70": "301"}'
    )
    assert r.output.strip().startswith(b"0800".hex().upper())
    bad = CliRunner().invoke(main, ["encode"], input='{"mti": "0800", "3": "12"}')
    assert bad.exit_code == 1 and "field 3" in bad.output
