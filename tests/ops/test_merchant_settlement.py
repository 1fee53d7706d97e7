"""Merchant settlement and reconciliation files on both journal backends (SQLite always,
PostgreSQL when reachable; required under CI=true)."""

import csv
import datetime as dt

import pytest

from host.config import load_settings
from host.merchant.recon import check, write_files
from host.merchant.settlement import SettlementRefused, run_settlement
from host.store import NewTransaction, SyncStore
from host.store.merchant_records import fee_for

D1, D2 = "20250310", "20250311"  # as the journal keeps them
DAY1, DAY2 = dt.date(2025, 3, 10), dt.date(2025, 3, 11)
M1, M2, M3 = "100000000000001", "100000000000002", "100000000000003"


def _settings():
    return load_settings(environ={})


class Journal:
    def __init__(self, store):
        self.store = store
        self.stan = 0

    def txn(self, mid, date, txn_type, amount, status="approved"):
        self.stan += 1
        txn_id = self.store.insert_pending(
            NewTransaction(
                tid=f"T{mid[-7:]}", mid=mid, batch="000001", stan=f"{self.stan:06d}",
                business_date=date, txn_type=txn_type, mti="0200", amount=amount,
                pan_masked="622202******0001",
            )
        )  # fmt: skip
        self.store.record_outcome(txn_id, status=status, response_code="00", rrn=f"R{txn_id}")
        return txn_id


@pytest.fixture
def day(sync_store):
    store = sync_store
    for mid in (M1, M2, M3):
        store.add_merchant(mid, f"SHOP {mid[-1]}", "5411")
        store.add_terminal(f"T{mid[-7:]}", mid, "003")
    store.set_merchant_terms(M2, {"cycle": "D0"})  # default D0 rate 0.70 %
    j = Journal(store)
    # M1, T+1 at 0.60 %: 1,000,000 + 750 - 250 = 1,000,500 -> fee 6,003
    j.txn(M1, D1, "purchase", 1_000_000)
    j.txn(M1, D1, "purchase", 750)
    j.txn(M1, D1, "refund", 250)
    j.txn(M1, D1, "purchase", 999, status="declined")  # not counted
    j.txn(M1, D1, "purchase", 500, status="voided")  # not counted
    j.txn(M1, D1, "preauth", 7_000)  # a hold is not a sale
    # M2, D0 at 0.70 %: 1,500 -> fee 10.5 -> 11 (half up), net 1,489 < 100.00 -> carried
    j.txn(M2, D1, "purchase", 1_500)
    # M3: only a refund -> negative gross, fee handed back, carried over
    j.txn(M3, D1, "refund", 5_000)
    # day 2: M2 sells 20,000 -> fee 140; with the 1,489 carried in: 21,349 paid the same day
    j.txn(M2, D2, "purchase", 20_000)
    return store


def _by_mid(records):
    return {r.mid: r for r in records}


def test_fee_rounding_is_half_up_to_the_fen_on_the_daily_gross():
    assert fee_for(1_500, "0.70") == 11  # 10.5 -> 11 (banker's rounding would give 10)
    assert fee_for(750, "0.60") == 5  # 4.5 -> 5
    assert fee_for(749, "0.60") == 4  # 4.494
    assert fee_for(-5_000, "0.60") == -30
    assert fee_for(-750, "0.60") == -5  # half away from zero
    assert fee_for(0, "0.60") == 0


def test_t1_and_d0_with_fees_and_carry_over(day):
    settings = _settings()
    first = _by_mid(run_settlement(day, settings, DAY1))
    m1, m2, m3 = first[M1], first[M2], first[M3]
    assert (m1.debit_count, m1.debit_amount, m1.credit_count, m1.credit_amount) == (
        2, 1_000_750, 1, 250,
    )  # fmt: skip
    assert (m1.cycle, m1.payout_date, m1.fee_rate) == ("T1", D2, "0.60")
    assert (m1.gross, m1.fee, m1.net, m1.payout, m1.carried_out) == (
        1_000_500, 6_003, 994_497, 994_497, 0,
    )  # fmt: skip
    assert m1.status == "paid"
    assert (m2.cycle, m2.payout_date, m2.fee_rate) == ("D0", D1, "0.70")
    assert (m2.gross, m2.fee, m2.net, m2.payout, m2.carried_out, m2.status) == (
        1_500, 11, 1_489, 0, 1_489, "carried",
    )  # fmt: skip
    assert (m3.gross, m3.fee, m3.net, m3.payout, m3.carried_out) == (-5_000, -30, -4_970, 0, -4_970)

    second = _by_mid(run_settlement(day, settings, DAY2))
    assert set(second) == {M2, M3}  # M1 sold nothing and carried nothing
    m2 = second[M2]
    assert (m2.gross, m2.fee, m2.net, m2.carried_in, m2.payout, m2.carried_out) == (
        20_000, 140, 19_860, 1_489, 21_349, 0,
    )  # fmt: skip
    assert m2.payout_date == D2  # D0: paid on the business date
    m3 = second[M3]
    assert (m3.gross, m3.carried_in, m3.payout, m3.carried_out) == (0, -4_970, 0, -4_970)


