"""The tools against a host and the real wallet-sim on loopback: `poshost terminal qr-pay`,
`qr-order` (text and PNG), `qr-query`, a void of a QR sale, and `poshost load` with QR in the
mix."""

import httpx
import pytest
import trio
from click.testing import CliRunner

from tools.certify.stack import ThreadedStack
from tools.load.cli import with_payment_codes
from tools.load.engine import LoadConfig, parse_mix
from tools.load.provision import provision, specs
from tools.load.run import run_in_process
from tools.terminal.cli import terminal
from tools.terminal.state import TerminalState


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with ThreadedStack(tmp_path_factory.mktemp("qr-tools")) as s:
        yield s


def control(stack, method, path, data=None):
    return httpx.request(method, f"http://{stack.stack.wallet_control}{path}", json=data).json()


def run(stack, state, *args):
    head = ["--state", str(state), "--profile", "demo:12345678", "--host", stack.address]
    return CliRunner().invoke(terminal, [*head, "--timeout", "10", *args])


def test_qr_commands_sale_order_query_and_void(stack, tmp_path):
    state = tmp_path / "t.json"
    assert run(stack, state, "sign-on").exit_code == 0
    code = control(stack, "POST", "/users/alice/code")["code"]
    sale = run(stack, state, "qr-pay", "--amount", "1500", "--code", code)
    assert sale.exit_code == 0 and "RESULT       00 APPROVED" in sale.output
    assert code not in sale.output and f"{code[:6]}********{code[-4:]}" in sale.output
    png = tmp_path / "qr.png"
    order = run(stack, state, "qr-order", "--amount", "700", "--png", str(png))
    assert order.exit_code == 0 and "█" in order.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    content = next(line.split(" ", 1)[1] for line in order.output.splitlines()
                   if line.startswith("content "))  # fmt: skip
    waiting = run(stack, state, "qr-query")
    assert waiting.exit_code == 3 and "09 NOT PAID YET" in waiting.output
    assert control(stack, "POST", "/pay", {"qr": content, "user": "bob"})["result"] == "paid"
    paid = run(stack, state, "qr-query")
    assert paid.exit_code == 0 and "PAID 7.00 CNY" in paid.output
    before = next(u["balance"] for u in control(stack, "GET", "/users") if u["id"] == "bob")
    stan = next(e.stan for e in TerminalState.load(state).log if e.type == "qr_order")
    void = run(stack, state, "void", "--stan", stan)
    assert void.exit_code == 0 and "RESULT       00 APPROVED" in void.output
    after = next(u["balance"] for u in control(stack, "GET", "/users") if u["id"] == "bob")
    assert after - before == 700


def test_load_with_qr_in_the_mix(stack):
    provision(stack.stack.running.host.settings, 2, "QL")

    async def main():
        config = LoadConfig("127.0.0.1", stack.stack.port, tuple(specs(2, "QL")), duration=2.0,
                            rate=40, mix=parse_mix("purchase_pin=50,qr=50"))  # fmt: skip
        config = await trio.to_thread.run_sync(
            with_payment_codes, config, stack.stack.wallet_control, "load"
        )
        return await run_in_process(config)

    r = trio.run(main)
    assert r.completed == 80 and not r.errors and r.codes == {"00": 80}
    kinds = r.by_type()
    assert kinds["qr"]["completed"] == 40 and kinds["purchase_pin"]["completed"] == 40
