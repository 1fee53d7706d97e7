"""The ledger and the pure decision, without sockets: exactly-once effects on a real SQLite file."""

from __future__ import annotations

import time

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.issuer_sim import decide as d
from tools.issuer_sim.cards import Card
from tools.issuer_sim.ledger import Ledger

PAN = "6222020000000001"
LOW = "6222020000000002"


@attrs.frozen
class Req:
    """A Message-like stand-in: only what parse_request reads."""

    mti: str
    fields: dict

    def get(self, n, default=None):
        return self.fields.get(n, default)


def req(mti, proc, amount=0, rrn="000000000001", stan="000001", pan=PAN, cond="00", extra=None):
    fields = {2: pan, 3: proc, 4: f"{amount:012d}", 7: "1124100000", 11: stan, 25: cond}
    fields.update({41: "TERM0001", 37: rrn})
    if rrn is None:
        del fields[37]
    fields.update(extra or {})
    return d.parse_request(Req(mti, fields))


def f90(mti, stan):
    return f"{mti}{stan}1124100000{0:011d}{0:011d}"


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger(tmp_path / "state.sqlite")
    lg.reset(
        [
            Card(pan=PAN, expiry="3012", pvv="1234", balance=100_000, daily_limit=80_000),
            Card(pan=LOW, expiry="3012", pvv="1234", balance=1_000),
        ]
    )
    yield lg
    lg.close()


def test_purchase_debits_once_and_duplicate_returns_the_same_answer(ledger):
    r = req("0200", "000000", 1_500)
    first = ledger.process(r)
    assert first.code == "00" and len(first.auth_code) == 6
    again = ledger.process(r)
    assert again.duplicate and (again.code, again.auth_code) == (first.code, first.auth_code)
    assert ledger.balance(PAN) == 98_500


def test_reversal_exactly_once_even_repeated_and_for_unknown_originals(ledger):
    ledger.process(req("0200", "000000", 2_000, rrn="R1"))
    rev = req("0400", "000000", 2_000, rrn="R1", extra={90: f90("0200", "000001")})
    assert ledger.process(rev).code == "00"
    assert ledger.balance(PAN) == 100_000
    assert ledger.process(rev).duplicate
    assert ledger.process(req("0401", "000000", 2_000, rrn="R1")).code == "00"
    assert ledger.process(req("0420", "000000", 2_000, rrn="R1")).code == "00"
    assert ledger.balance(PAN) == 100_000
    unknown = ledger.process(req("0400", "000000", 9_999, rrn="NOPE"))
    assert unknown.code == "00"
    assert ledger.balance(PAN) == 100_000


def test_reversal_found_by_original_stan_and_time_when_no_rrn(ledger):
    ledger.process(req("0200", "000000", 700, rrn=None, stan="000042"))
    assert ledger.balance(PAN) == 99_300
    ledger.process(
        req("0400", "000000", 700, rrn=None, stan="000043", extra={90: f90("0200", "000042")})
    )
    assert ledger.balance(PAN) == 100_000


def test_reversal_overtaking_its_original_means_no_effect(ledger):
    ledger.process(req("0400", "000000", 500, rrn="LATE"))
    out = ledger.process(req("0200", "000000", 500, rrn="LATE"))
    assert out.code == "00"
    assert ledger.balance(PAN) == 100_000


def test_void_credits_back_once(ledger):
    ledger.process(req("0200", "000000", 3_000, rrn="P1", stan="000010"))
    void = req("0200", "200000", 3_000, rrn="V1", stan="000011", extra={90: f90("0200", "000010")})
    assert ledger.process(void).code == "00"
    assert ledger.balance(PAN) == 100_000
    second = req(
        "0200", "200000", 3_000, rrn="V2", stan="000012", extra={90: f90("0200", "000010")}
    )
    assert ledger.process(second).code == "94"
    # reversing the void debits again
    ledger.process(req("0400", "200000", 3_000, rrn="V1", extra={90: f90("0200", "000011")}))
    assert ledger.balance(PAN) == 97_000
    missing = req("0200", "200000", 1, rrn="V3", stan="000013", extra={90: f90("0200", "999999")})
    assert ledger.process(missing).code == "25"


def test_a_partial_reversal_of_a_kind_without_a_partial_form_is_a_full_one(ledger):
    """A void has no partial form: a reversal of it with 95 undoes it whole, as the issuer
    contract says (it used to be acknowledged with no effect at all)."""
    ledger.process(req("0200", "000000", 3_000, rrn="P1", stan="000010"))
    void = req("0200", "200000", 3_000, rrn="V1", stan="000011", extra={90: f90("0200", "000010")})
    assert ledger.process(void).code == "00" and ledger.balance(PAN) == 100_000
    f95 = {95: f"{1_000:012d}" + "0" * 30}
    too_much = {95: f"{3_001:012d}" + "0" * 30}
    over = req(
        "0400",
        "200000",
        3_000,
        rrn="V1",
        stan="000012",
        extra={90: f90("0200", "000011"), **too_much},
    )
    assert ledger.process(over).code == "13" and ledger.balance(PAN) == 100_000
    rev = req("0400", "200000", 3_000, rrn="V1", extra={90: f90("0200", "000011"), **f95})
    assert ledger.process(rev).code == "00"
    assert ledger.balance(PAN) == 97_000  # the sale is a sale again


