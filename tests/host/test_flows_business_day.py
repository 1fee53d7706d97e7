"""Cut-over and the business day, moved by the host's clock; `poshost settle status`."""

import datetime as dt
import json

from click.testing import CliRunner

from codec.subfields import SettlementTotals, format_field48_settlement, parse_field48_settlement
from host.cli import main
from host.clock import FixedClock
from tests.host.flowkit import PIN, RICH, run, shop

# 22:58 in Shanghai on 10 March 2025; cut-over at 23:00 local
BEFORE_CUTOVER = dt.datetime(2025, 3, 10, 14, 58, tzinfo=dt.UTC)


def test_cutover_moves_the_settlement_date_and_an_old_batch_is_out_of_step(tmp_path):
    journal = []

    async def body():
        clock = FixedClock(BEFORE_CUTOVER)
        async with shop(tmp_path, clock=clock) as s:
            journal.append(s.host.settings.journal_url)
            first = await s.sale(100)
            assert first[15] == "0310" and first[13] == "0310"
            s.clock.advance(minutes=3)  # 23:01 local: the next business day
            second = await s.sale(200)
            assert second[13] == "0310" and second[15] == "0311"
            day = await s.store.get_business_day()
            assert (day.business_date, day.settlement_date) == ("20250311", "0311")
            assert (await s.row(second)).business_date == "20250311"
            # the same batch goes on across the cut-over
            assert (await s.row(first)).batch == (await s.row(second)).batch == "000001"

            # the terminal does not settle for days: beyond flows.batch_max_days (3) the batch
            # is out of step; the host closes it with its own totals and asks for a sign-on
            s.clock.advance(days=4)
            resp, processing = await s.send(
                s.device.financial_request("purchase", pan=RICH, amount=50, pin=PIN)
            )
            assert resp[39] == "77" and processing == 3
            old = await s.store.get_batch("12345678", "000001")
            assert old.status == "unbalanced" and old.terminal_totals is None
            await s.client.sign_on()
            assert s.device.batch == "000002"
            third = await s.sale(50)
            assert third[15] == "0315"
            # the terminal still settles its old batch: it balances against the host's totals
            field48 = format_field48_settlement(
                SettlementTotals(300, 2, 0, 0), SettlementTotals(0, 0, 0, 0)
            )
            settled, _ = await s.send(s.settlement_request(field48, batch="000001"))
            assert parse_field48_settlement(str(settled[48]))[0].result == "1"
            assert (await s.store.get_batch("12345678", "000001")).status == "closed"
            assert (await s.store.get_terminal("12345678")).current_batch == "000002"

    run(body)

    result = CliRunner().invoke(main, ["settle", "--journal", journal[0], "status", "--json"])
    assert result.exit_code == 0, result.output
    rows = {(r["tid"], r["batch"]): r for r in json.loads(result.output)}
    current = rows[("12345678", "000002")]
    assert current["status"] == "open"
    assert current["host_totals"]["domestic"]["debit_amount"] == 50
    assert rows[("12345678", "000001")]["status"] == "closed"
    table = CliRunner().invoke(main, ["settle", "--journal", journal[0], "status", "--tid",
                                      "12345678"])  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "000002" in table.output
    assert "dom debits 1/0.50 CNY credits 0/0.00 CNY" in table.output, table.output
