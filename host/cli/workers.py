"""`poshost serve --workers N`: N host processes on one port, one journal writer for them all.

Python runs one thread of Python at a time, and one host process keeps about one core busy at
full speed. With ``--workers N`` the ``serve`` process becomes a parent that starts:

* the journal writer (host/store/writer_process.py) with one socket per worker: it is still
  the one writer of the journal, so the duplicate check, the ids and the write log see every
  worker's writes, and reads in any worker see what every worker had acknowledged;
* N worker processes, each a whole host (its own event loop, HSM, issuer links, caches)
  listening on the same port with ``SO_REUSEPORT``: the kernel spreads new connections over
  them. Worker 0 starts first and alone: it seeds the demo estate and reverses what a crash
  left pending before any terminal is served; it also runs store-and-forward for all;
* the back office, when configured.

A terminal may reconnect to another worker: sessions live in the journal (keys, batch, signed
on), and a worker whose cached terminal record disagrees with a request (its MAC, its batch, its
session) reads the record again before answering (host/flow/steps.py). What stays per worker:
the risk engine's running totals and card windows (each sees the others' sales at its next
re-seed, as several hosts on one PostgreSQL journal do) and the sign-on rate limits (a burst
per worker).

The parent forwards SIGINT/SIGTERM to the workers, waits for them, then closes the journal
writer (which applies and makes durable everything first). Workers get SIGTERM if the parent
dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import structlog
import trio

from host import logs
from host.config import Settings, load_settings

log = structlog.get_logger("poshost")

_WORKER = (
    "import sys; from host.cli.workers import worker_main; sys.exit(worker_main(sys.argv[1:]))"
)


def run_workers(
    settings: Settings,
    *,
    config: str | None,
    overrides: dict[str, Any],
    demo: bool,
    banner: Callable[[Settings, int, bool], str],
) -> None:
    """Start the journal writer and ``server.workers`` workers; return when they have all
    stopped. The workers read ``config`` with ``overrides`` (the command line's), as `serve`
    did; ``banner`` is what `serve` prints once the host listens."""
    from host.app import load_fingerprint_key, load_lmk

    # A first start generates the LMK and the fingerprint key into the data dir: once, here,
    # rather than in N workers racing to create the same files.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.hsm.kind == "soft":
        load_lmk(settings)
    load_fingerprint_key(settings)
    count = settings.server.workers
    trio.run(_parent, settings, config, overrides, demo, count, banner)


async def _parent(
    settings: Settings,
    config: str | None,
    overrides: dict[str, Any],
    demo: bool,
    count: int,
    banner: Callable[[Settings, int, bool], str],
) -> None:
    from host.backoffice.process import BackOfficeProcess, child_config
    from host.runtime import journal_options
    from host.store import open_store

    options = journal_options(settings)
    if not options["writer_process"]:
        raise SystemExit("serve --workers needs journal.writer = process")
    async with open_store(settings.journal_url, workers=count, **options) as store:
        backoffice = None
        if settings.backoffice.listen:
            backoffice = await BackOfficeProcess.start(child_config(settings))
        workers: list[subprocess.Popen] = []
        try:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                port = 0
                for index, sock in enumerate(store.writer_sockets()):
                    proc, port = await _start_worker(index, count, sock, config, demo, overrides)
                    workers.append(proc)
                logs.write_line(banner(settings, port, demo) + f"\n({count} workers)")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_forward, signals, workers, nursery.cancel_scope)
                    async with trio.open_nursery() as waiting:
                        for index, proc in enumerate(workers):
                            waiting.start_soon(_wait_worker, index, proc)
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for proc in workers:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                for proc in workers:
                    await trio.to_thread.run_sync(proc.wait)
                if backoffice is not None:
                    await backoffice.aclose()
    log.info("stopped")


async def _start_worker(
    index: int,
    count: int,
    sock: socket.socket,
    config: str | None,
    demo: bool,
    overrides: dict[str, Any],
) -> tuple[subprocess.Popen, int]:
    """Start one worker and wait until it listens (its port comes back on a pipe). The
    command line's overrides hold no secret (a log setting, a wallet link's address)."""
    ready_r, ready_w = os.pipe()
    argv = [sys.executable, "-c", _WORKER, str(sock.fileno()), str(index), str(count),
            str(ready_w), config or "", "demo" if demo else "", json.dumps(overrides)]  # fmt: skip
    try:
        proc = subprocess.Popen(
            argv,
            pass_fds=[sock.fileno(), ready_w],
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
    finally:
        os.close(ready_w)
        sock.close()  # the worker holds it now: its exit closes the writer's connection
    try:
        with open(ready_r, "rb") as pipe:
            line = await trio.to_thread.run_sync(pipe.readline)
    except BaseException:
        proc.kill()
        raise
    if not line.strip().isdigit():
        proc.wait()
        raise SystemExit(f"worker {index} failed to start (exit code {proc.returncode})")
    return proc, int(line)


async def _forward(signals, workers: list[subprocess.Popen], scope: trio.CancelScope) -> None:
    async for signum in signals:
        log.info("signal", signal=signal.Signals(signum).name, workers=len(workers))
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)


async def _wait_worker(index: int, proc: subprocess.Popen) -> None:
    code = await trio.to_thread.run_sync(proc.wait)
    if code:
        log.error("worker_exited", worker=index, code=code)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# -- a worker ------------------------------------------------------------------------------


def worker_main(argv: list[str]) -> int:
    """One worker: ``JOURNAL_FD INDEX COUNT READY_FD CONFIG DEMO OVERRIDES`` (the settings are
    read the way the parent read them: the same file, environment and command line)."""
    from host.runtime import WorkerRole

    journal_fd, index, count, ready_fd = (int(a) for a in argv[:4])
    config, demo, overrides = argv[4] or None, argv[5] == "demo", json.loads(argv[6])
    settings = load_settings(config, overrides=overrides)
    os.umask(0o077)
    logs.configure(settings.log.format, settings.log.level)
    structlog.contextvars.bind_contextvars(worker=index)
    role = WorkerRole(index, count, socket.socket(fileno=journal_fd))
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(_worker, settings, demo, role, ready_fd)
    return 0


async def _worker(settings: Settings, demo: bool, role, ready_fd: int) -> None:
    from host.runtime import run_host

    async with trio.open_nursery() as nursery:

        async def host(task_status):
            await run_host(settings, demo=demo, handle_signals=True, worker=role,
                           task_status=task_status)  # fmt: skip

        running = await nursery.start(host)
        os.write(ready_fd, f"{running.port}\n".encode())
        os.close(ready_fd)
