"""What a certification run was run against, in words a reviewer can file: the poshost version
and commit, and the configuration that matters to the result, not just an address."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def version() -> str:
    try:
        return metadata.version("poshost")
    except metadata.PackageNotFoundError:
        return "unknown"


def commit() -> str:
    """Short commit of the checkout these tools run from, "+changes" when it has uncommitted
    edits (a report of a dirty tree must say so); "unknown" outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" +changes" if dirty else "")


def describe_local(stack) -> list[tuple[str, str]]:
    """A host this run started itself: everything about it is known."""
    host = stack.running.host
    settings = host.settings
    url = settings.journal.url
    links = ", ".join(f"{name} ({link.address})" for name, link in settings.links.items())
    return [
        ("target", f"poshost {version()} started by this run on {stack.address}"),
        ("commit", commit()),
        ("estate", "demo estate (specs/demo_estate.toml)"),
        ("journal", "PostgreSQL" if url.startswith("postgres") else "SQLite, fresh data dir"),
        ("issuer", f"bundled issuer simulator, issuer-side checks on; links: {links}"),
        (
            "acquirer",
            f"{settings.acquirer.name} ({settings.acquirer.institution_id})"
            f", cut-over {settings.acquirer.cutover} {settings.acquirer.timezone}",
        ),
        ("flows", f"{len(host.flows)} transaction types served"),
    ]


def describe_remote(address: str) -> list[tuple[str, str]]:
    """A host already running elsewhere: its own version is not on the wire, so the report
    says what it knows (the address) and what ran the suites."""
    return [
        ("target", f"a host already running at {address} (not started by this run)"),
        ("runner", f"poshost certify {version()}, commit {commit()}"),
        ("issuer", "not visible from this runner (no issuer-side checks)"),
    ]
