"""The soak: live purchases through the real host while it is attacked and its processes are
killed, then the journal is checked against the issuer's ledger.

Phases: a quiet phase (purchases only: the latency baseline), the attack phase (purchases go
on, every attack runs in its own task on its own schedule), then the drain: attacks and
purchases stop, both programs are up, and the soak waits (bounded) until the journal holds no
pending purchase and the host's store-and-forward queue is empty. Then both programs stop and
the two ledgers are compared.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import attrs
import trio

from tools.soak import attacks, compare
from tools.soak import stack as st
from tools.terminal.client import TerminalClient

ALL_ATTACKS = ("fuzz", "flood", "host-kill", "issuer-kill", "backoffice")
NO_ANSWER = (OSError, ConnectionError, trio.BrokenResourceError, trio.ClosedResourceError)


@attrs.frozen
class SoakConfig:
    seconds: float = 180.0
    quiet: float = 15.0  # seconds of purchases only, at the start
    attacks: tuple[str, ...] = ALL_ATTACKS
    terminals: tuple[str, ...] = st.TERMINALS
    think: float = 0.02  # seconds a terminal waits between purchases
    fuzz_interval: float = 0.05
    flood_every: float = 30.0
    flood_size: int = 300
    flood_hold: float = 10.0
    host_kill_every: float = 45.0
    issuer_kill_every: float = 35.0
    issuer_down: float = 1.0  # seconds the simulator stays dead
    backoffice_interval: float = 0.05
    issuer_timeout: float = 3.0  # the host's issuer.timeout
    # before processing; tools/soak/slow_answer.py adds 5-40 ms between the debit and the answer
    sim_latency: str = "uniform:1-5"
    drain_timeout: float = 60.0
    out: Path | None = None  # where the programs' logs and data go (default: a temp dir)


@attrs.define
class Tally:
    """What happened, counted as it happens (one soak, one task group: no locking needed)."""

    purchases: Counter = attrs.Factory(Counter)  # response code, or "no answer"
    latency_quiet: list[float] = attrs.Factory(list)
    latency_attack: list[float] = attrs.Factory(list)
    fuzz: Counter = attrs.Factory(Counter)
    flood: Counter = attrs.Factory(Counter)
    backoffice: Counter = attrs.Factory(Counter)
    host_kills: int = 0
    host_own_deaths: int = 0
    issuer_kills: int = 0
    issuer_own_deaths: int = 0
    reconnects: int = 0
    terminal_errors: Counter = attrs.Factory(Counter)  # answers the terminal could not accept
    rss_kb: dict[str, int] = attrs.Factory(dict)


@attrs.frozen
class SoakResult:
    tally: Tally
    journal: Counter  # purchase rows by final status
    pending_left: int  # purchase rows still pending after the drain
    saf_left: int  # store-and-forward items not yet acknowledged after the drain
    drained_in: float
    mismatches: list[compare.Mismatch]
    security_events: Counter
    workdir: Path

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.tally.host_own_deaths == 0


class Soak:
    def __init__(self, config: SoakConfig, workdir: Path):
        self.config = config
        self.workdir = workdir
        ports = st.Ports(st.free_port(), st.free_port(), st.free_port())
        self.ports = ports
        self.sim = st.sim_program(workdir, ports, config.sim_latency)
        self.host = st.host_program(workdir, ports, config.issuer_timeout)
        self.tally = Tally()
        self.under_attack = False
        self.killing: set[str] = set()  # the programs the soak is killing or restarting
        self.in_flight: dict[str, float] = {}  # terminal -> when its open purchase was sent

    # -- purchases --------------------------------------------------------------------------

    async def shopper(self, tid: str) -> None:
        """One terminal buying for the whole run; on a lost connection it connects and signs
        on again (a purchase without an answer is an unknown outcome for the terminal)."""
        device = st.demo_terminal(tid)
        rng = random.Random(tid)
        timeout = self.config.issuer_timeout + 3
        while True:
            try:
                client = await TerminalClient.connect("127.0.0.1", self.ports.host, device, timeout)
            except OSError:
                await trio.sleep(0.2)
                continue
            try:
                await client.sign_on()
                while True:
                    await self.purchase(client, device, rng)
                    await trio.sleep(self.config.think)
            except (*NO_ANSWER, trio.TooSlowError):
                self.tally.reconnects += 1
                await trio.sleep(0.2)
            except Exception as exc:  # a response the terminal refuses (MAC, echo): count it
                self.tally.terminal_errors[type(exc).__name__] += 1
                self.tally.reconnects += 1
                await trio.sleep(0.2)
            finally:
                await client.aclose()

    async def purchase(self, client: TerminalClient, device, rng: random.Random) -> None:
        if rng.random() < 0.1:  # the 10.00 card: above its balance the issuer declines (51)
            pan, amount = st.LOW_PAN, rng.randint(1001, 5000)
        else:
            pan, amount = st.SOAK_PAN, rng.randint(1, 99_999)
        request = device.financial_request("purchase", pan=pan, amount=amount, pin=st.PIN)
        started = time.perf_counter()
        self.in_flight[device.tid] = started
        try:
            response, _ = await client.exchange(request)
        except (*NO_ANSWER, trio.TooSlowError):
            self.tally.purchases["no answer"] += 1
            raise
        finally:
            self.in_flight.pop(device.tid, None)
        elapsed = (time.perf_counter() - started) * 1000
        (self.tally.latency_attack if self.under_attack else self.tally.latency_quiet).append(
            elapsed
        )
        self.tally.purchases[str(response[39])] += 1

    # -- process chaos ----------------------------------------------------------------------

    async def kill_host_every(self, every: float) -> None:
        while True:
            await trio.sleep(every)
            await self.kill_and_restart(self.host, 0.5, "host_kills")

    async def kill_issuer_every(self, every: float) -> None:
        while True:
            await trio.sleep(every)
            await self.purchases_in_flight()
            await self.kill_and_restart(self.sim, self.config.issuer_down, "issuer_kills")

    async def purchases_in_flight(self, older_than: float = 0.03, within: float = 2.0) -> None:
        """Wait (at most ``within`` s) until two purchases have been out for ``older_than`` s:
        past the host, at the issuer, maybe debited and not yet answered."""
        with trio.move_on_after(within):
            while True:
                now = time.perf_counter()
                if sum(now - t > older_than for t in self.in_flight.values()) >= 2:
                    return
                await trio.sleep(0.001)

    async def kill_and_restart(self, program: st.Program, down: float, counter: str) -> None:
        """SIGKILL, count it at once (a restart still under way when the run ends must not hide
        the kill), wait ``down`` seconds, start again."""
        self.killing.add(program.name)
        try:
            await trio.to_thread.run_sync(program.kill)
            setattr(self.tally, counter, getattr(self.tally, counter) + 1)
            await trio.sleep(down)
            await trio.to_thread.run_sync(program.start)
        finally:
            self.killing.discard(program.name)

    async def watch(self) -> None:
        """A program that exits without being killed by the soak died on its own: count it
        and start it again (the run goes on; the exit code reports it)."""
        while True:
            await trio.sleep(0.5)
            for program in (self.host, self.sim):
                if program.name in self.killing or program.alive():
                    continue
                if program is self.host:
                    self.tally.host_own_deaths += 1
                else:
                    self.tally.issuer_own_deaths += 1
                await trio.to_thread.run_sync(program.start)

    # -- the run ----------------------------------------------------------------------------

    async def attack(self, nursery: trio.Nursery, token: str) -> None:
        c, t, p = self.config, self.tally, self.ports
        if "fuzz" in c.attacks:
            nursery.start_soon(attacks.fuzz, p.host, c.fuzz_interval, t.fuzz)
        if "flood" in c.attacks:
            nursery.start_soon(
                attacks.idle_flood, p.host, c.flood_every, c.flood_size, c.flood_hold, t.flood
            )
        if "host-kill" in c.attacks:
            nursery.start_soon(self.kill_host_every, c.host_kill_every)
        if "issuer-kill" in c.attacks:
            nursery.start_soon(self.kill_issuer_every, c.issuer_kill_every)
        if "backoffice" in c.attacks:
            nursery.start_soon(
                attacks.token_brute_force, p.backoffice, token, c.backoffice_interval, t.backoffice
            )

    async def drive(self) -> None:
        """Quiet phase, attack phase; returns with both programs up and everything stopped."""
        token = await trio.to_thread.run_sync(st.issue_token, self.workdir)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watch)
            for tid in self.config.terminals:
                nursery.start_soon(self.shopper, tid)
            await trio.sleep(self.config.quiet)
            self.tally.rss_kb["before"] = st.rss_kb(self.host.pid)
            self.under_attack = True
            async with trio.open_nursery() as attackers:
                await self.attack(attackers, token)
                await trio.sleep(max(0.0, self.config.seconds - self.config.quiet))
                attackers.cancel_scope.cancel()
            self.tally.purchases["cut off at the end"] += len(self.in_flight)
            nursery.cancel_scope.cancel()
        if not self.sim.alive():
            await trio.to_thread.run_sync(self.sim.start)
        if not self.host.alive():
            await trio.to_thread.run_sync(self.host.start)
        self.tally.rss_kb["after"] = st.rss_kb(self.host.pid)

    def drain(self) -> tuple[int, int, float]:
        """Wait (bounded) until no purchase is pending and the SAF queue is empty."""
        from host.harness import SyncStore

        started = time.monotonic()
        pending = saf = -1
        while time.monotonic() - started < self.config.drain_timeout:
            with SyncStore.open(st.journal_url(self.workdir)) as store:
                pending = len(store.list_transactions(status="pending", limit=100_000))
                saf = len(store.saf_due(now=2**62, limit=100_000))
            if pending == 0 and saf == 0:
                break
            time.sleep(0.5)
        return pending, saf, time.monotonic() - started

    def result(self, pending: int, saf: int, drained_in: float) -> SoakResult:
        from host.harness import SyncStore

        journal = compare.journal_purchases(st.journal_url(self.workdir))
        issuer = compare.issuer_purchases(self.workdir / "sim.sqlite")
        with SyncStore.open(st.journal_url(self.workdir)) as store:
            events = store.list_security_events(limit=1_000_000)
        security: Counter = Counter()
        for e in events:
            security[e.kind] += e.count
        return SoakResult(
            tally=self.tally,
            journal=Counter(r.status for r in journal),
            pending_left=pending,
            saf_left=saf,
            drained_in=drained_in,
            mismatches=compare.compare(journal, issuer),
            security_events=security,
            workdir=self.workdir,
        )

    def run(self) -> SoakResult:
        try:
            if not self.sim.start() or not self.host.start():
                raise RuntimeError(f"the programs did not start; logs in {self.workdir}")
            trio.run(self.drive)
            pending, saf, drained_in = self.drain()
        finally:
            self.host.stop()
            self.sim.stop()
        return self.result(pending, saf, drained_in)


def run_soak(config: SoakConfig) -> SoakResult:
    workdir = config.out or Path(tempfile.mkdtemp(prefix="poshost-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return Soak(config, workdir).run()
