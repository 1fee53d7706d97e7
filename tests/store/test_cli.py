import json
import re

from click.testing import CliRunner

from host.cli import main
from host.store import NewTransaction, SyncStore, verify_password

MID = "898340154110001"
TID = "12345678"


def run(*args, input=None, env=None):
    return CliRunner().invoke(main, list(args), input=input, env=env)


def estate(url, *args, **kw):
    return run("estate", "--journal", url, *args, **kw)


def journal(url, *args, **kw):
    return run("journal", "--journal", url, *args, **kw)


def test_estate_commands(url):
    r = estate(url, "merchant", "add", MID, "--name", "Corner Shop", "--mcc", "5411")
    assert r.exit_code == 0, r.output
    r = estate(url, "merchant", "add", MID, "--name", "Again", "--mcc", "5411")
    assert r.exit_code == 1 and "exists" in r.output
    r = estate(url, "merchant", "add", "SHORT", "--name", "x", "--mcc", "5411")
    assert r.exit_code == 2 and "15 printable" in r.output
    r = estate(url, "terminal", "add", TID, "--mid", MID, "--key-mode", "003")
    assert r.exit_code == 0, r.output
    r = estate(url, "terminal", "add", "87654321", "--mid", "999999999999999", "--key-mode", "001")
    assert r.exit_code == 1 and "not found" in r.output
    r = estate(url, "operator", "add", TID, "01", "--role", "supervisor", input="s3cret\ns3cret\n")
    assert r.exit_code == 0, r.output
    assert "s3cret" not in r.output

    r = estate(url, "terminal", "disable", TID)
    assert r.exit_code == 0, r.output
    r = estate(url, "terminal", "list", "--json")
    [t] = json.loads(r.output)
    assert (t["tid"], t["status"], t["key_mode"], t["tmk_loaded"]) == (
        TID,
        "disabled",
        "003",
        False,
    )
    estate(url, "terminal", "enable", TID)
    r = estate(url, "merchant", "disable", MID)
    assert r.exit_code == 0
    r = estate(url, "merchant", "list")
    assert MID in r.output and "disabled" in r.output
    r = estate(url, "operator", "list", "--tid", TID)
    assert "supervisor" in r.output and "scrypt" not in r.output
    r = estate(url, "operator", "disable", TID, "01")
    assert r.exit_code == 0

    with SyncStore.open(url) as store:
        assert store.get_terminal(TID).status == "active"
        assert store.get_merchant(MID).status == "disabled"
        op = store.get_operator(TID, "01")
        assert (op.role, op.status) == ("supervisor", "disabled")
        assert verify_password("s3cret", op.password_hash)
        assert not verify_password("wrong", op.password_hash)


def test_journal_list_and_show(url):
    with SyncStore.open(url) as store:
        ids = []
        for stan, tid in (("000001", TID), ("000002", TID), ("000003", "87654321")):
            ids.append(
                store.insert_pending(
                    NewTransaction(
                        tid=tid, mid=MID, batch="000001", stan=stan, business_date="20261125",
                        txn_type="purchase", mti="0200", amount=1234, rrn=f"RRN{stan}",
                        pan_masked="622848******1234", pan_fingerprint="secret-fingerprint",
                    )
                )
            )  # fmt: skip
        store.record_outcome(ids[0], status="approved", response_code="00")
        store.record_reversal(ids[0], "98")

    r = journal(url, "list", "--tid", TID)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:2] == ["ID", "REQUESTED"] and len(lines) == 3
    assert "622848******1234" in r.output
    assert "12.34 CNY" in r.output and re.search(r"  20\d\d-\d\d-\d\d \d\d:\d\d:\d\d  ", r.output)

    r = journal(url, "list", "--status", "reversed", "--json")
    rows = json.loads(r.output)
    assert [row["id"] for row in rows] == [ids[0]]
    assert rows[0]["amount"] == 1234  # raw minor units for scripts
    assert "secret-fingerprint" not in r.output

    r = journal(url, "list", "--rrn", "RRN000003", "--limit", "1")
    assert "87654321" in r.output and TID not in r.output

    r = journal(url, "show", str(ids[0]))
    assert r.exit_code == 0, r.output
    assert "reversed" in r.output and "622848******1234" in r.output
    assert "secret-fingerprint" not in r.output
    r = journal(url, "show", str(ids[0]), "--json")
    data = json.loads(r.output)
    assert data["reversal"]["reason"] == "98" and data["amount"] == 1234

    r = journal(url, "show", "424242")
    assert r.exit_code == 1 and "not found" in r.output


def test_journal_url_from_environment_and_default(tmp_path, monkeypatch, url):
    with SyncStore.open(url) as store:
        store.add_merchant(MID, "From env", "5411")
    r = run("estate", "merchant", "list", env={"POSHOST_JOURNAL_URL": url})
    assert "From env" in r.output

    monkeypatch.chdir(tmp_path)
    r = run("journal", "list", env={"POSHOST_JOURNAL_URL": None, "POSHOST_JOURNAL": None})
    # default: <data.dir>/poshost.sqlite relative to the cwd; a query never creates it
    assert r.exit_code == 4 and "no journal at var/poshost.sqlite" in r.output
    assert not (tmp_path / "var" / "poshost.sqlite").exists()
