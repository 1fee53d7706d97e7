"""The issuer simulator: an ISO 8583 issuer (issuer dialect) with a card database, a SQLite
ledger with exactly-once effects, scriptable rules, a Python hook, failure injection and a
recorder. See the README section "Issuer simulator".

Python API for other streams' tests::

    from tools.issuer_sim import SimConfig, Simulator, run_simulator

    async with trio.open_nursery() as nursery:
        sim = Simulator(SimConfig.demo(state=tmp_path / "sim.sqlite", listen="127.0.0.1:0"))
        port = await nursery.start(sim.serve)
        ...
        (await sim.card("6222020000000001")).balance   # minor units; also .available, .held
        await sim.holds("6222020000000001")
"""

from __future__ import annotations

__all__ = ["SimConfig", "Simulator", "run_simulator"]


def __getattr__(name: str):  # lazy: keep `import tools.issuer_sim` cheap
    if name == "SimConfig":
        from tools.issuer_sim.config import SimConfig

        return SimConfig
    if name in ("Simulator", "run_simulator"):
        from tools.issuer_sim import server

        return getattr(server, name)
    raise AttributeError(name)
