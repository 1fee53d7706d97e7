"""The one door from ``tools/`` into the host (an import-linter contract holds it shut elsewhere).

The peers in ``tools/`` talk to a running host over its sockets; what they take from here is
what a test bench needs around that: reading the same configuration, provisioning an estate in
the journal before the host starts, starting and stopping a host in-process for a certification
run, the shared exit codes and formats, and the send coalescer and the small HTTP server
that the simulators reuse.
Anything else a tool wants from the host is a sign it is reaching past the socket.
"""

from host.app import load_lmk
from host.cli.common import configured_host_with_journal
from host.config import DEFAULTS, ConfigError, Settings, config_file, load_settings, parse_address
from host.exitcodes import DECLINED, Unreachable
from host.formatting import format_amount, local_time, signed_amount, terminal_time
from host.http import HttpServer
from host.logs import configure as configure_logs
from host.outbox import Outbox
from host.runtime import RunningHost, run_host
from host.store import (
    AlreadyExists,
    NewTransaction,
    NotFound,
    Store,
    SyncStore,
    hash_password,
    open_store,
)

__all__ = [
    "DECLINED",
    "DEFAULTS",
    "AlreadyExists",
    "ConfigError",
    "HttpServer",
    "NewTransaction",
    "NotFound",
    "Outbox",
    "RunningHost",
    "Settings",
    "Store",
    "SyncStore",
    "Unreachable",
    "config_file",
    "configure_logs",
    "configured_host_with_journal",
    "format_amount",
    "hash_password",
    "load_lmk",
    "load_settings",
    "local_time",
    "open_store",
    "parse_address",
    "run_host",
    "signed_amount",
    "terminal_time",
]
