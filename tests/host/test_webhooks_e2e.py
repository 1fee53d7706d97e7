"""Merchant webhooks end to end: a terminal buys over the host's socket, the host journals the
outcome with its event and POSTs it; the real `poshost webhook-receiver` (its own process and
port) verifies the signature and prints the event. The webhook is set with the real CLI."""

import json

import trio

from tests.host.flowkit import PIN, RICH, original, shop
from tests.host.harness import free_port, wait_port
from tests.host.webhook_kit import Receiver, cli, write_config

MID = "123456789012345"
LOW = "6222020000000002"
SECRET = "whsec_" + "5a" * 32
FAST = {"webhooks.retry_min": 0.2, "webhooks.retry_max": 0.5, "webhooks.timeout": 1.0}


def _setup(tmp_path, port: int, secret: str = SECRET):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret + "\n")
    config = write_config(tmp_path / "host.toml", tmp_path / "host")
    url = f"http://127.0.0.1:{port}/hooks?merchant_token=abc"
    return config, secret_file, url


def run(body, timeout: float = 60):
    """Run ``body`` under trio and hand back what it returns."""

    async def main():
        with trio.fail_after(timeout):
            return await body()

    return trio.run(main)


async def _events(receiver: Receiver, n: int, timeout: float = 5.0) -> list[dict]:
    with trio.fail_after(timeout):
        while len(receiver.events()) < n:
            await trio.sleep(0.02)
    return receiver.events()


def test_each_final_outcome_reaches_the_receiver_signed_with_a_masked_pan(tmp_path):
    port = free_port()
    config, secret_file, url = _setup(tmp_path, port)

    async def body():
        async with shop(tmp_path, **FAST) as s:
            out = await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "set", MID, url, "--secret-file",
                str(secret_file),
            )  # fmt: skip
            assert SECRET not in out  # a secret read from a file is never echoed
            receiver = Receiver(port, secret_file)
            try:
                await wait_port(port)
                sale = await s.sale(12_345)
                assert sale[39] == "00"
                first = (await _events(receiver, 1))[0]
                declined = await s.txn("purchase", pan=LOW, amount=99_999_999, pin=PIN)
                assert declined[39] == "51"
                void = await s.txn("void", pan=RICH, amount=12_345, pin=PIN, extra=original(sale))
                assert void[39] == "00"
                other = await s.sale(500)
                refund = await s.txn("refund", pan=RICH, amount=200, extra=original(other))
                assert refund[39] == "00"
                third = await s.sale(700)
                assert (await s.reverse(s.last_request))[39] == "00"
                events = await _events(receiver, 7)
                with trio.fail_after(5):  # the receiver prints, then answers; then it is logged
                    while len(await s.host.store.list_webhook_deliveries(mid=MID)) < 7:
                        await trio.sleep(0.02)
            finally:
                receiver.stop()
            log = await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "log", MID, "--json"
            )
            shown = await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "show", MID
            )
            return sale, declined, void, other, refund, third, first, events, log, shown

    sale, declined, void, other, refund, third, first, events, log, shown = run(body)
    txn = first["transaction"]
    assert first["type"] == "transaction.approved" and first["verified"]
    assert (txn["rrn"], txn["amount"], txn["mid"]) == (sale[37], 12_345, MID)
    assert txn["pan_masked"] == "622202******0001" and txn["channel"] == "card"
    by_rrn = {(e["type"], e["transaction"]["rrn"]) for e in events}
    assert by_rrn == {
        ("transaction.approved", sale[37]),
        ("transaction.declined", declined[37]),
        ("transaction.voided", void[37]),
        ("transaction.approved", other[37]),
        ("transaction.refunded", refund[37]),
        ("transaction.approved", third[37]),
        ("transaction.reversed", third[37]),
    }
    voided = next(e for e in events if e["type"] == "transaction.voided")["transaction"]
    assert voided["original_rrn"] == sale[37]
    assert len({e["event_id"] for e in events}) == 7 and not any(e["duplicate"] for e in events)
    text = json.dumps(events)
    assert RICH not in text and LOW not in text and "fingerprint" not in text
    attempts = json.loads(log)
    assert len(attempts) == 7 and {a["status_code"] for a in attempts} == {200}
    assert all("merchant_token" not in a["url"] for a in attempts)  # the query stays out
    assert SECRET not in log + shown and "secret check value" in shown


