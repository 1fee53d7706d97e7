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
    ours, theirs = socket.socketpair()
    argv = [sys.executable, "-c", code, str(theirs.fileno())]
    try:
        proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, ours
