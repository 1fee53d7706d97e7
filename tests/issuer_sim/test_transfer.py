"""Transfer at the issuer simulator: the payer debited and the payee (103) credited in one ledger
transaction, both undone by a reversal, once; repeats answered without a second effect."""

from __future__ import annotations

import json

import pytest

from tests.issuer_sim.test_ledger import PAN, Req, f90
from tools.issuer_sim import decide as d
from tools.issuer_sim.cards import Card
from tools.issuer_sim.config import SimConfig
from tools.issuer_sim.ledger import Ledger
from tools.issuer_sim.testing import LIMITED, RICH, Builder, connect, original_data, run_sim

PAYEE = "6222020000000015"
LOST_PAYEE = "6222020000000023"


def transfer(amount, payee=PAYEE, stan="000001", pan=PAN, extra=None):
    fields = {2: pan, 3: "400000", 4: f"{amount:012d}", 7: "1124100000", 11: stan, 25: "00"}
    fields.update({41: "TERM0001", 37: f"RRN000{stan}", 103: payee, **(extra or {})})
    return d.parse_request(Req("0200", fields))


def reversal(stan, amount, rev_stan=None, extra=None):
    fields = {3: "400000", 4: f"{amount:012d}", 7: "1124100500", 11: rev_stan or stan}
    fields.update({25: "00", 41: "TERM0001", 37: f"RRN000{stan}", 90: f90("0200", stan)})
    return d.parse_request(Req("0420", {**fields, **(extra or {})}))


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger(tmp_path / "state.sqlite")
    lg.reset(
        [
            Card(pan=PAN, expiry="3012", pvv="1234", balance=100_000, daily_limit=80_000),
            Card(pan=PAYEE, expiry="3012", pvv="1234", balance=5_000),
            Card(pan=LOST_PAYEE, expiry="3012", pvv="1234", balance=5_000, status="lost"),
        ]
    )
    yield lg
    lg.close()


def balances(ledger):
    return ledger.balance(PAN), ledger.balance(PAYEE)


def test_transfer_debits_the_payer_and_credits_the_payee_once(ledger):
    r = transfer(2_500)
    assert r.kind == d.TRANSFER and r.payee == PAYEE
    first = ledger.process(r)
    assert first.code == "00" and len(first.auth_code) == 6
    assert balances(ledger) == (97_500, 7_500)
    assert ledger.card(PAN).spent_today == 2_500  # counted against the payer's daily limit

    again = ledger.process(r)  # the same request again: the first answer, no second effect
    assert (again.code, again.auth_code, again.duplicate) == ("00", first.auth_code, True)
    assert balances(ledger) == (97_500, 7_500)
    other_payee = ledger.process(transfer(2_500, payee=LIMITED))  # same key, another payee
    assert other_payee.code == "94" and balances(ledger) == (97_500, 7_500)


def test_a_reversal_undoes_both_sides_once(ledger):
    assert ledger.process(transfer(2_500)).code == "00"
    assert ledger.process(reversal("000001", 2_500)).code == "00"
    assert balances(ledger) == (100_000, 5_000)
    assert ledger.card(PAN).spent_today == 0
    assert ledger.process(reversal("000001", 2_500, rev_stan="000009")).code == "00"
    assert balances(ledger) == (100_000, 5_000)  # a second reversal moves nothing
    assert [t.reversed for t in ledger.transactions() if t.kind == d.TRANSFER] == [True]


def test_a_partial_reversal_gives_back_the_difference_on_both_sides(ledger):
    assert ledger.process(transfer(2_500)).code == "00"
    partial = reversal("000001", 2_500, extra={95: f"{1_000:012d}" + "0" * 30})
    assert ledger.process(partial).code == "00"
    assert balances(ledger) == (99_000, 6_000)  # only 1,000 of the 2,500 happened
    assert ledger.process(reversal("000001", 1_000, rev_stan="000002")).code == "00"
    assert balances(ledger) == (100_000, 5_000)


def test_a_partial_reversal_of_a_declined_original_moves_nothing(ledger):
    assert ledger.process(transfer(200_000)).code == "51"
    partial = reversal("000001", 200_000, extra={95: f"{1_000:012d}" + "0" * 30})
    assert ledger.process(partial).code == "00"
    assert balances(ledger) == (100_000, 5_000)


@pytest.mark.parametrize(
    ("payee", "amount", "code"),
    [
        ("6222020000000031", 100, "14"),  # not on file
        (LOST_PAYEE, 100, "14"),  # lost: the same answer as unknown
        (PAN, 100, "12"),  # to itself
        (PAYEE, 0, "13"),
        (PAYEE, 100_001, "51"),
        (PAYEE, 80_001, "61"),  # over the payer's daily limit (its balance would allow it)
    ],
)
def test_declines_move_nothing(ledger, payee, amount, code):
    assert ledger.process(transfer(amount, payee=payee)).code == code
    assert balances(ledger) == (100_000, 5_000)
    assert ledger.balance(LOST_PAYEE) == 5_000


def test_over_the_socket_missing_103_is_30_and_the_record_masks_the_payee(tmp_path):
    record = tmp_path / "record.jsonl"
    config = SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0", record=record)
    b = Builder()

    async def body(sim, port):
        async with await connect(port) as client:
            before = (await sim.card(RICH)).balance, (await sim.card(LIMITED)).balance
            ok = b.financial("0200", "400000", RICH, 700, extra={103: LIMITED})
            assert (await client.request(ok))[39] == "00"
            after = (await sim.card(RICH)).balance, (await sim.card(LIMITED)).balance
            assert after == (before[0] - 700, before[1] + 700)
            missing = b.financial("0200", "400000", RICH, 700)
            assert (await client.request(missing))[39] == "30"
            rev = ok.without(2, 52).with_mti("0420").with_fields({90: original_data(ok)})
            assert (await client.request(rev))[39] == "00"
            back = (await sim.card(RICH)).balance, (await sim.card(LIMITED)).balance
            assert back == before

    run_sim(config, body)
    text = record.read_text()
    assert LIMITED not in text and RICH not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert entries[0]["request"]["103"] == "622202******0007"
