"""wallet-sim's rules (tools/wallet_sim/ledger.py), on its own SQLite state: one-time codes,
idempotent order and request numbers, cancel before pay, user paying, refunds, the bill."""

import pytest

from codec import wallet as w
from tools.wallet_sim.bill import bill_csv
from tools.wallet_sim.ledger import Ledger, User

T0 = 1_780_000_000.0


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "state.sqlite")
    led.reset([User("alice", "Alice", 10_000, 5_000), User("bob", "Bob", 100, 1_000)])
    yield led
    led.close()


def pay(ledger, order, amount, code, now=T0):
    return ledger.pay("app", {"out_trade_no": order, "total_amount": w.yuan(amount),
                              "auth_code": code}, now, None)  # fmt: skip


def test_a_code_pays_once_and_a_resent_payment_is_answered_the_same(ledger):
    code = ledger.issue_code("alice", T0, 60)
    first = pay(ledger, "o1", 1_000, code)
    again = pay(ledger, "o1", 1_000, code)  # the acquirer resends: same answer, no second debit
    other = pay(ledger, "o2", 1_000, code)  # the code again under another order: used
    assert first[0] == again[0] == w.SUCCESS and first[1]["trade_no"] == again[1]["trade_no"]
    assert other == (w.BUSINESS_FAILED, other[1]) and other[1]["sub_code"] == w.CODE_USED
    assert ledger.user("alice").balance == 9_000
    assert pay(ledger, "o1", 2_000, code)[1]["sub_code"] == w.CONTEXT_INCONSISTENT


def test_codes_rotate_and_expire(ledger):
    old = ledger.issue_code("alice", T0, 60)
    new = ledger.issue_code("alice", T0, 60)
    assert len(new) == 18 and new.startswith("28")
    assert pay(ledger, "o1", 1, old)[1]["sub_code"] == w.CODE_INVALID  # replaced
    assert pay(ledger, "o2", 1, new, now=T0 + 61)[1]["sub_code"] == w.CODE_EXPIRED


def test_user_paying_until_confirmed_and_cancel_before_pay_refuses_the_late_payment(ledger):
    code = ledger.issue_code("alice", T0, 60)
    assert pay(ledger, "o1", 6_000, code)[0] == w.IN_PROCESS
    assert ledger.query({"out_trade_no": "o1"})[1]["trade_status"] == w.WAIT_BUYER_PAY
    assert ledger.confirm(T0 + 1, user_id="alice")["status"] == w.TRADE_SUCCESS
    assert ledger.user("alice").balance == 4_000
    # a cancel that overtakes its payment leaves a closed trade: the payment is refused
    assert ledger.cancel("app", {"out_trade_no": "o2"}, T0)[1]["action"] == "close"
    late = pay(ledger, "o2", 100, ledger.issue_code("alice", T0, 60))
    assert late[1]["sub_code"] == w.TRADE_HAS_CLOSE and ledger.user("alice").balance == 4_000


def test_cancel_of_a_paid_trade_refunds_it_once(ledger):
    pay(ledger, "o1", 700, ledger.issue_code("alice", T0, 60))
    for _ in range(3):
        assert ledger.cancel("app", {"out_trade_no": "o1"}, T0 + 1)[1]["action"] == "refund"
    assert ledger.user("alice").balance == 10_000


def test_refunds_are_idempotent_on_the_request_number_and_never_exceed_the_trade(ledger):
    pay(ledger, "o1", 1_000, ledger.issue_code("alice", T0, 60))

    def refund(no, amount):
        return ledger.refund({"out_trade_no": "o1", "out_request_no": no,
                              "refund_amount": w.yuan(amount)}, T0 + 5)  # fmt: skip

    assert refund("r1", 600)[0] == w.SUCCESS
    assert refund("r1", 600)[0] == w.SUCCESS  # resent: nothing more moves
    assert refund("r2", 500)[1]["sub_code"] == w.REFUND_EXCEEDED
    assert refund("r1", 300)[1]["sub_code"] == w.CONTEXT_INCONSISTENT
    assert ledger.user("alice").balance == 9_600


def test_orders_are_paid_by_scan_once_and_close_after_their_validity(ledger):
    code, made = ledger.precreate("app", {"out_trade_no": "q1", "total_amount": "1.00",
                                          "timeout_express": "60s"}, T0, None, 300)  # fmt: skip
    assert code == w.SUCCESS and made["qr_code"].startswith("https://")
    assert ledger.pay_order(made["qr_code"], "bob", T0 + 1)[0] == "paid"
    assert ledger.pay_order(made["qr_code"], "alice", T0 + 2)[0] == "already paid"
    _, late = ledger.precreate("app", {"out_trade_no": "q2", "total_amount": "1.00",
                                       "timeout_express": "60s"}, T0, None, 300)  # fmt: skip
    assert ledger.expire(T0 + 61, 120) == 1
    assert ledger.pay_order(late["qr_code"], "bob", T0 + 62)[0] == "closed"
    assert ledger.user("bob").balance == 0


def test_the_bill_lists_the_day_s_payments_and_refunds_with_totals(ledger):
    pay(ledger, "20260101000000000001", 1_000, ledger.issue_code("alice", T0, 60))
    ledger.refund({"out_trade_no": "20260101000000000001", "out_request_no": "r1",
                   "refund_amount": "2.50"}, T0 + 5)  # fmt: skip
    text = bill_csv(ledger, ledger.local_day(T0), "app")
    assert "# total pay,1,10.00" in text and "# total refund,1,2.50" in text
    assert ",pay," in text and ",refund," in text
