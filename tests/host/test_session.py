"""Sign-on, echo and the session checks over a real socket, with no issuer reachable."""

import pytest
import trio

from tests.host.harness import demo_device, host_settings, running_host, terminal


@pytest.mark.parametrize("tid", ["12345679", "12345678", "12345680"])  # modes 001, 003, 004
def test_sign_on_delivers_working_keys_under_the_tmk(tmp_path, tid):
    async def main():
        async with running_host(host_settings(tmp_path, link_port=1)) as running:
            device = demo_device(tid)
            async with terminal(running, device) as client:
                assert device.mak is not None and len(device.mak) == 8
                assert len(device.pik) == (8 if device.key_mode == "001" else 16)
                assert (device.tdk is not None) == (device.key_mode == "004")
                resp, _ = await client.exchange(device.management_request("0820", "301"))
                assert resp[39] == "00"
            stored = await running.host.store.get_terminal(tid)
            assert stored.signed_on

    trio.run(main)


def test_unknown_terminal_gets_97_and_bad_mac_gets_a0_with_sign_on_again(tmp_path):
    async def main():
        async with running_host(host_settings(tmp_path, link_port=1)) as running:
            stranger = demo_device()
            stranger.tid = "99999999"
            async with terminal(running, stranger, sign_on=False) as client:
                resp, _ = await client.exchange(stranger.sign_on_request())
                assert resp[39] == "97"
            device = demo_device()
            async with terminal(running, device) as client:
                good_mak = device.mak
                device.mak = bytes(8)  # the terminal MACs with a wrong key
                req = device.financial_request("purchase", pan="6222020000000001", amount=100)
                payload = device.encode(req)
                device.mak = good_mak
                await client.send_raw(device.envelope(payload).to_frame())
                from codec.framing import parse_envelope

                env = parse_envelope(await client.receive_body())
                resp = device.check_response(req, env.payload)
                assert resp[39] == "A0"
                assert env.processing == 3

    trio.run(main)


def test_wrong_batch_77_issuer_down_91_not_signed_on_77(tmp_path):
    async def main():
        async with running_host(host_settings(tmp_path, link_port=1)) as running:
            device = demo_device()
            async with terminal(running, device) as client:
                device.batch = "000009"
                resp, _ = await client.exchange(
                    device.financial_request("purchase", pan="6222020000000001", amount=100)
                )
                assert resp[39] == "77"
                device.batch = "000001"
                resp, _ = await client.exchange(
                    device.financial_request("purchase", pan="6222020000000001", amount=100)
                )
                assert resp[39] == "91"
                resp, _ = await client.exchange(device.management_request("0820", "002"))
                assert resp[39] == "00"
                resp, proc = await client.exchange(
                    device.financial_request("purchase", pan="6222020000000001", amount=100)
                )
                assert resp[39] == "77" and proc == 3

    trio.run(main)


def test_parameter_download_returns_the_documented_tags(tmp_path):
    from host.flow.management import parse_parameters

    async def main():
        async with running_host(host_settings(tmp_path, link_port=1)) as running:
            device = demo_device()
            async with terminal(running, device) as client:
                resp, _ = await client.exchange(device.management_request("0800", "360"))
            assert resp[39] == "00"
            params = parse_parameters(bytes(resp[62]))
            assert params["02"] == "POSHOST DEMO SHOP"
            assert params["05"] == "CUP" and params["03"].isdigit()

    trio.run(main)
