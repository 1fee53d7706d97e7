"""Transfer (card to card) end to end: a real host on its socket, the real issuer simulator on
its own, a real SQLite journal. Both cards move at the issuer; every way of undoing it (the
terminal's 0400, an issuer that answers too late) puts both back; the payee's PAN is masked in
the logs, the journal, the simulator's record and the back office."""

from __future__ import annotations

import io
import json

import structlog
import trio

from codec.subfields import SettlementTotals, format_field48_settlement
from host import logs
from host.backoffice.api import serve_backoffice
from tests.host.flowkit import PIN, RICH, run, shop
from tests.host.harness import demo_device, sim_and_host, terminal
from tests.ops.test_backoffice import _token, http
from tools.issuer_sim.testing import LIMITED

PAYEE = LIMITED  # a demo card whose number has a valid check digit
PAYEE_MASKED = "622202******0007"
UNKNOWN_PAYEE = "6222020000000015"  # valid check digit, not on the issuer's file


async def both(s) -> tuple[int, int]:
    return await s.balance(RICH), await s.balance(PAYEE)


async def issuer_rows(s) -> int:
    return len(await s.sim.db(s.sim.ledger.transactions))


def test_approved_transfer_moves_both_cards_once_and_settles_as_a_debit(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            payer, payee = await both(s)
            resp = await s.txn("transfer", pan=RICH, amount=2_500, pin=PIN, payee=PAYEE)
            assert resp[39] == "00" and resp[3] == "400000" and 48 not in resp
            assert await both(s) == (payer - 2_500, payee + 2_500)

            row = await s.row(resp)
            assert (row.txn_type, row.status, row.amount) == ("transfer", "approved", 2_500)
            assert row.pan_masked == "622202******0001"
            assert row.extra["payee"] == PAYEE_MASKED

            # the same request again (same terminal, batch, STAN, date): 94, no second effect
            repeated, _ = await s.send(s.last_request)
            assert repeated[39] == "94" and await both(s) == (payer - 2_500, payee + 2_500)

            # the batch counts it as a debit: a 0500 with 2,500 in one debit balances
            totals = SettlementTotals(2_500, 1, 0, 0, "0")
            field48 = format_field48_settlement(totals, SettlementTotals(0, 0, 0, 0, "0"))
            settled, _ = await s.send(s.settlement_request(field48))
            assert settled[39] == "00" and str(settled[48])[30] == "1", settled.get(48)

    run(body)


def test_host_checks_the_payee_before_anything_reaches_the_issuer(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            start, rows = await both(s), await issuer_rows(s)
            wrong_digit = await s.txn("transfer", pan=RICH, amount=100, payee="6222020000000008")
            too_short = await s.txn("transfer", pan=RICH, amount=100, payee="62220200007")
            no_payee = await s.txn("transfer", pan=RICH, amount=100)
            to_itself = await s.txn("transfer", pan=PAYEE, amount=100, payee=PAYEE)
            codes = [r[39] for r in (wrong_digit, too_short, no_payee, to_itself)]
            assert codes == ["14", "14", "30", "12"]
            assert await issuer_rows(s) == rows and await both(s) == start
            # refused before the journal step, like any request the host itself turns away
            assert await s.store.list_transactions(txn_type="transfer") == []

            # well formed but unknown to the issuer: the issuer's 14, passed through
            unknown = await s.txn("transfer", pan=RICH, amount=100, payee=UNKNOWN_PAYEE)
            assert unknown[39] == "14" and await both(s) == start
            assert (await s.row(unknown)).extra["payee"] == "622202******0015"

    run(body)


def test_terminal_reversal_restores_both_cards(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            start = await both(s)
            resp = await s.txn("transfer", pan=RICH, amount=1_800, payee=PAYEE)
            assert resp[39] == "00" and await both(s) == (start[0] - 1_800, start[1] + 1_800)
            request = s.last_request
            assert (await s.reverse(request))[39] == "00"

            async def restored():
                return await both(s) == start

            await s.until(restored)
            assert (await s.row(resp)).status == "reversed"
            assert (await s.reverse(request))[39] == "00"  # repeated: acknowledged, no effect
            await trio.sleep(0.3)
            assert await both(s) == start

    run(body)


def test_issuer_timeout_is_reversed_on_both_cards_by_store_and_forward(tmp_path):
    async def body():
        async with shop(tmp_path, **{"issuer.timeout": 0.2}) as s:
            start = await both(s)
            s.sim.update_settings({"latency": "fixed:400"})
            resp = await s.txn("transfer", pan=RICH, amount=900, pin=PIN, payee=PAYEE)
            assert resp[39] == "98"
            await trio.sleep(0.3)  # the issuer applies the transfer after the host gave up...
            s.sim.update_settings({"latency": "0"})

            async def restored():  # ...and the host's 0420 takes it back on both sides
                return await both(s) == start

            await s.until(restored)
            rows = await s.store.list_transactions(txn_type="transfer")
            assert [r.status for r in rows] == ["reversed"]
            ledger = await s.sim.db(s.sim.ledger.transactions)
            assert [t.reversed for t in ledger if t.kind == "transfer"] == [True]

    run(body)


def test_the_payee_pan_is_masked_in_logs_journal_record_and_back_office(tmp_path):
    buffer = io.StringIO()
    logs.configure("json", "debug", stream=buffer)
    # not cached: a logger cached now would keep writing to this buffer in later tests
    structlog.configure(cache_logger_on_first_use=False)
    record = tmp_path / "issuer-record.jsonl"
    device = demo_device()
    listed: list[bytes] = []

    async def main():
        async with (
            sim_and_host(tmp_path, sim_overrides={"record": record}, **{"issuer.timeout": 0.2}) as (
                sim,
                running,
            ),
            terminal(running, device) as client,
        ):
            for payee in (PAYEE, UNKNOWN_PAYEE, "6222020000000008"):
                req = device.financial_request(
                    "transfer", pan=RICH, amount=300, pin=PIN, payee=payee
                )
                await client.exchange(req)
            ok = device.financial_request("transfer", pan=RICH, amount=400, payee=PAYEE)
            assert (await client.exchange(ok))[0][39] == "00"
            await client.exchange(device.reversal_of(ok))
            sim.update_settings({"latency": "fixed:400"})
            late = device.financial_request("transfer", pan=RICH, amount=500, payee=PAYEE)
            assert (await client.exchange(late))[0][39] == "98"
            await trio.sleep(0.4)
            sim.update_settings({"latency": "0"})
            await trio.sleep(0.5)  # the SAF reversals reach the issuer
            store = running.host.store
            token = await _token(store, device.mid)
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve_backoffice, store, "127.0.0.1:0")
                path = f"/v1/merchants/{device.mid}/transactions?type=transfer"
                status, _, body = await http(port, path, token)
                assert status == 200, body
                listed.append(body)
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        structlog.reset_defaults()
    text = buffer.getvalue()
    assert '"type":"transfer"' in text.replace(" ", ""), "the host logged no transfer"
    assert PAYEE_MASKED in text and PAYEE_MASKED in record.read_text()  # masked, not missing
    journal = b"".join(p.read_bytes() for p in (tmp_path / "host").rglob("*") if p.is_file())
    places = {
        "log": text.encode(),
        "journal files": journal,
        "issuer record": record.read_bytes(),
        "back office": listed[0],
    }
    for where, data in places.items():
        for pan in (PAYEE, UNKNOWN_PAYEE, "6222020000000008", RICH):
            assert pan.encode() not in data, f"a clear PAN in the {where}"
    items = json.loads(listed[0])["transactions"]
    assert {i["payee_masked"] for i in items} >= {PAYEE_MASKED, "622202******0015"}
