"""`poshost estate merchant webhook ...` as an operator runs it: a generated secret is printed
once and never again, the journal holds it only sealed, bad input is refused where typed."""

import re
import sqlite3
import stat

from click.testing import CliRunner

from host.cli import main as poshost
from host.store import SyncStore
from keys import webhook as signing
from tests.host.webhook_kit import write_config

MID = "100000000000001"


def test_generated_secret_is_shown_once_and_stored_sealed(tmp_path):
    data = tmp_path / "data"
    config = write_config(tmp_path / "host.toml", data)
    with SyncStore.open(f"sqlite:///{data / 'poshost.sqlite'}") as store:
        store.add_merchant(MID, "SHOP", "5411")
    run = CliRunner().invoke
    base = ["--config", str(config), "estate", "merchant", "webhook"]

    out = run(poshost, [*base, "set", MID, "https://shop.example/hooks"]).output
    (secret,) = re.findall(r"whsec_[0-9a-f]{64}", out)
    check = signing.check_value(secret)
    assert check in out
    shown = run(poshost, [*base, "show", MID]).output
    shown_json = run(poshost, [*base, "show", MID, "--json"]).output
    assert secret not in shown + shown_json and check in shown and "https://shop.example" in shown
    with sqlite3.connect(data / "poshost.sqlite") as db:
        (sealed,) = db.execute("SELECT sealed_secret FROM merchant_webhooks").fetchone()
    assert secret not in sealed and secret[6:] not in sealed
    key = bytes.fromhex((data / "webhook.key").read_text())
    assert signing.unseal(key, MID, sealed) == secret
    assert stat.S_IMODE((data / "webhook.key").stat().st_mode) == 0o600

    bad_url = run(poshost, [*base, "set", MID, "ftp://shop.example/x"])
    assert bad_url.exit_code == 2 and "http://" in bad_url.output
    with_user = run(poshost, [*base, "set", MID, "https://u:p@shop.example/x"])
    assert with_user.exit_code == 2
    short = tmp_path / "short.txt"
    short.write_text("too short")
    assert run(poshost, [*base, "set", MID, "https://x.example", "--secret-file", str(short)]
               ).exit_code == 2  # fmt: skip
    unknown = run(poshost, [*base, "set", "999999999999999", "https://x.example"])
    assert unknown.exit_code == 1 and "not found" in unknown.output
    assert run(poshost, [*base, "clear", MID]).exit_code == 0
    assert "has no webhook" in run(poshost, [*base, "show", MID]).output
    assert run(poshost, [*base, "clear", MID]).exit_code == 1
    assert run(poshost, [*base, "resend", "evt_nope"]).exit_code == 1