def test_receiver_down_then_up_gets_the_event_later_and_a_resend_repeats_its_id(tmp_path):
    port = free_port()
    config, secret_file, url = _setup(tmp_path, port)

    async def body():
        async with shop(tmp_path, **FAST) as s:
            await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "set", MID, url, "--secret-file",
                str(secret_file),
            )  # fmt: skip
            sale = await s.sale(4_200)  # nobody listens on the port yet
            store = s.host.store

            async def failed_attempts():
                return [a for a in await store.list_webhook_deliveries(mid=MID) if a.error]

            with trio.fail_after(5):
                while len(await failed_attempts()) < 2:
                    await trio.sleep(0.05)
            receiver = Receiver(port, secret_file, "--fail-first", "1")  # up, but 503 once
            try:
                events = await _events(receiver, 1, timeout=10)
                event_id = events[0]["event_id"]
                out = await trio.to_thread.run_sync(
                    cli, config, "estate", "merchant", "webhook", "resend", event_id
                )
                assert event_id in out
                events = await _events(receiver, 2)

                async def oks():
                    rows = await store.list_webhook_deliveries(event_id=event_id)
                    return sum(a.status_code == 200 for a in rows)

                with trio.fail_after(5):  # the receiver prints, then answers; then it is logged
                    while await oks() < 2:
                        await trio.sleep(0.02)
            finally:
                receiver.stop()
            attempts = await store.list_webhook_deliveries(event_id=event_id)
            return sale, events, attempts

    sale, events, attempts = run(body)
    first, again = events
    assert first["event_id"] == again["event_id"] and first["transaction"]["rrn"] == sale[37]
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert {k: v for k, v in first.items() if k not in ("duplicate", "received_at")} == {
        k: v for k, v in again.items() if k not in ("duplicate", "received_at")
    }
    codes = [a.status_code for a in sorted(attempts, key=lambda a: a.attempt)]
    assert codes[:2] == [None, None] and codes[-3:] == [503, 200, 200], codes
    assert all(a.error == "ConnectError" for a in attempts if a.status_code is None)


def test_a_receiver_that_answers_too_late_gets_the_same_event_id_twice(tmp_path):
    port = free_port()
    config, secret_file, url = _setup(tmp_path, port)

    async def body():
        async with shop(tmp_path, **{**FAST, "webhooks.timeout": 0.3}) as s:
            await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "set", MID, url, "--secret-file",
                str(secret_file),
            )  # fmt: skip
            receiver = Receiver(port, secret_file, "--delay", "0.6")
            try:
                await wait_port(port)
                await s.sale(999)
                events = await _events(receiver, 2, timeout=10)
            finally:
                receiver.stop()
            return events

    events = run(body)
    assert events[0]["event_id"] == events[1]["event_id"]
    assert [e["duplicate"] for e in events[:2]] == [False, True]


def test_a_forged_or_stale_signature_is_refused_by_the_receiver(tmp_path):
    port = free_port()
    config, secret_file, url = _setup(tmp_path, port)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("whsec_" + "00" * 32)

    async def body():
        async with shop(tmp_path, **FAST) as s:
            await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "set", MID, url, "--secret-file",
                str(wrong),
            )  # fmt: skip
            receiver = Receiver(port, secret_file)  # holds the other secret
            try:
                await wait_port(port)
                await s.sale(100)
                with trio.fail_after(5):
                    while not await s.host.store.list_webhook_deliveries(mid=MID):
                        await trio.sleep(0.02)
            finally:
                receiver.stop()
            attempts = await s.host.store.list_webhook_deliveries(mid=MID)
            return receiver.lines, attempts

    lines, attempts = run(body)
    assert lines[0]["verified"] is False and not any(line.get("type") for line in lines)
    assert attempts[0].status_code == 400


def test_an_endpoint_down_past_give_up_after_marks_the_event_failed(tmp_path):
    port = free_port()
    config, secret_file, url = _setup(tmp_path, port)
    # a "day" of one second, so the test sees the end of the retries
    settings = {**FAST, "webhooks.give_up_after": 1.0}

    async def body():
        async with shop(tmp_path, **settings) as s:
            await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "set", MID, url, "--secret-file",
                str(secret_file),
            )  # fmt: skip
            await s.sale(321)
            store = s.host.store
            with trio.fail_after(10):
                while not await store.list_webhook_events(mid=MID, status="failed"):
                    await trio.sleep(0.05)
            (event,) = await store.list_webhook_events(mid=MID)
            await trio.sleep(0.6)  # no attempt after giving up
            attempts = await store.list_webhook_deliveries(event_id=event.event_id)
            events_out = await trio.to_thread.run_sync(
                cli, config, "estate", "merchant", "webhook", "log", MID, "--events"
            )
            return event, attempts, events_out

    event, attempts, events_out = run(body)
    assert event.status == "failed" and event.last_error == "ConnectError"
    assert len(attempts) == event.attempts >= 2
    assert event.event_id in events_out and "failed" in events_out
