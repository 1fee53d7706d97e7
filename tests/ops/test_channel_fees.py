"""Fees per payment channel (card 0.60 %, QR 0.38 % by default, per merchant by `estate
terms`): merchant settlement, reconciliation files and the back-office API, on both journal
backends. The expected figures are worked out by hand in the comments, not read back from the
code under test."""

import csv
import datetime as dt
import json

import trio
from click.testing import CliRunner

from host.backoffice.api import new_token, serve_backoffice
from host.cli import main as poshost
from host.config import load_settings
from host.merchant.recon import check, write_files
from host.merchant.settlement import run_settlement
from host.store import NewTransaction, open_store
from tests.ops.test_backoffice import http

D1 = "20250310"  # as the journal keeps it
DAY1 = dt.date(2025, 3, 10)
M1, M2, M3 = "100000000000001", "100000000000002", "100000000000003"


def _journal(store):
    stan = 0

    def txn(mid, txn_type, amount, channel, status="approved"):
        nonlocal stan
        stan += 1
        txn_id = store.insert_pending(
            NewTransaction(
                tid=f"T{mid[-7:]}", mid=mid, batch="000001", stan=f"{stan:06d}",
                business_date=D1, txn_type=txn_type, mti="0200", amount=amount,
                pan_masked="622202******0001" if channel == "card" else "281234******5678",
                channel=channel,
            )
        )  # fmt: skip
        store.record_outcome(txn_id, status=status, response_code="00", rrn=f"R{txn_id:011d}")

    for mid in (M1, M2, M3):
        store.add_merchant(mid, f"SHOP {mid[-1]}", "5411")
        store.add_terminal(f"T{mid[-7:]}", mid, "003")
    # M1, T+1, default rates.
    #   card: 100,000 + 25,050 - 5,000 = 120,050 fen; x 0.60 % = 720.30 -> 720
    #   qr:    12,345 + 50,000 - 1,000 =  61,345 fen; x 0.38 % = 233.111 -> 233
    #   gross 181,395; fee 720 + 233 = 953; net 180,442 (one rate of 0.60 % would take 1,088)
    txn(M1, "purchase", 100_000, "card")
    txn(M1, "purchase", 25_050, "card")
    txn(M1, "refund", 5_000, "card")
    txn(M1, "purchase", 12_345, "qr")
    txn(M1, "purchase", 50_000, "qr")
    txn(M1, "refund", 1_000, "qr")
    txn(M1, "purchase", 9_999, "qr", status="declined")  # not counted
    # M2, D0, its own QR D0 rate 0.30 % (set below with `poshost estate terms set`).
    #   card: 50,050 x 0.70 % = 350.35 -> 350;  qr: 200,000 x 0.30 % = 600
    #   fee 950; net 250,050 - 950 = 249,100
    txn(M2, "purchase", 50_050, "card")
    txn(M2, "purchase", 200_000, "qr")
    # M3, QR only: 1,250 x 0.38 % = 4.75 -> 5 (half up); no card line
    txn(M3, "purchase", 1_250, "qr")