def test_preauth_hold_completion_and_cancel(ledger):
    pre = req("0100", "030000", 10_000, rrn="A1", stan="000020", cond="06")
    assert ledger.process(pre).code == "00"
    assert [h.amount for h in ledger.holds(PAN)] == [10_000]
    assert ledger.card(PAN).available == 90_000
    done = req(
        "0200",
        "000000",
        11_000,
        rrn="C1",
        stan="000021",
        cond="06",
        extra={90: f90("0100", "000020")},
    )
    assert ledger.process(done).code == "00"
    assert ledger.holds(PAN) == [] and ledger.balance(PAN) == 89_000
    # reversal of the completion re-opens the hold and credits
    ledger.process(
        req("0400", "000000", 11_000, rrn="C1", cond="06", extra={90: f90("0200", "000021")})
    )
    assert ledger.balance(PAN) == 100_000 and [h.amount for h in ledger.holds(PAN)] == [10_000]
    cancel = req(
        "0100",
        "200000",
        10_000,
        rrn="X1",
        stan="000022",
        cond="06",
        extra={90: f90("0100", "000020")},
    )
    assert ledger.process(cancel).code == "00"
    assert ledger.holds(PAN) == []
    assert ledger.process(req("0400", "030000", 10_000, rrn="A1", cond="06")).code == "00"
    assert ledger.holds(PAN) == [] and ledger.balance(PAN) == 100_000


def test_completion_over_tolerance_is_64(ledger):
    ledger.process(req("0100", "030000", 10_000, rrn="A2", stan="000030", cond="06"))
    over = req(
        "0200",
        "000000",
        11_600,
        rrn="C2",
        stan="000031",
        cond="06",
        extra={90: f90("0100", "000030")},
    )
    assert ledger.process(over).code == "64"


def test_refund_credits_insufficient_funds_and_daily_limit(ledger):
    assert ledger.process(req("0220", "200000", 500, rrn="F1")).code == "00"
    assert ledger.balance(PAN) == 100_500
    assert ledger.process(req("0200", "000000", 5_000, pan=LOW, rrn="L1")).code == "51"
    assert ledger.process(req("0200", "000000", 81_000, rrn="B1")).code == "61"
    assert ledger.process(req("0200", "000000", 50_000, rrn="B2")).code == "00"
    assert ledger.process(req("0200", "000000", 40_000, rrn="B3")).code == "61"


def test_unknown_card_and_balance_inquiry(ledger):
    assert ledger.process(req("0200", "000000", 1, pan="6222029999999999", rrn="U1")).code == "14"
    out = ledger.process(req("0200", "310000", rrn="Q1"))
    assert out.code == "00"
    assert out.balances == "0001156C000000100000" + "0002156C000000100000"


def test_pin_tries_then_75(ledger):
    codes = [
        ledger.process(
            req("0200", "000000", 1, rrn=f"N{i}", extra={52: b"x" * 8}), lambda c: False
        ).code
        for i in range(4)
    ]
    assert codes == ["55", "55", "75", "75"]
    assert (
        ledger.process(
            req("0200", "000000", 1, rrn="N9", extra={52: b"x" * 8}), lambda c: True
        ).code
        == "75"
    )


def test_good_pin_resets_counter(ledger):
    ledger.process(req("0200", "000000", 1, rrn="G1", extra={52: b"x" * 8}), lambda c: False)
    assert ledger.card(PAN).pin_tries == 1
    assert (
        ledger.process(
            req("0200", "000000", 1, rrn="G2", extra={52: b"x" * 8}), lambda c: True
        ).code
        == "00"
    )
    assert ledger.card(PAN).pin_tries == 0


def test_state_survives_reopen(tmp_path):
    path = tmp_path / "s.sqlite"
    lg = Ledger(path)
    lg.reset([Card(pan=PAN, expiry="3012", pvv="1234", balance=10_000)])
    lg.process(req("0200", "000000", 1_234))
    lg.close()
    lg2 = Ledger(path)
    assert lg2.balance(PAN) == 8_766
    lg2.close()


def test_expired_and_status_codes():
    today = time.strftime("%y%m")
    base = dict(
        pan=PAN,
        expiry="3012",
        pvki=1,
        pvv="1",
        pin_tries=0,
        max_pin_tries=3,
        currency="156",
        balance=10,
        daily_limit=0,
        spent_today=0,
        held=0,
    )
    r = req("0200", "000000", 1)
    for status, code in [("lost", "41"), ("stolen", "43"), ("blocked", "62")]:
        assert (
            d.decide(r, d.CardState(**{**base, "status": status}), None, None, today).code == code
        )
    old = d.CardState(**{**base, "status": "active", "expiry": "2001"})
    assert d.decide(r, old, None, None, today).code == "54"


# ---- property: whatever mix of duplicates and reversals arrives, each purchase counts once ----

OPS = st.lists(
    st.tuples(st.sampled_from(["purchase", "reversal", "repeat", "advice"]), st.integers(0, 5)),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_any_order_of_duplicates_and_reversals_counts_each_purchase_once(tmp_path_factory, ops):
    lg = Ledger(tmp_path_factory.mktemp("p") / "s.sqlite")
    lg.reset([Card(pan=PAN, expiry="3012", pvv="1234", balance=10_000_000)])
    amounts = {i: 100 * (i + 1) for i in range(6)}
    purchased, reversed_ = set(), set()
    for op, i in ops:
        rrn, stan = f"RRN{i:09d}", f"{i:06d}"
        if op == "purchase":
            out = lg.process(req("0200", "000000", amounts[i], rrn=rrn, stan=stan))
            assert out.code == "00"
            purchased.add(i)
        else:
            mti = {"reversal": "0400", "repeat": "0401", "advice": "0420"}[op]
            extra = {90: f90("0200", stan)}
            out = lg.process(req(mti, "000000", amounts[i], rrn=rrn, stan=stan, extra=extra))
            assert out.code == "00"
            reversed_.add(i)
    expected = 10_000_000 - sum(amounts[i] for i in purchased - reversed_)
    assert lg.balance(PAN) == expected
    lg.close()
