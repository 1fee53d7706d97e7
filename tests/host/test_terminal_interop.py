"""What strict CUP terminals compare and trip over, written from the terminal dialect:

- 77 for a batch out of step says "sign on again" in the header's processing nibble (3);
- a decline echoes field 4 (terminals that compare it show AMOUNT ERROR otherwise);
- a format-error answer echoes 3, 4, 11, 41, 42 when they were readable;
- field 54 of a balance answer holds one 20-character entry unless the terminal's profile asks
  for both;
- the issuer's IC data (55) and card sequence number (23) reach the terminal on the 0210.
"""

import trio
from click.testing import CliRunner

from codec import terminal as terminal_codec
from codec.subfields import Field60
from host.cli import main
from tests.host.harness import (
    demo_device,
    host_settings,
    one_by_one_issuer,
    running_host,
    sim_and_host,
    terminal,
)
from tools.issuer_sim.testing import LOW, PIN, RICH


def test_batch_out_of_step_is_77_with_sign_on_again(tmp_path):
    async def body():
        async with sim_and_host(tmp_path) as (_sim, running):
            device = demo_device()
            async with terminal(running, device) as client:
                wrong = Field60("22", "000777", "000").format()
                req = device.financial_request(
                    "purchase", pan=RICH, amount=100, pin=PIN, extra={60: wrong}
                )
                resp, processing = await client.exchange(req)
            assert resp[39] == "77" and processing == 3

    trio.run(body)


def test_a_decline_echoes_the_amount(tmp_path):
    async def body():
        async with sim_and_host(tmp_path) as (_sim, running):
            device = demo_device()
            async with terminal(running, device) as client:
                req = device.financial_request("purchase", pan=LOW, amount=99_999_999, pin=PIN)
                resp, _ = await client.exchange(req)
            assert resp[39] == "51"
            assert resp[4] == "000099999999"

    trio.run(body)


def test_a_format_error_echoes_what_was_readable(tmp_path):
    """A purchase whose field 60 is cut short: 3, 4, 11, 41, 42 come before it and are read."""

    async def body():
        async with sim_and_host(tmp_path) as (_sim, running):
            device = demo_device()
            async with terminal(running, device) as client:
                req = device.financial_request("purchase", pan=RICH, amount=100, pin=PIN)
                payload = device.encode(req)
                # field 60 is LLL n: claim 11 digits but cut the message inside it
                cut = payload[: payload[:-8].rindex(bytes.fromhex("0011")) + 3]
                await client.send_raw(device.envelope(cut).to_frame())
                body_ = await client.receive_body()
            from codec.framing import parse_envelope

            resp = terminal_codec.decode(parse_envelope(body_).payload)
            assert resp.mti == "0210" and resp[39] == "30"
            for n in (3, 4, 11, 41, 42):
                assert resp[n] == req[n], n

    trio.run(body)


def test_balance_answer_has_one_entry_unless_the_profile_asks_for_two(tmp_path):
    async def body():
        async with sim_and_host(tmp_path) as (_sim, running):
            device = demo_device()
            async with terminal(running, device) as client:
                req = device.financial_request("balance_inquiry", pan=RICH, pin=PIN)
                one, _ = await client.exchange(req)
                await running.host.store.set_terminal_profile(device.tid, balance_entries=2)
                running.host.estate.forget_terminal(device.tid)
                req = device.financial_request("balance_inquiry", pan=RICH, pin=PIN)
                two, _ = await client.exchange(req)
            return one, two

    one, two = trio.run(body)
    assert one[39] == "00" and len(one[54]) == 20
    assert one[54][2:4] == "02"  # the available balance
    assert len(two[54]) == 40 and two[54][20:] == one[54]


def test_profile_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    run = CliRunner().invoke
    assert run(main, ["estate", "--journal", url, "merchant", "add", "123456789012345",
                      "--name", "S", "--mcc", "5411"], env={}).exit_code == 0  # fmt: skip
    assert run(main, ["estate", "--journal", url, "terminal", "add", "87654321", "--mid",
                      "123456789012345", "--key-mode", "001"], env={}).exit_code == 0  # fmt: skip
    r = run(main, ["estate", "--journal", url, "terminal", "profile", "87654321",
                   "--balance-entries", "2"], env={})  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run(main, ["estate", "--journal", url, "terminal", "profile", "87654321",
                   "--balance-entries", "3"], env={})  # fmt: skip
    assert r.exit_code == 2


def ic_answer(msg):
    """Approve with issuer authentication data (91) and a script (71) in 55 and a card sequence
    number in 23, as an EMV issuer does."""
    return msg.response("00", echo=(2, 3, 4, 7, 11, 37, 41, 42, 49), extra={
        38: "A1B2C3", 23: "001", 55: bytes.fromhex("910A0102030405060708303071058601020304"),
    })  # fmt: skip


def test_issuer_ic_data_reaches_the_terminal(tmp_path):
    async def body():
        box: list[int] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(one_by_one_issuer, box, ic_answer)
            async with running_host(host_settings(tmp_path, box[0])) as running:
                for link in running.host.links.values():
                    with trio.fail_after(5):
                        await link.wait_up()
                device = demo_device()
                async with terminal(running, device) as client:
                    req = device.financial_request(
                        "purchase", pan=RICH, amount=100, pin=PIN,
                        extra={55: bytes.fromhex("9F2608AABBCCDDEEFF0011"), 23: "001"},
                    )  # fmt: skip
                    resp, _ = await client.exchange(req)
            nursery.cancel_scope.cancel()
        return resp

    resp = trio.run(body)
    assert resp[39] == "00"
    assert resp[55] == bytes.fromhex("910A0102030405060708303071058601020304")
    assert resp[23] == "001"


def test_serve_starts_the_simulator_where_the_sim_link_points(tmp_path):
    import signal
    import subprocess
    import sys

    from tests.host.harness import free_port, wait_port

    host_port, sim_port = free_port(), free_port()
    config = tmp_path / "host.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{host_port}"\n[data]\ndir = "{tmp_path / "var"}"\n'
        f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\n'
        'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n'
        '[log]\nformat = "json"\nlevel = "warning"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", "from host.cli import main; main()", "serve", "--demo",
         "--issuer-sim", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    try:
        trio.run(wait_port, sim_port)  # the simulator answers on the configured address
        trio.run(wait_port, host_port)  # and the host is up (its SIGTERM handler installed)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
