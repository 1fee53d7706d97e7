"""The hostile peers of the soak: fuzzed frames, idle connection floods and back-office token
guessing. Each attack counts what it sent and what the host did about it; a refusal (a close,
a 401, a 429) is the defence working, so nothing here treats it as an error."""

from __future__ import annotations

import random
import secrets
from collections import Counter

import trio

from codec.framing import prefix_length
from tools.soak.stack import MID, SOAK_PAN, demo_terminal

FUZZ_KINDS = (
    "random_bytes",
    "random_body",
    "truncated",
    "oversize_length",
    "garbage_fields",
    "response_mti",
)
NETWORK_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


def _template() -> tuple[bytes, bytes]:
    """A well-formed purchase frame (MAC'd under a made-up MAK: the host never signed this
    device on) and the same purchase as an 0210 response, as a confused terminal would send."""
    device = demo_terminal("12345678")
    device.mak = bytes.fromhex("0123456789ABCDEF")
    request = device.financial_request("purchase", pan=SOAK_PAN, amount=100)
    frame = device.envelope(device.encode(request)).to_frame()
    response = request.with_mti("0210").with_fields({39: "00", 37: "000000000001"})
    return frame, device.envelope(device.encode(response)).to_frame()


VALID, RESPONSE_MTI = _template()


def fuzz_frame(kind: str, rng: random.Random) -> bytes:
    """One hostile frame of ``kind`` (a FUZZ_KINDS entry)."""
    if kind == "random_bytes":
        return rng.randbytes(rng.randint(1, 300))
    if kind == "random_body":
        return prefix_length(rng.randbytes(rng.randint(0, 300)))
    if kind == "truncated":
        return VALID[: rng.randint(1, len(VALID) - 1)]
    if kind == "oversize_length":
        return rng.randint(4097, 65535).to_bytes(2, "big") + b"\x60" * 40
    if kind == "garbage_fields":
        data = bytearray(VALID)
        for _ in range(rng.randint(1, 8)):  # past the length, TPDU, header and MTI
            data[rng.randint(15, len(data) - 1)] = rng.randint(0, 255)
        return bytes(data)
    if kind == "response_mti":
        return RESPONSE_MTI
    raise ValueError(kind)


async def fuzz_once(port: int, kind: str, rng: random.Random, tally: Counter) -> None:
    """One connection, one hostile frame; count how the host ended it."""
    tally[f"sent {kind}"] += 1
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        tally["refused"] += 1
        return
    try:
        await stream.send_all(fuzz_frame(kind, rng))
        with trio.move_on_after(2.0) as waited:
            data = await stream.receive_some(4096)
            tally["answered" if data else "closed by host"] += 1
        if waited.cancelled_caught:
            tally["no answer within 2 s (we closed)"] += 1
    except NETWORK_ERRORS:
        tally["reset by host"] += 1
    finally:
        await stream.aclose()


async def fuzz(port: int, interval: float, tally: Counter, seed: int = 13) -> None:
    """Hostile frames, each from a fresh connection, every ``interval`` seconds, forever."""
    rng = random.Random(seed)
    async with trio.open_nursery() as nursery:
        while True:
            nursery.start_soon(fuzz_once, port, rng.choice(FUZZ_KINDS), rng, tally)
            await trio.sleep(interval)


async def _idle(port: int, source: str, hold: float, tally: Counter) -> None:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    except OSError:
        tally["refused"] += 1
        return
    tally["opened"] += 1
    try:
        with trio.move_on_after(hold):
            data = await stream.receive_some(1024)
            tally["answered" if data else "closed by host"] += 1
    except NETWORK_ERRORS:
        tally["reset by host"] += 1
    finally:
        await stream.aclose()


async def idle_flood(
    port: int, every: float, size: int, hold: float, tally: Counter, source: str = "127.0.0.2"
) -> None:
    """Every ``every`` seconds, ``size`` connections from ``source`` that never speak, each
    held ``hold`` seconds unless the host closes it first."""
    while True:
        tally["floods"] += 1
        async with trio.open_nursery() as nursery:
            for _ in range(size):
                nursery.start_soon(_idle, port, source, hold, tally)
        await trio.sleep(max(0.0, every - hold))


async def http_get(port: int, path: str, token: str) -> int:
    """Status code of one GET, 0 when the connection is refused or closed without an answer."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(request)
        head = b""
        with trio.move_on_after(5):
            while b"\r\n" not in head:
                data = await stream.receive_some(4096)
                if not data:
                    break
                head += data
    finally:
        await stream.aclose()
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def wrong_token(real: str, rng: random.Random) -> str:
    """A guess: the real token's id with a wrong secret, or another id altogether."""
    token_id = real.split("_")[1] if rng.random() < 0.5 else str(rng.randint(1, 1000))
    return f"pht_{token_id}_{secrets.token_hex(16)}"


async def token_brute_force(
    port: int, real_token: str, interval: float, tally: Counter, seed: int = 17
) -> None:
    """Wrong bearer tokens every ``interval`` seconds; every 20th request carries the real
    token (the first one included), to see that the API still serves its merchant."""
    rng = random.Random(seed)
    path = f"/v1/merchants/{MID}/transactions?limit=1"
    n = 0
    while True:
        n += 1
        real = n % 20 == 1  # the first one too: the API serves before any guessing
        token = real_token if real else wrong_token(real_token, rng)
        label = "real token" if real else "wrong token"
        tally[f"sent {label}"] += 1
        try:
            status = await http_get(port, path, token)
        except NETWORK_ERRORS:
            status = 0
        tally[f"{label} -> {status or 'closed/refused'}"] += 1
        await trio.sleep(interval)
