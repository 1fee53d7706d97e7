"""One merchant's day, end to end: sales, a void and a refund through the real host and
issuer simulator, cut-over, `poshost settle run` with the files, `settle check`, `settle show`."""

import csv

from click.testing import CliRunner

from codec.subfields import SettlementTotals, format_field48_settlement
from host.cli import main
from tests.host.flowkit import PIN, RICH, original, run, shop

MID = "123456789012345"


def test_a_merchants_day_from_sales_to_payout(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            await s.sale(12_345)
            big = await s.sale(88_800)
            voided = await s.sale(5_000)
            void = await s.txn("void", pan=RICH, amount=5_000, pin=PIN, extra=original(voided))
            assert void[39] == "00"
            refund = await s.txn("refund", pan=RICH, amount=1_000, extra=original(voided))
            assert refund[39] == "12"  # a voided sale cannot be refunded
            refund = await s.txn("refund", pan=RICH, amount=2_345, extra=original(big))
            assert refund[39] == "00"
            # the terminal settles its batch (balanced), then the day ends
            ours = SettlementTotals(101_145, 2, 2_345, 1, "0")
            none = SettlementTotals(0, 0, 0, 0, "0")
            resp, _ = await s.send(s.settlement_request(format_field48_settlement(ours, none)))
            assert resp[39] == "00" and str(resp[48])[30] == "1"
            s.clock.advance(hours=14)  # past the 23:00 cut-over
            await s.client.sign_on()  # adopts the next batch
            await s.sale(100)  # the next business day

    run(body)
    url = f"sqlite:///{tmp_path}/host/poshost.sqlite"
    out = tmp_path / "recon"
    cli = CliRunner()
    r = cli.invoke(
        main, ["settle", "--journal", url, "run", "--date", "20250310", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    print(r.output)
    # 12,345 + 88,800 - 2,345 = 98,800 (the voided sale does not count); 0.6 % = 592.8 -> 593
    assert "988.00 CNY" in r.output and "5.93 CNY" in r.output and "982.07 CNY" in r.output
    r = cli.invoke(
        main, ["settle", "--journal", url, "check", "--date", "20250310", "--dir", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "agree" in r.output
    r = cli.invoke(main, ["settle", "--journal", url, "show", "--mid", MID])
    assert r.exit_code == 0 and "2025-03-11" in r.output  # T+1 payout date, with the year
    print(r.output)
    with (out / f"20250310_{MID}_transactions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(x["sign"], int(x["amount_fen"])) for x in rows] == [
        ("D", 12_345), ("D", 88_800), ("C", 2_345),
    ]  # fmt: skip
    assert all("******" in x["pan_masked"] for x in rows)
    for path in sorted(out.iterdir()):
        print(f"--- {path.name}\n{path.read_text()}")
    # a second run writes nothing new and prints the same figures
    again = cli.invoke(main, ["settle", "--journal", url, "run", "--date", "20250310"])
    assert again.exit_code == 0 and "982.07" in again.output
