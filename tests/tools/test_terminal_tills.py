"""`poshost terminal` at two tills of one merchant (the estate made one the other's master with
`poshost estate terminal set-master`): the master voids the secondary's sale from its slip's
numbers, and the secondary settles from its own log, which still counts that sale."""

from __future__ import annotations

import re

from click.testing import CliRunner

from host.cli import main
from tests.tools.test_terminal_cli import RICH, Pos, balance

MASTER, SECONDARY = "12345678", "12345679"


def test_the_master_voids_a_secondarys_sale_and_both_settle(stack, tmp_path):
    url = stack.stack.running.host.store.url
    r = CliRunner().invoke(
        main, ["estate", "--journal", url, "terminal", "set-master", SECONDARY, MASTER], env={}
    )
    assert r.exit_code == 0, r.output
    listing = CliRunner().invoke(main, ["estate", "--journal", url, "terminal", "list"], env={})
    assert re.search(rf"{SECONDARY} .* secondary\s+{MASTER}\n", listing.output), listing.output
    assert re.search(rf"{MASTER} .* master\n", listing.output), listing.output

    master = Pos(stack, tmp_path / "master.json", f"demo:{MASTER}")
    till = Pos(stack, tmp_path / "till.json", f"demo:{SECONDARY}")
    master("sign-on")
    till("sign-on")  # the host reads the terminal again at sign-on: it is a secondary now
    start = balance(stack)
    till("purchase", "--amount", "1234", "--pan", RICH, "--expiry", "3012", "--pin", "1234")
    sale = till.last()
    assert sale.status == "approved" and balance(stack) == start - 1234

    # the master voids it with the numbers the till's slip prints (RRN, batch, trace, date)
    void = master("void", "--rrn", sale.rrn, "--orig-batch", sale.batch, "--stan", sale.stan,
                  "--date", sale.date, "--amount", "1234", "--pan", RICH)  # fmt: skip
    assert "RESULT       00 APPROVED" in void.output, void.output
    assert f"ORIG TRACE   {sale.stan}" in void.output
    assert balance(stack) == start
    entry = master.last()
    assert entry.type == "void" and entry.original_stan == ""  # not one of its own sales
    assert [e.status for e in master.state.log] == ["approved"]

    # The till still counts its sale: the host answers with its own totals, the till uploads
    # its batch, the voided sale agrees as voided by the master, and the batch closes.
    settled = till("settle")
    assert "closed; new batch" in settled.output, settled.output
    batch = stack.call(stack.stack.running.host.store.get_batch, SECONDARY, sale.batch)
    assert batch.status == "closed"
    uploads = stack.call(
        stack.stack.running.host.store.list_batch_upload_records, SECONDARY, sale.batch
    )
    assert [(u.record["stan"], u.agrees, u.record.get("voided_by")) for u in uploads] == [
        (sale.stan, True, MASTER)
    ]
    assert "closed; new batch" in master("settle").output
