"""The estate commands of merchant operations: terms, API tokens; the API inside serve."""

import json
import re
import socket

import trio
from click.testing import CliRunner

from host.cli import main
from tests.host.harness import host_settings, running_host
from tests.ops.test_backoffice import http

MID = "123456789012345"


def _cli(url, *args):
    r = CliRunner().invoke(main, ["estate", "--journal", url, *args], env={})
    return r


def test_terms_and_tokens_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    assert _cli(url, "merchant", "add", MID, "--name", "S", "--mcc", "5411").exit_code == 0
    r = _cli(url, "terms", "set", MID, "--cycle", "D0", "--d0-fee-rate", "0.65",
             "--min-payout", "5000", "--supervisor-types", "void,refund")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = _cli(url, "terms", "show", MID, "--json")
    terms = json.loads(r.output)
    assert terms["cycle"] == "D0" and terms["d0_fee_rate"] == "0.65"
    assert terms["fee_rate"] == "0.60" and terms["min_payout"] == 5000  # default kept
    assert terms["supervisor_types"] == ["void", "refund"]
    text = _cli(url, "terms", "show", MID).output  # for people: no Python spelling
    assert re.search(r"supervisor_types\s+void, refund\n", text), text
    assert re.search(r"require_operator\s+no\n", text) and re.search(
        r"min_payout\s+50.00 CNY", text
    )
    assert "True" not in text and "False" not in text and "(" not in text
    assert _cli(url, "terms", "set", MID, "--fee-rate", "abc").exit_code != 0
    r = _cli(url, "token", "issue", MID, "--label", "office")
    assert r.exit_code == 0 and r.output.startswith("pht_1_")
    secret = r.output.strip().split("_")[2]
    listing = _cli(url, "token", "list").output
    assert "office" in listing and secret not in listing
    assert _cli(url, "token", "revoke", "1").exit_code == 0
    assert _cli(url, "token", "revoke", "1").exit_code != 0


def test_the_api_runs_inside_serve_when_configured(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main_():
        settings = host_settings(tmp_path, 9, **{"backoffice.listen": f"127.0.0.1:{port}"})
        async with running_host(settings):
            status, _, body = await http(port, "/openapi.json")
            assert status == 200 and b"/v1/merchants/{mid}/transactions" in body
            assert (await http(port, f"/v1/merchants/{MID}/transactions"))[0] == 401

    trio.run(main_)


def test_poshost_backoffice_serves_with_the_configured_throttles(tmp_path):
    """The stand-alone command, as an operator starts it: its own process, its own socket."""
    import os
    import signal
    import subprocess
    import sys

    from host.store import SyncStore
    from tests.host.harness import free_port, wait_port

    url = f"sqlite:///{tmp_path}/j.sqlite"
    SyncStore.open(url).close()
    cfg = tmp_path / "poshost.toml"
    cfg.write_text("[backoffice]\nfail_burst = 2\nfail_refill_seconds = 600\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from host.cli import main; main()", "backoffice",
         "--journal", url, "--listen", f"127.0.0.1:{port}", "--config", str(cfg)],
        env={**os.environ, "POSHOST_CONFIG": ""}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip

    async def main_():
        await wait_port(port)
        bad = "pht_1_" + "x" * 43
        codes = [(await http(port, f"/v1/merchants/{MID}/transactions", bad))[0] for _ in range(3)]
        assert codes == [401, 401, 429]  # fail_burst = 2 from the file, then throttled

    try:
        trio.run(main_)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()[-2000:]