def test_fees_per_channel_in_settlement_recon_and_back_office(sync_store, url, tmp_path):
    _journal(sync_store)
    result = CliRunner().invoke(
        poshost, ["estate", "--journal", url, "terms", "set", M2, "--cycle", "D0",
                  "--qr-d0-fee-rate", "0.30"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = {r.mid: r for r in run_settlement(sync_store, load_settings(environ={}), DAY1)}

    m1 = records[M1]
    assert (m1.gross, m1.fee, m1.net, m1.payout) == (181_395, 953, 180_442, 180_442)
    lines = {c.channel: c for c in m1.channels}
    assert (lines["card"].debit_count, lines["card"].debit_amount) == (2, 125_050)
    assert (lines["card"].credit_count, lines["card"].credit_amount) == (1, 5_000)
    assert (lines["card"].gross, lines["card"].fee_rate, lines["card"].fee) == (
        120_050,
        "0.60",
        720,
    )
    assert (lines["qr"].gross, lines["qr"].fee_rate, lines["qr"].fee) == (61_345, "0.38", 233)
    m2 = records[M2]
    assert m2.cycle == "D0" and (m2.fee, m2.net) == (950, 249_100)
    assert {c.channel: (c.fee_rate, c.fee) for c in m2.channels} == {
        "card": ("0.70", 350), "qr": ("0.30", 600),
    }  # fmt: skip
    m3 = records[M3]
    assert [(c.channel, c.fee) for c in m3.channels] == [("qr", 5)] and m3.fee == 5

    out = tmp_path / "recon"
    write_files(sync_store, DAY1, out)
    with (out / f"{D1}_{M1}_channels.csv").open() as fh:
        rows = {r["channel"]: r for r in csv.DictReader(fh)}
    assert (rows["card"]["gross_fen"], rows["card"]["fee_rate_pct"], rows["card"]["fee"]) == (
        "120050", "0.60", "7.20",
    )  # fmt: skip
    assert (rows["qr"]["gross_fen"], rows["qr"]["fee_fen"], rows["qr"]["gross"]) == (
        "61345", "233", "613.45",
    )  # fmt: skip
    with (out / f"{D1}_{M1}_transactions.csv").open() as fh:
        detail = list(csv.DictReader(fh))
    assert [(r["channel"], r["sign"], r["amount_fen"]) for r in detail] == [
        ("card", "D", "100000"), ("card", "D", "25050"), ("card", "C", "5000"),
        ("qr", "D", "12345"), ("qr", "D", "50000"), ("qr", "C", "1000"),
    ]  # fmt: skip
    assert check(sync_store, DAY1, out) == []
    path = out / f"{D1}_{M1}_channels.csv"
    path.write_text(path.read_text().replace(",233,", ",232,"))
    assert check(sync_store, DAY1, out) == [f"{path.name}: differs from the settlement record"]

    async def api():
        async with open_store(url) as store:
            secret, hashed = new_token()
            token = f"pht_{await store.add_api_token(M1, hashed, 'test')}_{secret}"
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve_backoffice, store, "127.0.0.1:0")
                base = f"/v1/merchants/{M1}"
                qr = await http(port, f"{base}/transactions?channel=qr", token)
                bad = await http(port, f"{base}/transactions?channel=cash", token)
                settled = await http(port, f"{base}/settlements?date={D1}", token)
                channels = await http(port, f"{base}/recon/{D1}/channels.csv", token)
                nursery.cancel_scope.cancel()
        return qr, bad, settled, channels

    qr, bad, settled, channels = trio.run(api)
    assert qr[0] == 200 and bad[0] == 400
    items = json.loads(qr[2])["transactions"]
    assert sorted((t["channel"], t["amount"], t["status"]) for t in items) == [
        ("qr", 1_000, "approved"), ("qr", 9_999, "declined"), ("qr", 12_345, "approved"),
        ("qr", 50_000, "approved"),
    ]  # fmt: skip
    (record,) = json.loads(settled[2])["settlements"]
    assert record["fee"] == 953
    assert {c["channel"]: c["fee"] for c in record["channels"]} == {"card": 720, "qr": 233}
    assert channels[0] == 200 and b"qr,2,62345,1,1000,61345,0.38,233" in channels[2]


def test_terms_show_lists_each_channel_rate(sync_store, url):
    sync_store.add_merchant(M1, "SHOP", "5411")
    runner = CliRunner()
    assert (
        runner.invoke(
            poshost, ["estate", "--journal", url, "terms", "set", M1, "--qr-fee-rate", "0.25"]
        ).exit_code
        == 0
    )
    shown = runner.invoke(poshost, ["estate", "--journal", url, "terms", "show", M1, "--json"])
    terms = json.loads(shown.output)
    assert (terms["fee_rate"], terms["qr_fee_rate"], terms["qr_d0_fee_rate"]) == (
        "0.60", "0.25", "0.48",
    )  # fmt: skip
