"""wallet-sim over its sockets: the gateway refuses what the acquirer did not sign, answers
signed, drops answers on purpose, and the `poshost wallet-sim` commands drive its control
endpoint."""

import json

import httpx
import pytest
import trio
from click.testing import CliRunner

from codec import wallet as w
from host.cli import main
from keys import rsa_sign
from tests.host.harness import wallet_config
from tools.wallet_sim.server import WalletSim


def run(tmp_path, body, **changes):
    async def main_():
        sim = WalletSim(wallet_config(tmp_path, **changes))
        acquirer = rsa_sign.load_or_create(
            tmp_path / "host" / "wallet_acquirer.pem",
            tmp_path / "host" / "wallet_acquirer_public.pem",
        )
        async with trio.open_nursery() as nursery:
            gateway, control = await nursery.start(sim.serve)
            try:
                await body(sim, acquirer, gateway, control)
            finally:
                nursery.cancel_scope.cancel()
        sim.close()

    trio.run(main_)


def signed(key, call, app_id=w.DEMO_APP_ID):
    params = w.request_params(app_id, call, timestamp="2026-01-01 00:00:00")
    params["sign"] = rsa_sign.sign(key, params)
    return json.dumps(params).encode()


def test_gateway_checks_signatures_and_signs_its_answers(tmp_path):
    async def body(sim, acquirer, gateway, _control):
        call = w.WalletCall("trade.query", {"out_trade_no": "x"})
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway}") as http:
            good = await http.post(w.GATEWAY_PATH, content=signed(acquirer, call))
            forged = await http.post(w.GATEWAY_PATH, content=signed(rsa_sign.generate(), call))
            app = await http.post(w.GATEWAY_PATH, content=signed(acquirer, call, "other-app"))
            junk = await http.post(w.GATEWAY_PATH, content=b"{}")
            health = await http.get("/health")
        response, sig = w.parse_response("trade.query", good.content)
        assert rsa_sign.verify(sim.key.public, response, sig)
        assert response["sub_code"] == w.TRADE_NOT_EXIST
        refused, _ = w.parse_response("trade.query", forged.content)
        assert (refused["code"], refused["sub_code"]) == (w.INVALID_PARAMETER, w.INVALID_SIGNATURE)
        assert w.parse_response("trade.query", app.content)[0]["code"] == w.INVALID_PARAMETER
        assert junk.status_code == 400 and health.status_code == 200
        assert sim.stats["bad_signature"] == 1

    run(tmp_path, body)


def test_a_dropped_answer_still_applied_its_effect(tmp_path):
    async def body(sim, acquirer, gateway, _control):
        sim.update_faults({"drop_rate": 1.0})
        code = sim.issue_code("alice")
        call = w.WalletCall("trade.pay", {"out_trade_no": "o1", "auth_code": code,
                                          "total_amount": "1.00"})  # fmt: skip
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway}") as http:
            with pytest.raises(httpx.RemoteProtocolError):  # closed, no answer
                await http.post(w.GATEWAY_PATH, content=signed(acquirer, call))
        assert sim.ledger.trade("o1")["status"] == w.TRADE_SUCCESS  # paid, answer lost

    run(tmp_path, body)


def test_cli_commands_drive_the_control_endpoint(tmp_path):
    async def body(sim, _acquirer, _gateway, control):
        addr = f"127.0.0.1:{control}"

        def cli(*args):
            return CliRunner().invoke(main, ["wallet-sim", *args, "--control", addr])

        code = await trio.to_thread.run_sync(cli, "code", "--user", "alice")
        assert code.exit_code == 0 and w.valid_payment_code(code.output.strip())
        users = await trio.to_thread.run_sync(cli, "users")
        assert "alice" in users.output
        nothing = await trio.to_thread.run_sync(cli, "confirm", "--user", "alice")
        assert nothing.exit_code == 1 and "no payment waits" in nothing.output
        changed = await trio.to_thread.run_sync(cli, "settings", "--set", "notify_loss=0.5")
        assert changed.exit_code == 0 and '"notify_loss": 0.5' in changed.output
        bad = await trio.to_thread.run_sync(cli, "settings", "--set", "drop_rate=7")
        assert bad.exit_code == 1
        unknown = await trio.to_thread.run_sync(cli, "pay", "https://x/o/nope", "--user", "bob")
        assert unknown.exit_code == 3 and "no such order" in unknown.output

    run(tmp_path, body)


def test_cli_says_so_when_no_simulator_runs(tmp_path):
    from tests.host.harness import free_port

    result = CliRunner().invoke(main, ["wallet-sim", "code", "--user", "alice", "--control",
                                       f"127.0.0.1:{free_port()}"])  # fmt: skip
    assert result.exit_code == 1 and "cannot reach wallet-sim" in result.output
