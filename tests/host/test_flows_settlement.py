"""Batch settlement (0500) and batch upload (0320) over a socket, against the host's journal."""

from codec.subfields import (
    BatchRecord,
    SettlementTotals,
    format_batch_end,
    format_batch_upload,
    format_field48_settlement,
    parse_field48_settlement,
)
from tests.host.flowkit import PIN, RICH, original, run, shop

FOREIGN = "4761340000000019"
NONE = SettlementTotals(0, 0, 0, 0)


def totals(debit=(0, 0), credit=(0, 0), foreign_debit=(0, 0)) -> str:
    return format_field48_settlement(
        SettlementTotals(*debit, *credit), SettlementTotals(*foreign_debit, 0, 0)
    )


def test_balanced_settlement_with_voids_and_refunds_then_a_second_one(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            a = await s.sale(1000)
            b = await s.sale(2000)
            assert (await s.txn("purchase", pan=FOREIGN, amount=500))[39] == "00"
            void = await s.txn("void", pan=RICH, amount=2000, pin=PIN, extra=original(b))
            assert void[39] == "00"
            assert (await s.txn("refund", pan=RICH, amount=300, extra=original(a)))[39] == "00"
            pre = await s.txn("preauth", pan=RICH, amount=900, pin=PIN)
            done = await s.txn("completion", pan=RICH, amount=700, extra=original(pre))
            assert done[39] == "00"
            # terminal's view: debits 1000 + 700 (the voided sale is gone), credit 300
            field48 = totals(debit=(1700, 2), credit=(300, 1), foreign_debit=(500, 1))
            resp, _ = await s.send(s.settlement_request(field48))
            assert resp[39] == "00" and resp[15] == "0310"
            domestic, foreign = parse_field48_settlement(str(resp[48]))
            assert domestic == SettlementTotals(1700, 2, 300, 1, "1")
            assert foreign == SettlementTotals(500, 1, 0, 0, "1")
            batch = await s.store.get_batch("12345678", "000001")
            assert batch.status == "closed"
            assert (await s.store.get_terminal("12345678")).current_batch == "000002"

            # the old batch is closed: a sale on it is out of step; the terminal moves on
            late = await s.txn("purchase", pan=RICH, amount=10, pin=PIN)
            assert late[39] == "77"
            s.device.batch = "000002"
            assert (await s.txn("purchase", pan=RICH, amount=10, pin=PIN))[39] == "00"
            # a settled sale cannot be voided any more, but it can be refunded
            gone = await s.txn("void", pan=RICH, amount=1000, extra=original(a))
            assert gone[39] == "25"
            assert (await s.txn("refund", pan=RICH, amount=100, extra=original(a)))[39] == "00"

            # the terminal did not see the 0510 and settles batch 1 again: same answer
            again, _ = await s.send(s.settlement_request(field48, batch="000001"))
            assert again[39] == "00" and again[48] == resp[48]
            assert (await s.store.get_terminal("12345678")).current_batch == "000002"
            # settling a batch the host never opened is out of step
            unknown, _ = await s.send(s.settlement_request(field48, batch="000042"))
            assert unknown[39] == "77"

    run(body)


def test_unbalanced_settlement_then_upload_reconciles(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            x = await s.sale(1000)
            y = await s.sale(2500)
            # the terminal lost count: it claims three debits
            resp, _ = await s.send(s.settlement_request(totals(debit=(4000, 3))))
            domestic, foreign = parse_field48_settlement(str(resp[48]))
            assert domestic == SettlementTotals(3500, 2, 0, 0, "2")  # the host's own totals
            assert foreign.result == "1"
            assert (await s.store.get_batch("12345678", "000001")).status == "unbalanced"
            assert (await s.store.get_terminal("12345678")).current_batch == "000002"

            records = [
                BatchRecord("00", RICH, 1000, str(x[11]), "22"),
                BatchRecord("00", RICH, 2500, str(y[11]), "22"),
            ]
            up, _ = await s.send(s.upload_request("201", format_batch_upload(records), "000001"))
            assert up[39] == "00" and up[48] == "0211"
            end, _ = await s.send(s.upload_request("202", format_batch_end(2), "000001"))
            assert end[39] == "00"
            assert (await s.store.get_batch("12345678", "000001")).status == "closed"
            stored = await s.store.list_batch_upload_records("12345678", "000001")
            assert [r.agrees for r in stored] == [True, True]
            assert all("*" in r.record["pan"] for r in stored)  # never a clear PAN
            # nothing more to upload to a closed batch
            more, _ = await s.send(s.upload_request("201", format_batch_upload(records), "000001"))
            assert more[39] == "12"

    run(body)


def test_upload_that_disagrees_flags_the_batch(tmp_path):
    async def body():
        async with shop(tmp_path) as s:
            x = await s.sale(1000)
            await s.sale(2500)
            resp, _ = await s.send(s.settlement_request(totals(debit=(3400, 2))))
            assert parse_field48_settlement(str(resp[48]))[0].result == "2"
            records = [
                BatchRecord("00", RICH, 1000, str(x[11]), "22"),
                BatchRecord("00", RICH, 900, "000077", "22"),  # the host has no such sale
            ]
            up, _ = await s.send(s.upload_request("201", format_batch_upload(records), "000001"))
            assert up[48] == "0212"
            end, _ = await s.send(s.upload_request("202", format_batch_end(2), "000001"))
            assert end[39] == "00"
            assert (await s.store.get_batch("12345678", "000001")).status == "flagged"
            # an upload for a batch not yet settled is out of step
            early, _ = await s.send(s.upload_request("201", format_batch_upload([]), "000002"))
            assert early[39] == "77"

    run(body)


def newpos_records(*records: tuple[str, str, str, int]) -> str:
    """Field 48 as a NewPOS-type terminal builds it: n2 count, then fixed 40-digit records of
    original type n2, STAN n6, PAN right-aligned n20, amount n12 (no organisation)."""
    return f"{len(records):02d}" + "".join(
        f"{kind}{stan}{pan:0>20}{amount:012d}" for kind, stan, pan, amount in records
    )


def test_newpos_layout_and_refund_detail_reconcile_the_batch(tmp_path):
    """The upload a NewPOS-family terminal sends after an unbalanced settlement: its own record
    layout for sales, and one refund-detail 0320 (3 = 200000, 60.1 = 25, 60.3 = 000) per refund,
    then the end message counting both: the batch ends closed, not flagged."""
    from codec.message import Message
    from codec.subfields import Field60

    async def body():
        async with shop(tmp_path) as s:
            x = await s.sale(1000)
            y = await s.sale(2500)
            refund = await s.txn("refund", pan=RICH, amount=400, extra=original(x))
            assert refund[39] == "00"
            resp, _ = await s.send(s.settlement_request(totals(debit=(3500, 3), credit=(400, 1))))
            assert parse_field48_settlement(str(resp[48]))[0].result == "2"
            field48 = newpos_records(("22", str(x[11]), RICH, 1000), ("22", str(y[11]), RICH, 2500))
            up, _ = await s.send(s.upload_request("201", field48, "000001"))
            assert up[39] == "00" and up[48] == "0211"
            detail = Message("0320", {
                2: RICH, 3: "200000", 4: "000000000400", 11: str(refund[11]), 25: "00",
                41: s.device.tid, 42: s.device.mid,
                60: Field60("25", "000001", "000").format(),
            })  # fmt: skip
            answer, _ = await s.send(detail)
            assert answer.mti == "0330" and answer[39] == "00"
            end, _ = await s.send(s.upload_request("202", format_batch_end(3), "000001"))
            assert end[39] == "00"
            assert (await s.store.get_batch("12345678", "000001")).status == "closed"
            stored = await s.store.list_batch_upload_records("12345678", "000001")
            assert sorted(r.record["type"] for r in stored) == ["22", "22", "25"]
            assert all(r.agrees for r in stored)

    run(body)
