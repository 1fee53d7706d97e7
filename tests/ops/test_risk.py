"""Risk limits end to end: a real host, the real issuer simulator, the SQLite journal."""

from click.testing import CliRunner

from host.cli import main
from tests.host.flowkit import PIN, RICH, original, run, shop

MID = "123456789012345"
OTHER = "6222020000000007"  # 10,000.00, issuer daily limit 500.00


async def _events(s):
    return await s.store.list_risk_events(mid=MID)


def test_per_transaction_min_max_and_card_velocity(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            await s.store.set_risk_limits(
                "merchant", MID,
                {"min_amount": 100, "max_amount": 50_000, "velocity_count": 3,
                 "velocity_amount": 60_000, "velocity_window": 600},
            )  # fmt: skip
            start = await s.balance()
            low = await s.txn("purchase", pan=RICH, amount=99, pin=PIN)
            assert low[39] == "13"
            high = await s.txn("purchase", pan=RICH, amount=50_001, pin=PIN)
            assert high[39] == "61"
            assert await s.balance() == start  # never reached the issuer
            for _ in range(3):
                await s.sale(1000)
            fourth = await s.txn("purchase", pan=RICH, amount=1000, pin=PIN)
            assert fourth[39] == "65"  # count in the window
            # another card has its own window; its amount limit: 40,000 + 20,001 > 60,000
            await s.sale(40_000, pan=OTHER)
            over = await s.txn("purchase", pan=OTHER, amount=20_001, pin=PIN)
            assert over[39] == "61"
            # the window slides: ten minutes later the first card may buy again
            s.clock.advance(minutes=11)
            await s.sale(1000)
            rules = [e.rule for e in reversed(await _events(s))]
            assert rules == ["min_amount", "max_amount", "velocity_count", "velocity_amount"]
            events = await _events(s)
            assert all(e.pan_masked and "*" in e.pan_masked for e in events)
            assert {e.response_code for e in events} == {"13", "61", "65"}
            # refused before the journal (like a 13 for a zero amount): risk_events is their
            # record; only the approved sales are journalled
            rows = await s.store.list_transactions(mid=MID)
            assert {t.status for t in rows} == {"approved"} and len(rows) == 5

    run(body)


def test_daily_monthly_refund_ratio_and_mcc_default_from_config(tmp_path):
    # the demo shop is MCC 5411: a config default for that category (30,000.00 a month here:
    # the simulator's richest card holds 100,000.00)
    mcc = {"5411": {"monthly_amount": 3_000_000, "refund_ratio_pct": 50}}

    async def body():
        async with shop(tmp_path, **{"risk.mcc": mcc, "flows.batch_max_days": 100}) as s:
            await s.store.set_risk_limits("merchant", MID, {"daily_amount": 2_000_000})
            first = await s.sale(1_000_000)
            second = await s.sale(1_000_000)
            assert (await s.txn("purchase", pan=RICH, amount=1, pin=PIN))[39] == "61"  # day
            s.clock.advance(days=1)
            await s.sale(900_000)
            # 2,900,000 this month: 100,001 more passes the day but not the month
            assert (await s.txn("purchase", pan=RICH, amount=100_001, pin=PIN))[39] == "61"
            await s.sale(100_000)  # exactly 30,000.00
            # refunds up to half of the month's sales: 1,500,000
            refund = await s.txn("refund", pan=RICH, amount=1_000_000, extra=original(first))
            assert refund[39] == "00"
            again = await s.txn("refund", pan=RICH, amount=500_001, extra=original(second))
            assert again[39] == "61"
            ok = await s.txn("refund", pan=RICH, amount=500_000, extra=original(second))
            assert ok[39] == "00"
            rules = [e.rule for e in reversed(await _events(s))]
            assert rules == ["daily_amount", "monthly_amount", "refund_ratio"]

    run(body, timeout=60)


def test_a_declined_purchase_does_not_use_up_the_limit(tmp_path):
    """The reservation made at the check is released when the issuer declines."""

    async def body():
        async with shop(tmp_path) as s:
            await s.store.set_risk_limits("merchant", MID, {"daily_amount": 5000})
            bad_pin = await s.txn("purchase", pan=RICH, amount=5000, pin="9999")
            assert bad_pin[39] == "55"
            await s.sale(5000)  # the whole day's limit is still there
            assert (await s.txn("purchase", pan=RICH, amount=1, pin=PIN))[39] == "61"

    run(body)


def test_limits_and_events_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    cli = CliRunner()
    ok = cli.invoke(main, ["estate", "--journal", url, "merchant", "add", MID, "--name", "S",
                           "--mcc", "5999"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    r = cli.invoke(main, ["estate", "--journal", url, "limits", "set", "--mcc", "5999",
                          "--monthly-amount", "30000000", "--max-amount", "500000"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = cli.invoke(main, ["estate", "--journal", url, "limits", "set", "--mid", MID,
                          "--max-amount", "100000"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = cli.invoke(main, ["estate", "--journal", url, "limits", "show", "--mid", MID, "--json"],
                   env={"POSHOST_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert '"max_amount": 100000' in r.output and '"monthly_amount": 30000000' in r.output
    r = cli.invoke(main, ["estate", "--journal", url, "limits", "set", "--mid", MID])
    assert r.exit_code != 0
    r = cli.invoke(main, ["risk", "--journal", url, "events", "--mid", MID])
    assert r.exit_code == 0 and "RULE" in r.output
