"""Master and secondary terminals end to end: a real host on its socket, the real issuer
simulator, the real journal, three signed-on terminals of one merchant (a master and two
secondaries, set up with the estate commands), the merchant's policy changed with
`poshost estate terms set`, both tills' batches settled, and the roll-up read from the
back-office API, the reconciliation files and `poshost settle tills`."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import attrs
import trio
from click.testing import CliRunner

from codec.message import Message
from codec.subfields import (
    BatchRecord,
    Field60,
    SettlementTotals,
    format_batch_end,
    format_batch_upload,
    format_field48_settlement,
    parse_field48_settlement,
)
from host.backoffice.api import serve_backoffice
from host.cli import main
from host.clock import FixedClock, parse_date
from host.config import load_settings
from host.merchant.recon import check, write_files
from host.merchant.settlement import run_settlement
from host.runtime import RunningHost
from host.store import SyncStore
from tests.host.flowkit import MORNING, PIN, RICH, original, run
from tests.host.harness import demo_device, host_settings, running_host, terminal, wait_links_up
from tests.ops.test_backoffice import _token, http
from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.server import Simulator
from tools.terminal.client import TerminalClient
from tools.terminal.device import Device

MID = "123456789012345"
MASTER, TILL_A, TILL_B = "12345678", "12345679", "12345682"
HOTEL = "12345680"  # a terminal of another merchant
TMK_B = "88888888888888889999999999999999"  # a TEST key for the till added here


def estate(url: str, *args: str) -> str:
    """`poshost estate --journal URL ...`, as an operator types it."""
    result = CliRunner().invoke(main, ["estate", "--journal", url, *args], env={})
    assert result.exit_code == 0, result.output
    return result.output


@attrs.define
class Till:
    client: TerminalClient
    last_request: Message | None = None

    @property
    def device(self) -> Device:
        return self.client.device

    async def txn(self, txn_type: str, **kw) -> Message:
        extra = kw.pop("extra", None)
        req = self.device.financial_request(txn_type, extra=extra, **kw)
        self.last_request = req
        return (await self.client.exchange(req))[0]

    async def reverse_last(self) -> str:
        assert self.last_request is not None
        reversal = self.device.reversal_of(self.last_request, "98")
        return str((await self.client.exchange(reversal))[0][39])

    async def sale(self, amount: int) -> Message:
        resp = await self.txn("purchase", pan=RICH, amount=amount, pin=PIN)
        assert resp[39] == "00", resp.get(39)
        return resp

    async def void(self, sale: Message, amount: int) -> str:
        return str((await self.txn("void", pan=RICH, amount=amount, extra=original(sale)))[39])

    async def refund(self, sale: Message, amount: int) -> str:
        resp = await self.txn("refund", pan=RICH, amount=amount, extra=original(sale))
        return str(resp[39])

    async def settle(self, debit: tuple[int, int], credit: tuple[int, int] = (0, 0)) -> Message:
        msg = self.device.management_request("0500", "201")
        f48 = format_field48_settlement(
            SettlementTotals(*debit, *credit), SettlementTotals(0, 0, 0, 0)
        )
        msg = msg.with_fields({48: f48, 60: Field60("00", self.device.batch, "201").format()})
        return (await self.client.exchange(msg))[0]

    async def upload(self, nmc: str, field48: str) -> Message:
        msg = self.device.management_request("0320", nmc)
        msg = msg.with_fields({48: field48, 60: Field60("00", self.device.batch, nmc).format()})
        return (await self.client.exchange(msg))[0]


@attrs.define
class Shop:
    sim: Simulator
    running: RunningHost
    url: str
    master: Till
    a: Till
    b: Till

    @property
    def store(self):
        return self.running.host.store

    async def balance(self) -> int:
        return (await self.sim.card(RICH)).balance

    async def row(self, resp: Message):
        (row,) = await self.store.find_by_rrn(str(resp[37]))
        return row

    async def terms(self, *args: str) -> None:
        """Change the merchant's terms as an operator does; the host re-reads terms within
        its estate TTL, which the test does not wait out."""
        await trio.to_thread.run_sync(lambda: estate(self.url, "terms", "set", MID, *args))
        self.running.host.terms.clear()


@contextlib.asynccontextmanager
async def tills(tmp_path, journal_url: str | None = None):
    sim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0"))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.serve)
        extra = {"journal.url": journal_url} if journal_url else {}
        settings = host_settings(tmp_path, port, **extra)
        async with running_host(settings, clock=FixedClock(MORNING)) as running:
            await wait_links_up(running)
            url = running.host.store.url
            config = tmp_path / "poshost.toml"  # the host's data dir: the CLI finds its LMK
            config.write_text(f'[data]\ndir = "{tmp_path / "host"}"\n')

            def set_up() -> None:
                estate(url, "terminal", "add", TILL_B, "--mid", MID, "--key-mode", "003",
                       "--master", MASTER)  # fmt: skip
                estate(url, "terminal", "set-key", TILL_B, "--clear-test-key", TMK_B,
                       "--i-know-this-is-a-clear-test-key", "--config", str(config))  # fmt: skip
                estate(url, "terminal", "set-master", TILL_A, MASTER)

            await trio.to_thread.run_sync(set_up)
            b_device = Device(TILL_B, MID, bytes.fromhex(TMK_B), "003")
            async with (
                terminal(running, demo_device(MASTER)) as m,
                terminal(running, demo_device(TILL_A)) as a,
                terminal(running, b_device) as b,
            ):
                yield Shop(sim, running, url, Till(m), Till(a), Till(b))
        nursery.cancel_scope.cancel()
    sim.close()


def test_voids_across_tills_follow_the_merchant_policy(tmp_path):
    async def body():
        async with tills(tmp_path) as s:
            start = await s.balance()
            a_sale = await s.a.sale(1_500)
            m_sale = await s.master.sale(800)

            # by default a secondary may not void another till's sale: 58, nothing journalled
            assert await s.b.void(a_sale, 1_500) == "58"
            assert await s.a.void(m_sale, 800) == "58"
            assert (await s.row(a_sale)).status == "approved"
            assert await s.balance() == start - 2_300
            assert await s.store.find_by_original((await s.row(a_sale)).id) == []

            # a terminal of another merchant does not even find it; a wrong STAN neither
            async with terminal(s.running, demo_device(HOTEL)) as hotel:
                assert await Till(hotel).void(a_sale, 1_500) == "25"
            names = original(a_sale)
            wrong = {**names, 61: names[61][:6] + "999999" + names[61][12:]}
            resp = await s.master.txn("void", pan=RICH, amount=1_500, extra=wrong)
            assert resp[39] == "25"

            # the master may: the sale is voided at both ends, the void is the master's row
            assert await s.master.void(a_sale, 1_500) == "00"
            void_request = s.master.last_request
            assert await s.balance() == start - 800
            sale_row = await s.row(a_sale)
            assert sale_row.status == "voided" and sale_row.tid == TILL_A
            (void_row,) = await s.store.find_by_original(sale_row.id)
            assert void_row.tid == MASTER and void_row.status == "approved"
            assert await s.master.void(a_sale, 1_500) == "12"  # once only

            # the master reverses its void: the issuer knows the void under the sale's terminal
            # (41), and the reversal names it there; the sale is a sale again at both ends
            s.master.last_request = void_request
            assert await s.master.reverse_last() == "00"

            async def debited_again() -> bool:
                return await s.balance() == start - 2_300

            with trio.fail_after(5):
                while not await debited_again():
                    await trio.sleep(0.02)
            assert (await s.row(a_sale)).status == "approved"
            assert await s.master.void(a_sale, 1_500) == "00"
            assert await s.balance() == start - 800

            # a secondary voids its own sales whatever the policy
            own = await s.b.sale(250)
            assert await s.b.void(own, 250) == "00"

            # the merchant lets secondaries void each other's sales
            await s.terms("--secondary-may-void-others")
            a_second = await s.a.sale(700)
            assert await s.b.void(a_second, 700) == "00"
            assert await s.a.void(m_sale, 800) == "00"
            assert await s.balance() == start
            await s.terms("--no-secondary-may-void-others")
            a_third = await s.a.sale(90)
            assert await s.b.void(a_third, 90) == "58"

    run(body, timeout=60)


def test_refunds_across_tills_follow_the_merchant_policy(tmp_path):
    async def body():
        async with tills(tmp_path) as s:
            a_sale = await s.a.sale(2_000)
            # default: a secondary refunds its own sales, not another till's; the master may
            assert await s.b.refund(a_sale, 100) == "58"
            assert await s.a.refund(a_sale, 100) == "00"
            assert await s.master.refund(a_sale, 200) == "00"
            refunds = await s.store.find_by_original((await s.row(a_sale)).id)
            assert [(r.tid, r.amount, r.status) for r in refunds] == [
                (TILL_A, 100, "approved"),
                (MASTER, 200, "approved"),
            ]
            # the merchant reverses both defaults
            await s.terms("--no-secondary-may-refund", "--secondary-may-refund-others")
            assert await s.a.refund(a_sale, 100) == "58"
            assert await s.b.refund(a_sale, 100) == "00"
            # a till out of the group (A back on its own) is no one's secondary any more
            await trio.to_thread.run_sync(lambda: estate(s.url, "terminal", "set-master",
                                                         TILL_A, "--none"))  # fmt: skip
            s.running.host.estate.forget_terminal(TILL_A)
            assert await s.a.refund(a_sale, 100) == "00"

    run(body, timeout=60)


def test_both_tills_settle_and_the_day_rolls_up_under_the_master(tmp_path, journal_url):
    async def body():
        async with tills(tmp_path, journal_url) as s:
            await s.master.sale(1_000)
            await s.master.sale(2_000)
            a1 = await s.a.sale(1_500)
            a2 = await s.a.sale(700)
            await s.b.sale(300)
            b2 = await s.b.sale(400)
            assert await s.master.void(a1, 1_500) == "00"  # the master voids A's sale
            assert await s.master.refund(a2, 200) == "00"  # and refunds part of another
            assert await s.b.refund(b2, 100) == "00"  # B refunds its own
            date = str(a1[15])
            business_date = f"2025{date}"
            day = parse_date(business_date)
            # The rows keep the master their terminal had.
            rows = await s.store.list_transactions(mid=MID, limit=100)
            assert {r.tid: r.master_tid for r in rows} == {
                MASTER: None, TILL_A: MASTER, TILL_B: MASTER,
            }  # fmt: skip

            # Each till settles its own batch with its own count. The master and B balance.
            m = parse_field48_settlement(str((await s.master.settle((3_000, 2), (200, 1)))[48]))
            assert m[0] == SettlementTotals(3_000, 2, 200, 1, "1")
            b = parse_field48_settlement(str((await s.b.settle((700, 2), (100, 1)))[48]))
            assert b[0] == SettlementTotals(700, 2, 100, 1, "1")
            # A still counts the sale the master voided: the host answers with its own totals,
            # A uploads its batch, the voided sale agrees as voided elsewhere, the batch closes.
            a = parse_field48_settlement(str((await s.a.settle((2_200, 2)))[48]))
            assert a[0] == SettlementTotals(700, 1, 0, 0, "2")
            records = [BatchRecord("00", RICH, 1_500, str(a1[11]), "22"),
                       BatchRecord("00", RICH, 700, str(a2[11]), "22")]  # fmt: skip
            assert (await s.a.upload("201", format_batch_upload(records)))[48] == "0211"
            assert (await s.a.upload("202", format_batch_end(2)))[39] == "00"
            for tid in (MASTER, TILL_A, TILL_B):
                assert (await s.store.get_batch(tid, "000001")).status == "closed", tid
            uploaded = await s.store.list_batch_upload_records(TILL_A, "000001")
            assert uploaded[0].record["voided_by"] == MASTER

            # Merchant settlement pays the merchant; the tills add up to its record.
            def settle_and_files():
                with SyncStore.open(s.url) as sync:
                    (record,) = [
                        r
                        for r in run_settlement(sync, load_settings(environ={}), day)
                        if r.mid == MID
                    ]
                    write_files(sync, day, tmp_path / "recon")
                    return record, check(sync, day, tmp_path / "recon")

            record, problems = await trio.to_thread.run_sync(settle_and_files)
            assert problems == []
            # by hand: debits 1000 + 2000 + 700 + 300 + 400 (A's 1500 voided), credits 200 + 100
            assert (record.debit_count, record.debit_amount) == (5, 4_400)
            assert (record.credit_count, record.credit_amount) == (2, 300)
            assert record.gross == 4_100

            path = tmp_path / "recon" / f"{business_date}_{MID}_tills.csv"
            fields = ("master_tid", "tid", "line", "debit_count", "debit_amount_fen",
                      "credit_count", "credit_amount_fen", "gross_fen")  # fmt: skip
            lines = [
                tuple(r[f] for f in fields) for r in csv.DictReader(io.StringIO(path.read_text()))
            ]
            assert lines == [
                (MASTER, MASTER, "till", "2", "3000", "1", "200", "2800"),
                (MASTER, TILL_A, "till", "1", "700", "0", "0", "700"),
                (MASTER, TILL_B, "till", "2", "700", "1", "100", "600"),
                (MASTER, "", "master", "5", "4400", "2", "300", "4100"),
                ("", "", "total", "5", "4400", "2", "300", "4100"),
            ]

            # The back-office API: the master view with its per-till breakdown.
            token = await _token(s.store, MID)
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve_backoffice, s.store, "127.0.0.1:0")
                base = f"/v1/merchants/{MID}"
                status, _, raw = await http(port, f"{base}/tills?date={business_date}", token)
                assert status == 200
                view = json.loads(raw)
                (group,) = view["masters"]
                assert group["master"] == MASTER
                assert [(t["tid"], t["role"], t["debit_amount"], t["credit_amount"], t["gross"])
                        for t in group["tills"]] == [
                    (MASTER, "master", 3_000, 200, 2_800),
                    (TILL_A, "secondary", 700, 0, 700),
                    (TILL_B, "secondary", 700, 100, 600),
                ]  # fmt: skip
                assert group["total"] == view["total"] == {
                    "debit_count": 5, "debit_amount": 4_400, "credit_count": 2,
                    "credit_amount": 300, "gross": 4_100,
                }  # fmt: skip
                status, _, raw = await http(
                    port, f"{base}/tills/{MASTER}?date={business_date}", token
                )
                assert status == 200 and json.loads(raw)["total"]["gross"] == 4_100
                # another merchant's terminal, no date, a master's rows
                status, _, _ = await http(port, f"{base}/tills/{HOTEL}?date={business_date}", token)
                assert status == 404
                assert (await http(port, f"{base}/tills", token))[0] == 400
                status, _, raw = await http(port, f"{base}/transactions?master={MASTER}", token)
                listed = json.loads(raw)["transactions"]
                assert status == 200 and len(listed) == len(rows)
                assert {t["master_tid"] for t in listed if t["tid"] != MASTER} == {MASTER}
                status, _, raw = await http(port, f"{base}/recon/{business_date}/tills.csv", token)
                assert status == 200 and raw.decode() == path.read_text()
                nursery.cancel_scope.cancel()

            # ...and the report on the command line
            result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(
                main, ["settle", "--journal", s.url, "tills", "--date", business_date,
                       "--mid", MID, "--json"], env={}))  # fmt: skip
            assert result.exit_code == 0, result.output
            (printed,) = json.loads(result.output)
            assert printed["total"] == group["total"]

    run(body, timeout=90)
