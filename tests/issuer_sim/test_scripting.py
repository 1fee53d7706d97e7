"""Rules, the Python hook, failure injection and the control endpoint, seen from a client."""

from __future__ import annotations

import json
import random
import time

import attrs
import pytest
import trio

from tools.issuer_sim.config import SPECS_DIR
from tools.issuer_sim.rules import Rule, load_rules, parse_rules
from tools.issuer_sim.settings import FailureSettings, Latency
from tools.issuer_sim.testing import FOREIGN, LIMITED, PIN, RICH, Builder, connect, run_sim


def test_shipped_rule_files_load():
    for name in ("rules_amount_coded.toml", "rules_slow_issuer.toml", "rules_flaky_link.toml"):
        assert load_rules(SPECS_DIR / name)


def test_rule_validation():
    with pytest.raises(ValueError, match="no action"):
        parse_rules({"rule": [{"mti": "0200"}]})
    with pytest.raises(ValueError, match="unknown"):
        parse_rules({"rule": [{"colour": "red", "response": "05"}]})
    with pytest.raises(ValueError, match="2-character"):
        parse_rules({"rule": [{"response": "5"}]})


def test_latency_specs():
    rng = random.Random(1)
    assert Latency.parse("fixed:50").sample(rng) == 0.05
    assert 0.01 <= Latency.parse("uniform:10-20").sample(rng) <= 0.02
    normal = Latency.parse("normal:50,p99=200")
    samples = sorted(normal.sample(rng) for _ in range(5000))
    assert 0.04 < samples[2500] < 0.06 and 0.15 < samples[4950] < 0.25
    assert str(normal) == "normal:50,p99=200" and Latency.parse("0").is_zero
    with pytest.raises(ValueError):
        Latency.parse("gamma:1")
    with pytest.raises(ValueError):
        FailureSettings().updated({"drop_rate": 2})


def test_amount_coded_rules_over_socket(config, b):
    config = attrs.evolve(config, rules=SPECS_DIR / "rules_amount_coded.toml")

    async def body(sim, port):
        async with await connect(port) as c:
            assert (await c.request(b.purchase(RICH, 151, pin=PIN)))[39] == "51"
            assert (await c.request(b.purchase(RICH, 1_005)))[39] == "05"
            assert (await c.request(b.purchase(RICH, 100)))[39] == "00"
            dropped = b.purchase(RICH, 298)
            with pytest.raises(trio.TooSlowError):
                await c.request(dropped, timeout=0.5)
            other = Builder("TERM0002")
            assert (await c.request(other.purchase(RICH, 1_000_000)))[39] == "01"
        # only the 1.00 purchase touched the ledger
        assert (await sim.card(RICH)).balance == 10_000_000 - 100

    run_sim(config, body)


def test_rule_matching_keys():
    rng = random.Random(0)
    b = Builder()
    msg = b.purchase(FOREIGN, 12_345)
    assert Rule.from_dict({"bin": "4761", "response": "05"}).matches(msg, rng)
    assert not Rule.from_dict({"bin": "62", "response": "05"}).matches(msg, rng)
    assert Rule.from_dict({"pan": FOREIGN, "response": "05"}).matches(msg, rng)
    assert Rule.from_dict({"amount_min": 100, "amount_max": 20000, "drop": True}).matches(msg, rng)
    assert not Rule.from_dict({"amount": 12_346, "drop": True}).matches(msg, rng)
    assert Rule.from_dict({"processing_code": "00", "drop": True}).matches(msg, rng)
    assert not Rule.from_dict({"mti": ["0100"], "drop": True}).matches(msg, rng)
    assert Rule.from_dict({"terminal": "TERM0001", "drop": True}).matches(msg, rng)
    half = Rule.from_dict({"probability": 0.5, "drop": True})
    hits = sum(half.matches(msg, rng) for _ in range(1000))
    assert 400 < hits < 600


def test_close_rule_closes_the_connection(tmp_path, config, b):
    rules = tmp_path / "r.toml"
    rules.write_text('[[rule]]\npan = "6222020000000002"\nclose = true\n')
    config = attrs.evolve(config, rules=rules)

    async def body(sim, port):
        c = await connect(port)
        assert await c.request(b.purchase("6222020000000002", 1)) is None
        assert c.closed
        async with await connect(port) as c2:
            assert (await c2.request(b.purchase(RICH, 1)))[39] == "00"

    run_sim(config, body)


