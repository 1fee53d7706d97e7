"""`poshost settle check --wallet-bill`: the day's QR totals tied to wallet-sim's daily bill,
after real QR traffic through the host."""

import datetime as dt

import trio
from click.testing import CliRunner

from codec import wallet as w
from host.cli import main
from tests.host.harness import demo_device, eventually, qr_stack, terminal
from tools.wallet_sim.bill import bill_csv


def traffic_and_bills(tmp_path):
    """A sale, a voided sale, a partially refunded sale, a reversed sale and a paid order;
    then the wallet's bills for the two calendar days the business date may span."""

    async def main_():
        async with qr_stack(tmp_path) as (wsim, _isim, running):
            device = demo_device()
            from codec import subfields

            async with terminal(running, device) as client:

                async def sale(amount):
                    req = device.financial_request(
                        "qr_pay", amount=amount, extra={48: wsim.issue_code("alice")}
                    )
                    resp, _ = await client.exchange(req)
                    assert resp[39] == "00"
                    return req, resp

                await sale(1_000)
                req, resp = await sale(2_000)
                f61 = subfields.Field61(device.batch, str(req[11]), str(resp[13]))
                void = device.financial_request("void", amount=2_000, rrn=str(resp[37]),
                                                auth_code=str(resp[38]), original=f61)  # fmt: skip
                assert (await client.exchange(void))[0][39] == "00"
                _, resp = await sale(3_000)
                refund = device.financial_request(
                    "refund", amount=1_200, rrn=str(resp[37]),
                    original=subfields.Field61("000000", "000000", str(resp[13])),
                )  # fmt: skip
                assert (await client.exchange(refund))[0][39] == "00"
                req, _ = await sale(400)
                assert (await client.exchange(device.reversal_of(req.without(48))))[0][39] == "00"
                order, _ = await client.exchange(device.financial_request("qr_order", amount=880))
                assert wsim.pay_order(str(order[63])[3:], "bob")[0] == "paid"

                async def settled():
                    rows = await running.host.store.list_transactions(tid=device.tid)
                    done = all(r.status not in ("pending", "timeout") for r in rows)
                    return done and not await running.host.store.saf_due(now=2**62)

                await eventually(settled)
            business_date = running.host.business_date().strftime("%Y%m%d")
            today = dt.datetime.now(wsim.ledger.tz).date()
            days = [(today - dt.timedelta(days=n)).strftime("%Y%m%d") for n in (1, 0)]
            bills = []
            for day in days:
                path = tmp_path / f"bill-{day}.csv"
                path.write_text(bill_csv(wsim.ledger, day, wsim.config.app_id))
                bills.append(path)
            return running.host.settings.journal_url, business_date, bills

    return trio.run(main_)


def test_settle_check_ties_qr_totals_to_the_wallet_bill_and_finds_a_difference(tmp_path):
    url, business_date, bills = traffic_and_bills(tmp_path)
    ran = CliRunner().invoke(main, ["settle", "--journal", url, "run", "--date", business_date,
                                    "--allow-open-day"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    args = ["settle", "--journal", url, "check", "--date", business_date]
    for bill in bills:
        args += ["--wallet-bill", str(bill)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # sales 1000 + 2000 (voided) + 3000 + 880; refunds: the void 2000 and the refund 1200
    assert "journal sales 4 / 68.80 CNY, refunds 2 / 32.00 CNY" in result.output
    assert "wallet bill pays 4 / 68.80 CNY, refunds 2 / 32.00 CNY" in result.output

    # the wallet's bill says the refund was 12.50, not 12.00 (the total line made to agree)
    for bill in bills:
        text = bill.read_text()
        if ",12.00\n" in text:
            head, _, total = text.rstrip("\n").rpartition("# total refund,")
            count, amount = total.split(",")
            fixed = f"# total refund,{count},{w.yuan(w.fen(amount) + 50)}\n"
            bill.write_text(head.replace(",12.00\n", ",12.50\n") + fixed)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "journal approved 1200, wallet refunded 1250" in result.output
