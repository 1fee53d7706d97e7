"""Example hook for `poshost issuer-sim --script specs/issuer_sim/script_example.py`.

Things rules cannot say: state across requests, and changing the default answer.
"""

from __future__ import annotations


async def on_request(request, ctx):
    # 1. Every third purchase from terminal TERM0003 is declined 05 (counts across requests).
    if request.mti == "0200" and request.get(41, "").strip() == "TERM0003":
        n = ctx.state["term3"] = ctx.state.get("term3", 0) + 1
        if n % 3 == 0:
            return "05"

    # 2. Partial approval style: balance inquiries report a made-up ledger balance for the
    #    demo foreign card, after the default processing has run (and checked its PIN).
    if request.mti == "0200" and request.get(3, "").startswith("31"):
        response = await ctx.default(request)
        if request.get(2) == "4761340000000019" and response.get(39) == "00":
            return response.with_fields({54: "0001840C000000000001"})
        return response

    # 3. Simulate a frozen account without editing the card file.
    if request.get(2) == "6222020000000007" and request.mti == "0100":
        return ctx.DROP

    return None  # default processing