HOOK = """
from codec.message import Message

def on_request(request, ctx):
    pan = request.get(2)
    if pan == "6222020000000001" and request.get(4) == "000000000404":
        return "05"
    if request.get(4) == "000000000505":
        return request.response("96", echo=(2, 3, 4, 11, 37, 41))
    if request.get(4) == "000000000606":
        return ctx.DROP
    if request.get(4) == "000000000707":
        ctx.state["seen"] = ctx.state.get("seen", 0) + 1
        return "0" + str(ctx.state["seen"])
    return None
"""

ASYNC_HOOK = """
async def on_request(request, ctx):
    if request.mti != "0200":
        return None
    response = await ctx.default(request)
    card = await ctx.card(request.get(2))
    ctx.log.info("hook saw", balance=card.balance)
    return response.with_fields({38: "HOOKED"}) if response.get(39) == "00" else response
"""


def test_python_hook(tmp_path, config, b):
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    config = attrs.evolve(config, script=script)

    async def body(sim, port):
        async with await connect(port) as c:
            assert (await c.request(b.purchase(RICH, 404)))[39] == "05"
            rsp = await c.request(b.purchase(RICH, 505))
            assert rsp[39] == "96" and rsp.mti == "0210"
            with pytest.raises(trio.TooSlowError):
                await c.request(b.purchase(RICH, 606), timeout=0.4)
            assert (await c.request(b.purchase(RICH, 707)))[39] == "01"
            assert (await c.request(b.purchase(RICH, 707)))[39] == "02"
            assert (await c.request(b.purchase(RICH, 808, pin=PIN)))[39] == "00"
        assert (await sim.card(RICH)).balance == 10_000_000 - 808

    run_sim(config, body)


def test_async_hook_wraps_default_processing(tmp_path, config, b):
    script = tmp_path / "hook.py"
    script.write_text(ASYNC_HOOK)
    config = attrs.evolve(config, script=script)

    async def body(sim, port):
        async with await connect(port) as c:
            rsp = await c.request(b.purchase(RICH, 1_000))
            assert (rsp[39], rsp[38]) == ("00", "HOOKED")
            assert (await c.request(b.purchase(LIMITED, 60_000)))[39] == "61"
        assert (await sim.card(RICH)).balance == 10_000_000 - 1_000

    run_sim(config, body)


def test_shipped_example_script_loads_and_runs(config, b):
    config = attrs.evolve(config, script=SPECS_DIR / "script_example.py")

    async def body(sim, port):
        async with await connect(port) as c:
            t3 = Builder("TERM0003")
            codes = [(await c.request(t3.purchase(RICH, 100)))[39] for _ in range(3)]
            assert codes == ["00", "00", "05"]
            bal = await c.request(b.financial("0200", "310000", FOREIGN, pin=PIN))
            assert bal[54] == "0001840C000000000001"

    run_sim(config, body)


async def http(port: int, method: str, path: str, body: dict | None = None):
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
    await stream.send_all(head.encode() + data)
    raw = b""
    while chunk := await stream.receive_some(65536):
        raw += chunk
    await stream.aclose()
    status = int(raw.split(b" ", 2)[1])
    return status, json.loads(raw.partition(b"\r\n\r\n")[2])


