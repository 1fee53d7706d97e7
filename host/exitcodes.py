"""Exit codes every ``poshost`` command shares, so a script can tell a typo from a decline from
a host that is down without reading the output.

0  done (approved, check passed)
1  any other error (bad state file, refused by the tool, unexpected failure)
2  usage error: a missing or invalid option (click's own code)
3  declined transaction or failed check (a response code other than 00, a failed case)
4  the host (or the journal a command needs) cannot be reached
"""

from __future__ import annotations

import click

OK = 0
ERROR = 1
USAGE = 2
DECLINED = 3
UNREACHABLE = 4


class Unreachable(click.ClickException):
    """One line on stderr and exit 4: the host or the journal the command needs is not there."""

    exit_code = UNREACHABLE
