"""Codec throughput: fast path, the pyiso8583 layer, plain pyiso8583 - same spec, same run.

Run: ``.venv/bin/python benchmarks/codec_bench.py [--seconds 1.0]``

"fast" is the public ``terminal``/``issuer`` ``decode``/``encode`` (the precompiled fast path of
``codec.fastpath``, producing/consuming a ``Message``); "layer" is the same codec's pyiso8583
reference path (``Codec.reference_decode``/``reference_encode``: what the public functions did
before the fast path, and still do for anything the fast path defers); "plain" calls
``iso8583.decode``/``encode`` with the dialect's spec dict and the wire-level values pyiso8583
works with (hex strings for b fields, D for the track separator), no ``Message`` at all.
"speedup" is layer cost over fast cost; "vs plain" is fast cost over plain cost.
"""

from __future__ import annotations

import argparse
import time

import iso8583

from codec import issuer, terminal
from codec.message import Message

TERMINAL_0200 = Message(
    "0200",
    {
        2: "6212345678901234567",
        3: "000000",
        4: "000000012345",
        11: "000139",
        14: "2812",
        22: "021",
        25: "00",
        26: "12",
        35: "6212345678901234567=28121011234567",
        41: "12345678",
        42: "123456789012345",
        49: "156",
        52: bytes.fromhex("8D3F2A1B0C9E7766"),
        53: "2600000000000000",
        60: "22000001000501",
        64: "1A2B3C4D",
    },
)

ISSUER_0200 = Message(
    "0200",
    {
        2: "6212345678901234567",
        3: "000000",
        4: "000000012345",
        7: "1125093015",
        11: "000042",
        12: "093015",
        13: "1125",
        14: "2812",
        18: "5411",
        22: "021",
        25: "00",
        32: "48615840",
        35: "6212345678901234567=28121011234567",
        37: "000000004808",
        41: "12345678",
        42: "123456789012345",
        43: "POSHOST TEST MERCHANT SHANGHAI".ljust(40),
        49: "156",
        52: bytes.fromhex("0123456789ABCDEF"),
        53: "2600000000000000",
    },
)


def _rate(fn, arg, seconds: float) -> float:
    """Calls per second, best of 5 rounds (the least disturbed by other processes)."""
    n = 200
    while True:  # calibrate
        t0 = time.perf_counter()
        for _ in range(n):
            fn(arg)
        dt = time.perf_counter() - t0
        if dt > seconds / 10:
            break
        n *= 2
    per_round = max(int(n * (seconds / 5) / dt), 1)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(per_round):
            fn(arg)
        best = min(best, (time.perf_counter() - t0) / per_round)
    return 1.0 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = ap.parse_args()

    rows = []
    for label, mod, msg in (
        ("terminal 0200 purchase", terminal, TERMINAL_0200),
        ("issuer 0200", issuer, ISSUER_0200),
    ):
        spec = mod.SPEC
        wire = mod.encode(msg)
        plain_doc, _ = iso8583.decode(wire, spec)  # pyiso8583's own view of the same message
        plain_doc = {k: v for k, v in plain_doc.items() if k not in ("p", "1")}
        assert iso8583.encode(dict(plain_doc), spec)[0] == wire
        assert mod.decode(wire) == msg
        codec = mod.CODEC
        assert codec.fast.decode(wire) == msg and codec.fast.encode(msg) == wire  # no deferral
        assert codec.reference_encode(msg) == wire and codec.reference_decode(wire) == msg

        def plain_encode(doc, spec=spec):
            return iso8583.encode(dict(doc), spec)

        def plain_decode(data, spec=spec):
            return iso8583.decode(data, spec)

        for op, fast, layer, plain, arg_ours, arg_plain in (
            ("decode", mod.decode, codec.reference_decode, plain_decode, wire, wire),
            ("encode", mod.encode, codec.reference_encode, plain_encode, msg, plain_doc),
        ):
            r_plain = _rate(plain, arg_plain, args.seconds)
            r_layer = _rate(layer, arg_ours, args.seconds)
            r_fast = _rate(fast, arg_ours, args.seconds)
            rows.append((label, op, r_fast, r_layer, r_plain))

    head = ("message", "op", "fast msg/s", "layer msg/s", "plain msg/s", "speedup", "vs plain")
    print(
        f"{head[0]:<24} {head[1]:<7} {head[2]:>11} {head[3]:>12} {head[4]:>12}"
        f" {head[5]:>8} {head[6]:>9}"
    )
    print("-" * 89)
    for label, op, fast, layer, plain in rows:
        print(
            f"{label:<24} {op:<7} {fast:>11,.0f} {layer:>12,.0f} {plain:>12,.0f}"
            f" {fast / layer:>7.2f}x {plain / fast:>8.2f}x"
        )
    print("(speedup = layer cost / fast cost; vs plain = fast cost / plain pyiso8583 cost)")


if __name__ == "__main__":
    main()
