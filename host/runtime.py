"""Assembles and runs the host: store, HSM, links, SAF worker, terminal server, shutdown."""

from __future__ import annotations

import functools
import signal
import socket

import attrs
import structlog
import trio

from host.app import Host, build_links, load_fingerprint_key, open_hsm, zone_pin_keys
from host.backoffice.process import BackOfficeProcess, child_config
from host.clock import BusinessCalendar, Clock, SystemClock
from host.config import Settings, parse_address
from host.demo import seed_demo_estate
from host.edge.dispatch import Dispatcher
from host.edge.server import Limits, TerminalServer
from host.flows import FLOWS
from host.hsm import ClearTestKeys, HsmUnavailable
from host.issuer.router import Router
from host.issuer.saf import recover_pending, saf_worker
from host.merchant.webhooks import webhook_worker
from host.store import Store, open_store
from keys.errors import KeysError
from keys.tokens import KeyToken

log = structlog.get_logger("poshost")


@attrs.frozen
class WorkerRole:
    """One of the processes of ``serve --workers N``: its number (0 is the primary: it seeds
    the demo estate, recovers pending rows after a crash and runs the host's background work:
    store-and-forward, webhook delivery, the QR order watch and notification listener), how many
    there are, and its socket to the journal writer the parent started."""

    index: int
    count: int
    journal: socket.socket = attrs.field(repr=False)

    @property
    def primary(self) -> bool:
        return self.index == 0


@attrs.frozen
class RunningHost:
    host: Host
    server: TerminalServer
    port: int
    shutdown: trio.Event
    backoffice: BackOfficeProcess | None = None  # the API's child process, when configured


async def run_host(
    settings: Settings,
    *,
    clock: Clock | None = None,
    demo: bool = False,
    handle_signals: bool = False,
    worker: WorkerRole | None = None,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until `shutdown` (in the RunningHost handed to task_status) is set, SIGINT/SIGTERM
    arrive (when handle_signals), or the caller cancels. A graceful stop refuses new
    connections, lets requests in flight finish within server.shutdown_grace, then closes the
    journal after its last write is durable. As one of several ``worker`` processes it shares
    the listening port and the journal writer with the others (host/cli/workers.py)."""
    primary = worker is None or worker.primary
    hsm, test_keys = open_hsm(settings)  # network: no LMK in this process
    server_cfg = settings.server
    limits = Limits(
        max_connections=server_cfg.max_connections,
        max_per_peer=server_cfg.max_per_peer,
        max_frame=server_cfg.max_frame,
        first_frame_timeout=server_cfg.first_frame_timeout,
        idle_timeout=server_cfg.idle_timeout,
        read_timeout=server_cfg.read_timeout,
        shutdown_grace=server_cfg.shutdown_grace,
    )
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    options = journal_options(settings)
    if worker is not None:
        options["journal_socket"] = worker.journal
    async with (
        open_store(settings.journal_url, **options) as store,
        trio.open_nursery() as hsm_nursery,
    ):
        await hsm_nursery.start(hsm.run)  # a network HSM wraps the test keys below
        zpks = await _wrap_test_keys(settings, store, test_keys, demo and primary)
        del test_keys  # the running host hands no clear key to any HSM
        host = Host(
            settings=settings,
            store=store,
            hsm=hsm,
            links=build_links(settings),
            zpks=zpks,
            router=Router.from_table((r.prefix, r.link) for r in settings.routes),
            calendar=BusinessCalendar.from_settings(
                settings.acquirer.timezone, settings.acquirer.cutover
            ),
            flows=FLOWS,
            fingerprint_key=load_fingerprint_key(settings),
            clock=clock or SystemClock(),
        )
        if primary:
            recovered = await recover_pending(host)
            if recovered:
                log.warning("recovered_after_crash", transactions=recovered)
        shutdown = trio.Event()
        server = TerminalServer(Dispatcher(host), limits, security=host.security)
        backoffice = None
        if settings.backoffice.listen and worker is None:  # the workers' parent runs it
            backoffice = await BackOfficeProcess.start(child_config(settings))
        try:
            await _serve(host, server, limits, shutdown, backoffice, handle_signals, worker,
                         task_status)  # fmt: skip
        finally:
            if backoffice is not None:
                with trio.CancelScope(shield=True):
                    await backoffice.aclose()
            hsm_nursery.cancel_scope.cancel()
    log.info("stopped")


def journal_options(settings: Settings) -> dict:
    """How the host opens its journal: the writer, its commit delay, and where durability comes
    from (the write log on SQLite with the writer process; the database otherwise, since a
    PostgreSQL journal is shared by several hosts and the thread writer has no log)."""
    writer_process = settings.journal.writer == "process"
    durability = settings.journal.durability
    sqlite = settings.journal_url.startswith("sqlite:")
    if durability == "log" and not (writer_process and sqlite):
        durability = "database"
    return {
        "commit_delay": settings.journal.commit_delay_ms / 1000,
        "writer_process": writer_process,
        "durability": durability,
    }


class StartupError(Exception):
    """The host cannot start as configured (the message says why and what to do)."""


async def _wrap_test_keys(
    settings: Settings, store: Store, test_keys: ClearTestKeys, demo: bool
) -> dict[str, KeyToken]:
    """The links' ZPKs, and the demo estate when asked for: the configured TEST keys wrapped at
    start. A network HSM that cannot wrap them (down, or an hsm-sim without --test-keys) stops
    the start with one error line instead of a host whose links have no ZPK."""
    try:
        zpks = await zone_pin_keys(settings, test_keys)
        if demo:
            await seed_demo_estate(store, test_keys)
    except (HsmUnavailable, KeysError) as exc:
        log.error("test_keys_not_wrapped", error=str(exc), hsm_kind=settings.hsm.kind)
        why = "the configured test keys (--demo, links.*.zpk_clear_test_key) were not wrapped"
        raise StartupError(f"{why}: {exc}") from exc
    return zpks


async def _serve(
    host: Host,
    server: TerminalServer,
    limits: Limits,
    shutdown: trio.Event,
    backoffice: BackOfficeProcess | None,
    handle_signals: bool,
    worker: WorkerRole | None,
    task_status,
) -> None:
    """The host's tasks until shutdown: links, store-and-forward, webhook delivery, security
    monitor, server. With workers, the background work runs in one of them (two would send
    the same reversal or webhook at once, or listen on the same port)."""
    primary = worker is None or worker.primary
    async with trio.open_nursery() as nursery:
        for link in host.links.values():
            await nursery.start(link.run)
        if primary:
            await nursery.start(saf_worker, host)
        if host.settings.webhooks.enabled and primary:
            await nursery.start(webhook_worker, host)
        if host.settings.qr.link and primary:
            from host.issuer.wallet_orders import order_watch

            await nursery.start(order_watch, host)
        if host.settings.qr.notify_listen and primary:
            from host.issuer.wallet_notify import serve_notifications

            await nursery.start(serve_notifications, host)
        await nursery.start(host.security.run)
        if handle_signals:
            nursery.start_soon(_signals, shutdown)
        address, port = parse_address(host.settings.server.listen)
        serve = functools.partial(server.serve, reuse_port=worker is not None)
        bound = await nursery.start(serve, address, port)
        task_status.started(RunningHost(host, server, bound, shutdown, backoffice))
        await shutdown.wait()
        log.info("shutting_down", in_flight=server.in_flight, connections=server.active)
        server.stop_accepting()
        await server.drain(limits.shutdown_grace)
        nursery.cancel_scope.cancel()


async def _signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
        async for signum in received:
            log.info("signal", signal=signal.Signals(signum).name)
            shutdown.set()
            return
