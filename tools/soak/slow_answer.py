"""Issuer simulator hook for the soak (`poshost issuer-sim --script`): a financial request's
effect is committed first and its answer leaves 5-40 ms later, like the return leg of a real
issuer link. A SIGKILL in that window leaves a debit the host never hears about, which is the
case the journal-vs-issuer comparison exists to catch."""

from __future__ import annotations

import random

import trio


async def on_request(request, ctx):
    if request.mti not in ("0100", "0200"):
        return None  # reversals, advices and network management: default, no extra delay
    response = await ctx.default(request)
    await trio.sleep(random.uniform(0.005, 0.040))
    return response