def test_latency_and_drop_injection_changed_at_run_time(config, b):
    config = attrs.evolve(
        config, control="127.0.0.1:0", failure=FailureSettings(latency=Latency.parse("fixed:300"))
    )

    async def body(sim, port):
        cport = sim.control_port
        assert (await http(cport, "GET", "/settings"))[1]["latency"] == "fixed:300"
        async with await connect(port) as c:
            t0 = time.monotonic()
            assert (await c.request(b.network("301")))[39] == "00"
            assert time.monotonic() - t0 >= 0.25
            status, new = await http(cport, "PUT", "/settings", {"latency": "0", "drop_rate": 1})
            assert status == 200 and new == {
                "latency": "fixed:0",
                "drop_rate": 1.0,
                "disconnect_rate": 0.0,
            }
            for _ in range(3):
                with pytest.raises(trio.TooSlowError):
                    await c.request(b.purchase(RICH, 1), timeout=0.3)
            await http(cport, "POST", "/settings", {"drop_rate": 0})
            t0 = time.monotonic()
            assert (await c.request(b.purchase(RICH, 1)))[39] == "00"
            assert time.monotonic() - t0 < 0.25
            await http(cport, "PUT", "/settings", {"latency": "uniform:50-150"})
            t0 = time.monotonic()
            for _ in range(5):
                await c.request(b.network("301"))
            assert 0.2 <= time.monotonic() - t0 < 2.0
            assert (await http(cport, "PUT", "/settings", {"drop_rate": "x"}))[0] == 400
            assert (await http(cport, "PUT", "/settings", {"nope": 1}))[0] == 400
            await http(cport, "PUT", "/settings", {"disconnect_rate": 1, "latency": 0})
            assert await c.request(b.purchase(RICH, 1)) is None
        status, card = await http(cport, "GET", f"/cards/{RICH}")
        assert status == 200 and card["pan"] == "622202******0001"
        assert card["balance"] == 10_000_000 - 1
        stats = (await http(cport, "GET", "/stats"))[1]
        assert stats["dropped"] == 3 and stats["closed"] == 1
        assert (await http(cport, "POST", "/reset"))[0] == 200
        assert (await sim.card(RICH)).balance == 10_000_000
        assert (await http(cport, "GET", "/nowhere"))[0] == 404

    run_sim(config, body)


def test_partial_drop_rate_drops_some(config, b):
    config = attrs.evolve(config, failure=FailureSettings(drop_rate=0.5))

    async def body(sim, port):
        async with await connect(port) as c:
            msgs = [b.network("301") for _ in range(40)]
            for m in msgs:
                await c.send(m)
            await trio.sleep(0.5)
            answered = 0
            for m in msgs:
                with trio.move_on_after(0.01):
                    if await c.receive(("080", m[11], "")):
                        answered += 1
            assert 5 < answered < 35

    run_sim(config, body)


def test_a_failing_hook_gets_96_with_a_log_line_and_the_server_keeps_serving(tmp_path, config, b):
    script = tmp_path / "bad.py"
    script.write_text(
        "def on_request(request, ctx):\n"
        "    if request.get(4) == '000000000013':\n"
        "        raise RuntimeError('boom')\n"
        "    if request.get(4) == '000000000014':\n"
        "        return 42\n"
        "    if request.get(4) == '000000000016':\n"
        "        return '5 '\n"
        "    if request.get(4) == '000000000017':\n"
        "        return request.response('00', extra={99: 'x'})\n"
    )
    record = tmp_path / "rec.jsonl"
    config = attrs.evolve(config, script=script, record=record)

    async def body(sim, port):
        async with await connect(port) as c:
            for amount in (13, 14, 16, 17):
                rsp = await c.request(b.purchase(RICH, amount), timeout=2)
                assert (rsp.mti, rsp[39]) == ("0210", "96")
            assert (await c.request(b.purchase(RICH, 15)))[39] == "00"
        assert sim.stats["hook_errors"] == 4
        assert (await sim.card(RICH)).balance == 10_000_000 - 15  # the 96s moved nothing

    run_sim(config, body)
    # the same text goes to the log line; the record file shows it whatever logging is set up
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    errors = [line["error"] for line in lines if line.get("error")]
    assert len(errors) == 4
    assert errors[0] == "on_request raised RuntimeError: boom"
    assert errors[1].startswith("on_request returned 42, not a 2-character response code")
    assert errors[2].startswith("on_request returned '5 '")
    assert errors[3].startswith("response cannot be encoded")


def test_rules_reload_through_the_control_endpoint(tmp_path, config, b):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "coded"\namount = 111\nresponse = "05"\n')
    config = attrs.evolve(config, rules=rules, control="127.0.0.1:0")

    async def body(sim, port):
        async with await connect(port) as c:
            assert (await c.request(b.purchase(RICH, 111)))[39] == "05"
            rules.write_text('[[rule]]\nname = "coded"\namount = 111\nresponse = "51"\n')
            assert await http(sim.control_port, "POST", "/reload") == (200, {"rules": 1})
            assert (await c.request(b.purchase(RICH, 111)))[39] == "51"
            rules.write_text('[[rule]]\nname = "typo"\nmti = 200\nresponse = "05"\n')
            status, answer = await http(sim.control_port, "POST", "/reload")
            assert status == 400 and answer["error"].startswith(f"{rules}:1: rule 'typo': mti")
            assert (await c.request(b.purchase(RICH, 111)))[39] == "51"  # old rules in force

    run_sim(config, body)
