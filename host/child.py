"""Child processes of the host (journal writer, back office): a Python child reached over a
private socketpair.

Settings and secrets (a journal URL may hold a password) cross the socket, never the command
line, where any local user could read them in /proc.
"""

from __future__ import annotations

import socket
import subprocess
import sys


def spawn_child(code: str) -> tuple[subprocess.Popen, socket.socket]:
    """Run ``python -c code FD``, FD being the child's end of a new socketpair; returns the
    process and the host's end."""
    proc, ours, _extra = spawn_child_with(code, 0)
    return proc, ours


def spawn_child_with(
    code: str, extra: int
) -> tuple[subprocess.Popen, socket.socket, list[socket.socket]]:
    """``spawn_child`` with ``extra`` more socketpairs: ``python -c code FD FD1 ... FDn``;
    returns the process, the host's end of the first pair and the other ends of the rest (for
    the host's worker processes: one journal writer serves them all)."""
    pairs = [socket.socketpair() for _ in range(1 + extra)]
    theirs = [pair[1] for pair in pairs]
    argv = [sys.executable, "-c", code, *(str(t.fileno()) for t in theirs)]
    try:
        proc = subprocess.Popen(
            argv, pass_fds=[t.fileno() for t in theirs], stdin=subprocess.DEVNULL
        )
    except BaseException:
        for ours, _ in pairs:
            ours.close()
        raise
    finally:
        for t in theirs:
            t.close()
    return proc, pairs[0][0], [pair[0] for pair in pairs[1:]]
