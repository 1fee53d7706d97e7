"""One step at a time, on a host without sockets (tests/host/fakes.py): the journal's SQL, the
HSM and the estate are real; the terminal is a Device building real dialect messages."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from codec import responses as codes
from codec.subfields import Field61
from host.clock import journal_date
from host.flow import originals, steps
from host.flow.engine import Exchange
from host.merchant import risk
from tests.host.fakes import MORNING, exchange, fake_host, run_steps, signed_on
from tools.issuer_sim.testing import PIN, RICH

TID, MID = "12345678", "123456789012345"
_FINANCIAL = (steps.identify_terminal, steps.require_session, steps.verify_mac)


def test_the_exchange_keeps_typed_parts_and_no_bag_of_notes():
    names = {f.name for f in attrs.fields(Exchange)}
    assert "notes" not in names and not hasattr(Exchange, "notes")
    assert {"card", "issuer", "original", "journal", "risk", "operator", "f60"} <= names


# -- who is speaking ---------------------------------------------------------------------------


@pytest.mark.trio
async def test_identify_terminal_finds_the_terminal_and_its_merchant(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        ex = exchange(device, device.financial_request("purchase", pan=RICH, amount=100))
        await run_steps(host, ex, steps.identify_terminal)
        assert ex.code is None
        assert (ex.terminal.tid, ex.merchant.mid) == (TID, ex.terminal.mid)
        assert ex.conn.terminal_id == TID


@pytest.mark.trio
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({41: "99999999"}, codes.TERMINAL_NOT_REGISTERED),
        ({42: "999999999999999"}, codes.INVALID_MERCHANT),
    ],
)
async def test_identify_terminal_refuses_a_stranger(tmp_path, fields, code):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        msg = device.financial_request("purchase", pan=RICH, amount=100).with_fields(fields)
        ex = await run_steps(host, exchange(device, msg), steps.identify_terminal)
        assert ex.code == code
        assert ex.found_merchant is None


@pytest.mark.trio
async def test_a_disabled_terminal_is_not_permitted(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        await host.store.disable_terminal(TID)
        host.estate.forget_terminal(TID)
        msg = device.financial_request("purchase", pan=RICH, amount=100)
        ex = await run_steps(host, exchange(device, msg), steps.identify_terminal)
        assert ex.code == codes.NOT_PERMITTED_TO_TERMINAL


# -- the MAC -----------------------------------------------------------------------------------


@pytest.mark.trio
async def test_the_mac_under_the_terminals_mak_verifies(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        msg = device.financial_request("purchase", pan=RICH, amount=100)
        ex = await run_steps(host, exchange(device, msg), *_FINANCIAL)
        assert ex.code is None and ex.mac_ok
        assert ex.conn.proven_mak == ex.terminal.mak_token


@pytest.mark.trio
async def test_a_wrong_mac_is_a0_with_sign_on_again_and_a_security_event(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        ex = exchange(device, device.financial_request("purchase", pan=RICH, amount=100))
        ex.request = ex.request.with_fields({64: "0000000000000000"[: len(str(ex.request[64]))]})
        await run_steps(host, ex, *_FINANCIAL)
        assert (ex.code, ex.processing, ex.mac_ok) == (codes.MAC_FAILED, 3, False)
        assert host.security.counts["mac_failed"] == 1


# -- the amount and the limits -------------------------------------------------------------------


@pytest.mark.trio
@pytest.mark.parametrize(
    ("fields", "code"),
    [({4: "000000000000"}, codes.INVALID_AMOUNT), ({49: "840"}, codes.INVALID_AMOUNT), ({}, None)],
)
async def test_check_amount(tmp_path, fields, code):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        msg = device.financial_request("purchase", pan=RICH, amount=100).with_fields(fields)
        ex = await run_steps(host, exchange(device, msg), steps.check_amount)
        assert ex.code == code


@pytest.mark.trio
async def test_check_limits_declines_over_the_maximum_and_records_the_event(tmp_path):
    async with fake_host(tmp_path, **{"risk.max_amount": 5_000}) as host:
        device = await signed_on(host)
        msg = device.financial_request("purchase", pan=RICH, amount=6_000)
        ex = await run_steps(host, exchange(device, msg), *_FINANCIAL, risk.check_limits)
        assert ex.code == codes.AMOUNT_LIMIT and ex.risk is None
        (event,) = await host.store.list_risk_events(mid=ex.terminal.mid)
        assert (event.rule, event.pan_masked) == ("max_amount", "622202******0001")


@pytest.mark.trio
async def test_a_reservation_is_committed_when_approved_and_given_back_otherwise(tmp_path):
    async with fake_host(tmp_path, **{"risk.velocity_count": 5}) as host:
        device = await signed_on(host)
        held = []
        for code in ("00", "05", "98"):
            msg = device.financial_request("purchase", pan=RICH, amount=1_000)
            ex = await run_steps(host, exchange(device, msg), *_FINANCIAL, risk.check_limits)
            assert ex.risk is not None and dict(ex.risk.reserve) == {"day": 1_000, "month": 1_000}
            held.append(ex.risk)
            ex.code = code
            if code == "98":
                ex.journal.failure = "timeout"  # the issuer may have approved it
            await risk.release_limits(host, ex)
            assert ex.risk is None
        totals = held[0].totals
        assert totals.in_flight == {"day": 0, "month": 0, "refunds": 0}
        assert totals.committed["day"] == 1_000  # only the approval counts in the totals
        window = held[0].window
        assert window is not None and [a for _, a in window] == [1_000, 1_000]  # 00 and 98


# -- the card, the journal, the business date -------------------------------------------------


@pytest.mark.trio
async def test_the_card_is_read_once_from_track_2(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        msg = device.financial_request("purchase", track2=f"{RICH}=30121010000000000", amount=1)
        ex = await run_steps(host, exchange(device, msg), steps.identify_terminal)
        assert steps.card_pan(host, ex) == RICH
        assert ex.card.track2 is not None and ex.card.track2.startswith(RICH)
        assert steps.card_fingerprint(host, ex) == host.fingerprint(RICH) == ex.card.fingerprint
        assert "6222020000000001" not in repr(ex.card)


@pytest.mark.trio
async def test_journal_request_keeps_one_business_date_and_the_answer_says_it_in_15(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        host.clock.advance(hours=13, minutes=30)  # 23:30 in Shanghai: after the 23:00 cut-over
        msg = device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
        ex = await run_steps(
            host, exchange(device, msg), *_FINANCIAL, steps.check_batch, steps.select_route,
            steps.translate_pin, steps.journal_request, steps.authorize,
        )  # fmt: skip
        await steps.journal_outcome(host, ex)
        await steps.respond(host, ex)
        assert ex.code == "00" and ex.business_date == dt.date(2025, 3, 11)
        assert ex.journal.id is not None and ex.issuer.transmission is not None
        row = await host.store.get_transaction(ex.journal.id)
        assert (row.business_date, row.settlement_date) == ("20250311", "20250311")
        assert row.extra == {"f7": ex.issuer.transmission}
        assert ex.response is not None and ex.response[15] == "0311"
        assert ex.rrn == host.rrn_for(ex.journal.id, dt.date(2025, 3, 11))
        assert ex.issuer.request is not None and ex.issuer.request[7] == ex.issuer.transmission


# -- originals -----------------------------------------------------------------------------------


async def _sale(host, device, amount: int = 3_000):
    msg = device.financial_request("purchase", pan=RICH, amount=amount, pin=PIN)
    ex = await run_steps(
        host, exchange(device, msg), *_FINANCIAL, steps.select_route, steps.translate_pin,
        steps.journal_request, steps.authorize,
    )  # fmt: skip
    await steps.journal_outcome(host, ex)
    assert ex.code == "00"
    return ex


def _void_of(device, sale: Exchange, amount: int, stan: str | None = None):
    f61 = Field61(device.batch, stan or str(sale.request[11]), MORNING.strftime("%m%d"))
    return device.financial_request(
        "void", pan=RICH, amount=amount, rrn=sale.rrn, auth_code=sale.auth_code, original=f61
    )


async def _find_void(host, device, sale: Exchange, amount: int, stan: str | None = None):
    msg = _void_of(device, sale, amount, stan)
    return await run_steps(
        host, exchange(device, msg), *_FINANCIAL, originals.find_purchase_to_void
    )


@pytest.mark.trio
async def test_a_void_finds_its_sale_guards_it_and_names_it_to_the_issuer(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        sale = await _sale(host, device)
        ex = await _find_void(host, device, sale, 3_000)
        assert ex.code is None
        link = ex.original
        assert link.row is not None and link.row.id == sale.journal.id
        assert link.guard is not None and link.guard.code == codes.INVALID_TRANSACTION
        assert link.marks == "voided"
        assert ex.issuer.extra is not None and str(ex.issuer.extra[90]).startswith("0200")


@pytest.mark.trio
async def test_a_void_for_another_amount_is_64_and_an_unknown_sale_25(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        sale = await _sale(host, device)
        ex = await _find_void(host, device, sale, 2_999)
        assert ex.code == codes.ORIGINAL_AMOUNT_MISMATCH and ex.original.row is None
        ex = await _find_void(host, device, sale, 3_000, stan="999999")
        assert ex.code == codes.ORIGINAL_NOT_FOUND


@pytest.mark.trio
async def test_the_guard_refuses_a_second_void_in_the_insert(tmp_path):
    """Two voids of one sale can both pass the find step; the insert's guard takes one."""
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        sale = await _sale(host, device)
        first = await _find_void(host, device, sale, 3_000)
        second = await _find_void(host, device, sale, 3_000)
        assert first.code is None and second.code is None
        await run_steps(host, first, steps.journal_request)
        await run_steps(host, second, steps.journal_request)
        assert first.code is None and first.journal.id is not None
        assert second.code == codes.INVALID_TRANSACTION and second.journal.id is None


@pytest.mark.trio
async def test_a_reversal_names_the_type_it_reverses(tmp_path):
    async with fake_host(tmp_path) as host:
        device = await signed_on(host)
        sale = await _sale(host, device)
        reversal = device.reversal_of(sale.request)
        ex = await run_steps(
            host, exchange(device, reversal), *_FINANCIAL, originals.check_reversible,
        )  # fmt: skip
        assert ex.original.reverses == "purchase"
        from host.flow.management import find_original_for_reversal

        await find_original_for_reversal(host, ex)
        assert ex.original.row is not None and ex.original.row.id == sale.journal.id
        assert journal_date(host.business_date()) == ex.original.row.business_date
