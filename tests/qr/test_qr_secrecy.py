"""Everything the host and wallet-sim log, journal and record during QR traffic is searched for
the payment codes it handled and the private keys: only the 6 + 4 mask may appear."""

import io
import json

import structlog
import trio

from codec import wallet as w
from host import logs
from tests.host.harness import demo_device, qr_stack, terminal


def _forget_cached_loggers() -> None:
    """host.logs caches each module's logger on first use: one cached by an earlier test of
    the run writes to that test's stream. Forget them, so this test's lines come here."""
    import sys

    from structlog._config import BoundLoggerLazyProxy

    for module in list(sys.modules.values()):
        for value in list(vars(module).values()) if hasattr(module, "__dict__") else ():
            if isinstance(value, BoundLoggerLazyProxy):
                vars(value).pop("bind", None)


def test_no_clear_payment_code_or_private_key_in_logs_journal_or_record(tmp_path):
    buffer = io.StringIO()
    _forget_cached_loggers()
    logs.configure("json", "debug", stream=buffer)
    codes: list[str] = []
    record = tmp_path / "wallet-record.jsonl"

    async def main():
        async with qr_stack(tmp_path, wallet={"record": record}) as (wsim, _isim, running):
            device = demo_device()
            async with terminal(running, device) as client:
                for amount in (100, 60_000_000):  # approved; declined (balance)
                    codes.append(wsim.issue_code("alice"))
                    req = device.financial_request("qr_pay", amount=amount, extra={48: codes[-1]})
                    await client.exchange(req)
                codes.append(wsim.issue_code("bob"))
                await client.exchange(
                    device.financial_request("qr_pay", amount=5, extra={48: codes[-1]})
                )
                await client.exchange(device.reversal_of(req.without(48)))
            rows = await running.host.store.list_transactions(limit=100)
            return rows, wsim.key, running.host.links["wallet"].key

    try:
        rows, platform_key, acquirer_key = trio.run(main)
    finally:
        structlog.reset_defaults()
        _forget_cached_loggers()  # nor may this test's stream keep the later tests' lines
    text = buffer.getvalue()
    assert any(json.loads(x).get("type") == "qr_pay" for x in text.splitlines() if x[:1] == "{")
    journal = repr(rows) + json.dumps([r.extra for r in rows])
    recorded = record.read_text()
    assert recorded.count('"method": "trade.pay"') == 3
    for code in codes:
        for where, content in (("log", text), ("journal", journal), ("record", recorded)):
            assert code not in content, f"payment code in clear in the {where}"
        assert w.mask_code(code) in text + journal  # the mask is what they show
    for key in (platform_key, acquirer_key):
        pem = key.key.export_key("PEM").decode()
        body = "".join(pem.splitlines()[1:-1])
        for chunk in (body[40:80], str(key.key.d)[:40]):
            assert chunk not in text and chunk not in recorded
