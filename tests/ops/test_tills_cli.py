"""The estate and settlement commands of master and secondary terminals, on a journal of their
own: roles in `terminal list` and `show`, refusals that name the rule, the secondary policy in
`terms`, and the per-till report of `settle tills`."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from host.cli import main
from host.store import NewTransaction, SyncStore

MID, OTHER = "123456789012345", "123456789012346"
DAY = "20250310"


def cli(*args: str):
    return CliRunner().invoke(main, list(args), env={})


def test_estate_and_report_commands(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"

    def estate(*args: str, code: int = 0) -> str:
        r = cli("estate", "--journal", url, *args)
        assert r.exit_code == code, r.output
        return r.output

    estate("merchant", "add", MID, "--name", "Shop", "--mcc", "5411")
    estate("merchant", "add", OTHER, "--name", "Hotel", "--mcc", "7011")
    estate("terminal", "add", "00000001", "--mid", MID, "--key-mode", "003")
    out = estate("terminal", "add", "00000002", "--mid", MID, "--key-mode", "001",
                 "--master", "00000001")  # fmt: skip
    assert "secondary of 00000001" in out
    estate("terminal", "add", "00000003", "--mid", MID, "--key-mode", "003")
    estate("terminal", "add", "00000009", "--mid", OTHER, "--key-mode", "003")

    assert "same merchant" in estate("terminal", "set-master", "00000009", "00000001", code=1)
    assert "no chains" in estate("terminal", "set-master", "00000003", "00000002", code=1)
    assert "no chains" in estate("terminal", "set-master", "00000001", "00000003", code=1)
    assert "its own master" in estate("terminal", "set-master", "00000003", "00000003", code=1)
    assert "MASTER or --none" in estate("terminal", "set-master", "00000003", code=2)
    assert "not found" in estate("terminal", "set-master", "00000003", "00000077", code=1)
    estate("terminal", "set-master", "00000003", "00000001")

    listing = estate("terminal", "list", "--mid", MID)
    assert re.search(r"00000001 .* master\s*\n", listing), listing
    assert re.search(r"00000002 .* secondary\s+00000001\n", listing), listing
    shown = json.loads(estate("terminal", "show", "00000001", "--json"))
    assert (shown["role"], shown["secondaries"]) == ("master", ["00000002", "00000003"])
    text = estate("terminal", "show", "00000002")
    assert re.search(r"role\s+secondary\n", text) and re.search(r"master\s+00000001\n", text)
    estate("terminal", "set-master", "00000003", "--none")
    assert json.loads(estate("terminal", "show", "00000003", "--json"))["role"] is None

    # the policy: defaults, then the merchant's own
    terms = json.loads(estate("terms", "show", MID, "--json"))
    assert (terms["secondary_may_void_others"], terms["secondary_may_refund"],
            terms["secondary_may_refund_others"]) == (False, True, False)  # fmt: skip
    estate("terms", "set", MID, "--secondary-may-void-others", "--no-secondary-may-refund")
    text = estate("terms", "show", MID)
    assert re.search(r"secondary_may_void_others\s+yes\n", text), text
    assert re.search(r"secondary_may_refund\s+no\n", text), text
    assert re.search(r"secondary_may_refund_others\s+no\n", text), text

    # the day's report: rows written by terminals of the group
    with SyncStore.open(url) as store:
        for tid, stan, kind, amount, master in [
            ("00000001", "000001", "purchase", 1_000, None),
            ("00000002", "000001", "purchase", 2_500, "00000001"),
            ("00000002", "000002", "refund", 500, "00000001"),
            ("00000003", "000001", "purchase", 40, None),
        ]:
            txn_id = store.insert_pending(
                NewTransaction(tid=tid, mid=MID, batch="000001", stan=stan, business_date=DAY,
                               txn_type=kind, mti="0200", amount=amount, master_tid=master)
            )  # fmt: skip
            store.record_outcome(txn_id, status="approved", response_code="00")
    r = cli("settle", "--journal", url, "tills", "--date", DAY)
    assert r.exit_code == 0, r.output
    rows = [re.split(r"\s{2,}", line.replace(" CNY", "")) for line in r.output.splitlines()[1:]]
    assert rows == [
        [MID, "00000001", "00000001", "master", "1/10.00", "0/0.00", "10.00"],
        [MID, "00000001", "00000002", "secondary", "1/25.00", "1/5.00", "20.00"],
        [MID, "00000001", "-", "MASTER", "2/35.00", "1/5.00", "30.00"],
        [MID, "00000003", "00000003", "master", "1/0.40", "0/0.00", "0.40"],
        [MID, "00000003", "-", "MASTER", "1/0.40", "0/0.00", "0.40"],
        [MID, "-", "-", "TOTAL", "3/35.40", "1/5.00", "30.40"],
    ], r.output
