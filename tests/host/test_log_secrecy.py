"""Everything the host logs during a sign-on, PIN purchases, a decline and a reversal is
searched for the secrets it handled: the clear PAN, the PIN block, every key in clear."""

import io
import json

import structlog
import trio

from host import logs
from tests.host.harness import demo_device, sim_and_host, terminal
from tools.issuer_sim.testing import LOW, PIN, RICH


def test_logs_hold_no_clear_pan_pin_block_or_key(tmp_path):
    buffer = io.StringIO()
    logs.configure("json", "debug", stream=buffer)
    # not cached: a logger cached now would keep writing to this buffer in later tests
    structlog.configure(cache_logger_on_first_use=False)
    seen_blocks: list[bytes] = []
    device = demo_device()

    async def main():
        async with (
            sim_and_host(tmp_path) as (_sim, running),
            terminal(running, device) as client,
        ):
            for pan, amount in ((RICH, 1_000), (LOW, 99_999_999)):
                req = device.financial_request("purchase", pan=pan, amount=amount, pin=PIN)
                seen_blocks.append(bytes(req[52]))
                await client.exchange(req)
            await client.exchange(device.reversal_of(req))
            await trio.sleep(0.3)  # the SAF reversal reaches the issuer

    try:
        trio.run(main)
    finally:
        structlog.reset_defaults()
    text = buffer.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "txn" for line in lines), "the host logged no exchange"
    upper = text.upper()
    secrets = {
        "PAN": [RICH, LOW],
        "PIN block": [b.hex().upper() for b in seen_blocks],
        "TMK": [device.tmk.hex().upper()],
        "PIK": [device.pik.hex().upper()],
        "MAK": [device.mak.hex().upper()],
        "ZPK": ["4CA2161637D0133E5E151AEA45DA2A12"],
    }
    for what, values in secrets.items():
        for value in values:
            assert value.upper() not in upper, f"{what} appears in the log"
    assert "622202******0001" in text  # masked PANs are logged
