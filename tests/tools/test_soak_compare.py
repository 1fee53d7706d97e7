"""The journal-vs-issuer comparison of the soak, on tiny hand-made ledgers: each way money can
be lost or doubled is reported once, with its key and a masked PAN; agreeing books give none."""

import sqlite3

from tools.issuer_sim.ledger import SCHEMA
from tools.soak.compare import IssuerPurchase, JournalPurchase, compare, issuer_purchases

PAN = "6222025555000005"
MASKED = "622202******0005"


def j(rrn, status, amount=100, tid="12345678"):
    return JournalPurchase(tid, rrn, rrn[-6:], status, amount, MASKED)


def i(rrn, code="00", reversed_=False, amount=100, tid="12345678"):
    return IssuerPurchase(tid, rrn, rrn[-6:], code, amount, reversed_, PAN)


def problems(journal, issuer):
    return {(m.tid, m.rrn): m.problem for m in compare(journal, issuer)}


def test_books_that_agree_have_no_mismatch():
    journal = [
        j("000000000001", "approved"),
        j("000000000002", "declined"),  # declined on both sides
        j("000000000003", "reversed"),  # debited, then reversed: stands nowhere
        j("000000000004", "error"),  # 91: never reached the issuer
        j("000000000005", "approved", tid="12345679"),  # same RRN, other terminal
    ]
    issuer = [
        i("000000000001"),
        i("000000000002", code="51"),
        i("000000000003", reversed_=True),
        i("000000000005", tid="12345679"),
    ]
    assert compare(journal, issuer) == []


def test_each_way_the_books_can_disagree_is_reported():
    journal = [
        j("000000000001", "approved"),  # the issuer never debited it
        j("000000000002", "approved"),  # the issuer reversed it
        j("000000000003", "error"),  # the host gave up (91), the issuer debited
        j("000000000005", "approved", amount=100),  # amounts differ
        j("000000000006", "timeout"),  # 98 and no reversal reached the issuer
    ]
    issuer = [
        i("000000000002", reversed_=True),
        i("000000000003"),
        i("000000000004"),  # debited, unknown to the journal
        i("000000000005", amount=200),
        i("000000000006"),
    ]
    assert problems(journal, issuer) == {
        ("12345678", "000000000001"): "approved in the journal, no debit at the issuer",
        ("12345678", "000000000002"): "approved in the journal, reversed at the issuer",
        ("12345678", "000000000003"): "debited at the issuer, journal: error",
        ("12345678", "000000000004"): "debited at the issuer, journal: no row",
        ("12345678", "000000000005"): "amount 100 in the journal, 200 at the issuer",
        ("12345678", "000000000006"): "debited at the issuer, journal: timeout",
    }


def test_a_double_debit_is_reported():
    found = problems([j("000000000001", "approved")], [i("000000000001"), i("000000000001")])
    assert found == {("12345678", "000000000001"): "issuer debited 2 times"}


def test_mismatch_lines_show_only_the_masked_pan():
    [mismatch] = compare([], [i("000000000009")])
    assert mismatch.pan_masked == MASKED
    assert PAN not in mismatch.line() and MASKED in mismatch.line()


def test_issuer_rows_are_read_from_the_simulators_state_file(tmp_path):
    state = tmp_path / "sim.sqlite"
    db = sqlite3.connect(state)
    db.executescript(SCHEMA)
    columns = "(dedupe_key, kind, mti, proc, tid, rrn, stan, f7, pan, amount, code, created"
    for n, (kind, code, reversed_by) in enumerate(
        [("purchase", "00", None), ("purchase", "00", 3), ("reversal", "00", None)], 1
    ):
        db.execute(
            f"INSERT INTO auths {columns}, reversed_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (f"k{n}", kind, "0200", "000000", "12345678", f"00000000000{n}", f"00000{n}",
             "1201120000", PAN, 100, code, 0.0, reversed_by),
        )  # fmt: skip
    db.commit()
    db.close()
    rows = issuer_purchases(state)
    assert [(r.rrn, r.debited) for r in sorted(rows, key=lambda r: r.rrn)] == [
        ("000000000001", True),
        ("000000000002", False),
    ]
