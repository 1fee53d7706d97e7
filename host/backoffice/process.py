"""The back-office API in a child process of ``poshost serve``.

Why a process: whatever a back-office request costs (a digest, a legacy scrypt check, a large
query and its JSON), an attacker or a busy accountant decides how often it happens. In the POS
host's process that CPU is taken from the event loop that answers terminals: 50 wrong secrets a
second once raised the purchase p99 from 8 ms to 530 ms. In its own process the API has its own
interpreter and GIL, runs at a lower priority (``backoffice.nice``), and the operating system
gives the POS loop the CPU first. The API needs nothing of the host but the journal: the child
opens its own store (the journal URL) and its own security monitor, which journals its events.

The parent starts it with a private socketpair. The settings (the URL may hold a password) come
over the socket, never on a command line that ``ps`` shows; the child answers ``ready <port>``
(or ``failed <why>``) and then lives as long as the socket: when the host closes it, or dies,
the child stops serving, flushes its security events and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from typing import Any

import attrs
import structlog
import trio

from host.child import spawn_child
from host.config import Settings

log = structlog.get_logger("poshost.backoffice")

_CHILD = "import sys; from host.backoffice.process import main; sys.exit(main(sys.argv[1:]))"


def child_config(settings: Settings) -> dict[str, Any]:
    """What the child needs: the journal, where to listen, the throttles, how to log."""
    office = settings.backoffice
    return {
        "url": settings.journal_url,
        "listen": office.listen,
        "fail_burst": office.fail_burst,
        "fail_refill_seconds": office.fail_refill_seconds,
        "nice": office.nice,
        "log_format": settings.log.format,
        "log_level": settings.log.level,
    }


@attrs.define
class BackOfficeProcess:
    """The host's handle on its back-office child: ``start`` returns once it listens."""

    proc: subprocess.Popen
    sock: trio.socket.SocketType
    port: int

    @classmethod
    async def start(cls, config: dict[str, Any], timeout: float = 60.0) -> BackOfficeProcess:
        proc, ours = spawn_child(_CHILD)
        sock = trio.socket.from_stdlib_socket(ours)
        answer = b""
        try:
            await sock.send((json.dumps(config) + "\n").encode())
            with trio.fail_after(timeout):
                while not answer.endswith(b"\n"):
                    data = await sock.recv(4096)
                    if not data:
                        break
                    answer += data
        except (OSError, trio.TooSlowError) as exc:
            answer = f"failed {type(exc).__name__}".encode()
        word, _, rest = answer.decode().strip().partition(" ")
        if word != "ready":
            sock.close()
            proc.kill()
            await trio.to_thread.run_sync(proc.wait)
            raise RuntimeError(f"back-office process failed to start: {rest or 'no answer'}")
        log.info("backoffice_process_started", pid=proc.pid, port=int(rest))
        return cls(proc, sock, int(rest))

    async def aclose(self, timeout: float = 15.0) -> int:
        """Close the socket (the child's signal to stop) and wait for it; kill it if it hangs.
        Returns its exit status."""
        self.sock.close()
        with trio.move_on_after(timeout):
            code = await trio.to_thread.run_sync(self.proc.wait, abandon_on_cancel=True)
            log.info("backoffice_process_stopped", pid=self.proc.pid, exit=code)
            return code
        log.warning("backoffice_process_killed", pid=self.proc.pid)
        self.proc.kill()
        return await trio.to_thread.run_sync(self.proc.wait)


# -- the child -----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    # Ctrl-C and a service manager's SIGTERM reach every process of the group: the child stops
    # when its host closes the socket, after the host has stopped taking terminals' requests.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    line = b""
    while not line.endswith(b"\n"):
        data = sock.recv(65536)
        if not data:
            return 1
        line += data
    config = json.loads(line)
    from host.logs import configure

    configure(config["log_format"], config["log_level"])
    if config["nice"]:
        os.nice(config["nice"])
    try:
        trio.run(_serve, sock, config)
    except Exception as exc:
        log.exception("backoffice_process_failed", error=type(exc).__name__)
        return 1
    return 0


async def _serve(raw: socket.socket, config: dict[str, Any]) -> None:
    from host.backoffice.api import serve_backoffice
    from host.security import SecurityMonitor
    from host.store import open_store

    sock = trio.socket.from_stdlib_socket(raw)
    try:
        async with open_store(config["url"]) as store:
            monitor = SecurityMonitor(store)
            async with trio.open_nursery() as nursery:
                await nursery.start(monitor.run)
                port = await nursery.start(
                    lambda task_status: serve_backoffice(
                        store, config["listen"], monitor=monitor,
                        fail_burst=config["fail_burst"],
                        fail_refill_seconds=config["fail_refill_seconds"],
                        task_status=task_status,
                    )
                )  # fmt: skip
                await sock.send(f"ready {port}\n".encode())
                with contextlib.suppress(OSError):  # a reset: the host died
                    while await sock.recv(4096):  # until the host closes its end
                        pass
                nursery.cancel_scope.cancel()
    except Exception as exc:
        with contextlib.suppress(OSError):
            await sock.send(f"failed {type(exc).__name__}: {exc}"[:300].encode() + b"\n")
        raise