def test_rerun_is_idempotent_and_a_crash_in_the_middle_changes_nothing(day, url, tmp_path):
    settings = _settings()

    class Crash(Exception):
        pass

    def crash_after_first(record):
        raise Crash(record.mid)

    with pytest.raises(Crash):
        run_settlement(day, settings, DAY1, after_each=crash_after_first)
    assert [r.mid for r in day.list_merchant_settlements(business_date=D1)] == [M1]
    # the process died: a new one re-runs the date
    with SyncStore.open(url) as again:
        after_crash = run_settlement(again, settings, DAY1)
    rerun = run_settlement(day, settings, DAY1)
    assert [r.to_dict() for r in after_crash] == [r.to_dict() for r in rerun]
    assert len(day.list_merchant_settlements(business_date=D1)) == 3  # no duplicates
    # the same figures as an uninterrupted run of the same journal
    m1 = _by_mid(rerun)[M1]
    assert (m1.gross, m1.fee, m1.payout) == (1_000_500, 6_003, 994_497)
    # a later sale on the settled date does not change the record: the check reports it
    j = Journal(day)
    j.stan = 100
    j.txn(M1, D1, "purchase", 1)
    assert _by_mid(run_settlement(day, settings, DAY1))[M1].to_dict() == m1.to_dict()
    assert any("debit_amount journal 1000751 record 1000750" in p for p in check(day, DAY1))


def test_settlement_refuses_a_day_that_is_not_over(day):
    with pytest.raises(SettlementRefused):
        run_settlement(day, _settings(), DAY1, today=dt.date(2025, 3, 10))
    assert run_settlement(day, _settings(), DAY1, today=dt.date(2025, 3, 11))


def test_reconciliation_files_tie_to_the_journal_and_the_check_finds_differences(day, tmp_path):
    settings = _settings()
    run_settlement(day, settings, DAY1)
    out = tmp_path / "recon"
    names = sorted(p.name for p in write_files(day, DAY1, out))
    assert names == sorted(
        [
            f"{D1}_{m}_{kind}.csv"
            for m in (M1, M2, M3)
            for kind in ("transactions", "settlement", "channels", "tills")
        ]
        + [f"{D1}_acquirer_totals.csv"]
    )
    with (out / f"{D1}_{M1}_transactions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["txn_type"], r["sign"], r["amount_fen"], r["amount"]) for r in rows] == [
        ("purchase", "D", "1000000", "10000.00"),
        ("purchase", "D", "750", "7.50"),
        ("refund", "C", "250", "2.50"),
    ]
    assert all(r["pan_masked"] == "622202******0001" for r in rows)
    with (out / f"{D1}_{M1}_settlement.csv").open() as fh:
        (summary,) = list(csv.DictReader(fh))
    assert (summary["gross_fen"], summary["fee_fen"], summary["net_fen"], summary["net"]) == (
        "1000500", "6003", "994497", "9944.97",
    )  # fmt: skip
    with (out / f"{D1}_acquirer_totals.csv").open() as fh:
        acquirer = {r["mid"]: r for r in csv.DictReader(fh)}
    total = acquirer["TOTAL"]
    assert total["journal_gross_fen"] == str(1_000_500 + 1_500 - 5_000)
    assert total["settled_gross_fen"] == total["journal_gross_fen"]
    assert total["difference_fen"] == "0"
    assert total["fee_fen"] == str(6_003 + 11 - 30)
    assert acquirer[M1]["batches"] == "1" and acquirer[M1]["batches_open"] == "1"

    assert check(day, DAY1, out) == []
    # a file edited by hand
    path = out / f"{D1}_{M2}_settlement.csv"
    path.write_text(path.read_text().replace(",1489,", ",1490,"))
    assert check(day, DAY1, out) == [f"{path.name}: differs from the settlement record"]
    # the journal changing under a settled date (a sale reversed afterwards)
    sale = day.list_transactions(mid=M1, business_date=D1, status="approved", limit=10)[-1]
    day.set_status(sale.id, "reversed")
    problems = check(day, DAY1, out)
    assert f"{M1}: debit_count journal 1 record 2" in problems
    assert any("acquirer_totals" in p for p in problems)
