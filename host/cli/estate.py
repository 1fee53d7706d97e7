"""``poshost estate``: merchants, terminals and operators.

Loading a terminal master key needs the HSM (the keys stream) and is added there, not here.
"""

from __future__ import annotations

import re

import click

from host.cli.common import journal_option, opened, print_json, print_table, store_context, when
from host.store import hash_password


def _matching(pattern: str, what: str):
    def check(_ctx, _param, value):
        if value is not None and not re.fullmatch(pattern, value):
            raise click.BadParameter(f"{what}: {value!r}")
        return value

    return check


MID = _matching(r"[ -~]{15}", "a merchant id is 15 printable characters")
TID = _matching(r"[ -~]{8}", "a terminal id is 8 printable characters")
MCC = _matching(r"\d{4}", "an MCC is 4 digits")
OPERATOR_NO = _matching(r"[0-9A-Za-z ]{1,3}", "an operator number is 1-3 letters or digits")


@click.group()
@journal_option
@click.pass_context
def estate(ctx: click.Context, url: str | None) -> None:
    """Manage the merchant estate: merchants, terminals, operators."""
    ctx.obj = store_context(url, must_exist=False)


# -- merchants --------------------------------------------------------------------------------


@estate.group()
def merchant() -> None:
    """Merchants (card acceptors, field 42)."""


@merchant.command("add")
@click.argument("mid", callback=MID)
@click.option("--name", required=True, help="Merchant name.")
@click.option("--mcc", required=True, callback=MCC, help="Merchant category code (4 digits).")
@click.pass_context
def merchant_add(ctx: click.Context, mid: str, name: str, mcc: str) -> None:
    """Add a merchant."""
    with opened(ctx) as store:
        store.add_merchant(mid, name, mcc)
    click.echo(f"merchant {mid} added")


@merchant.command("list")
@click.option("--status", type=click.Choice(["active", "disabled"]))
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def merchant_list(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List merchants."""
    with opened(ctx) as store:
        rows = store.list_merchants(status=status)
    if as_json:
        print_json([{"mid": m.mid, "name": m.name, "mcc": m.mcc, "status": m.status} for m in rows])
        return
    print_table(
        ["MID", "NAME", "MCC", "STATUS", "CREATED"],
        [[m.mid, m.name, m.mcc, m.status, when(m.created_at)] for m in rows],
    )


@merchant.command("disable")
@click.argument("mid")
@click.pass_context
def merchant_disable(ctx: click.Context, mid: str) -> None:
    """Disable a merchant (its terminals are refused)."""
    with opened(ctx) as store:
        store.disable_merchant(mid)
    click.echo(f"merchant {mid} disabled")


@merchant.command("enable")
@click.argument("mid")
@click.pass_context
def merchant_enable(ctx: click.Context, mid: str) -> None:
    """Enable a merchant again."""
    with opened(ctx) as store:
        store.enable_merchant(mid)
    click.echo(f"merchant {mid} enabled")


# -- terminals --------------------------------------------------------------------------------


@estate.group()
def terminal() -> None:
    """Terminals (field 41)."""


@terminal.command("add")
@click.argument("tid", callback=TID)
@click.option("--mid", required=True, callback=MID, help="The terminal's merchant.")
@click.option(
    "--key-mode",
    required=True,
    type=click.Choice(["001", "003", "004", "dukpt"]),
    help="Sign-on key mode (60.3), or dukpt.",
)
@click.option("--serial", help="Terminal serial number (TUSN).")
@click.option(
    "--master",
    "master_tid",
    callback=TID,
    help="Make it a secondary of this terminal (same merchant).",
)
@click.pass_context
def terminal_add(
    ctx: click.Context, tid: str, mid: str, key_mode: str, serial: str | None, master_tid
) -> None:
    """Add a terminal (its master key is loaded separately, through the HSM)."""
    with opened(ctx) as store:
        store.add_terminal(tid, mid, key_mode, serial=serial, master_tid=master_tid)
    click.echo(f"terminal {tid} added" + (f", secondary of {master_tid}" if master_tid else ""))


@terminal.command("set-master")
@click.argument("tid", callback=TID)
@click.argument("master_tid", metavar="MASTER", required=False, callback=TID)
@click.option("--none", "clear", is_flag=True, help="No one's secondary any more.")
@click.pass_context
def terminal_set_master(ctx: click.Context, tid: str, master_tid: str | None, clear: bool):
    """Make TID a secondary of MASTER (a terminal of the same merchant that is no one's
    secondary), or with --none a terminal of its own. Rows journalled before keep the master
    they were written with (docs/tills.md)."""
    if (master_tid is None) == (not clear):
        raise click.UsageError("give MASTER or --none")
    with opened(ctx) as store:
        store.set_master(tid, master_tid)
    click.echo(f"terminal {tid}: " + (f"secondary of {master_tid}" if master_tid else "no master"))


def _role(t, masters: set[str]) -> str | None:
    if t.master_tid:
        return "secondary"
    return "master" if t.tid in masters else None


def _terminal_dict(t, masters: set[str]) -> dict:
    return {
        "tid": t.tid,
        "mid": t.mid,
        "key_mode": t.key_mode,
        "status": t.status,
        "current_batch": t.current_batch,
        "serial": t.serial,
        "tmk_loaded": t.tmk_token is not None,
        "bdk_loaded": t.bdk_token is not None,
        "signed_on": t.signed_on,
        # a sign-on's keys the terminal has not proven yet (docs/security/sign-on.md)
        "keys_pending": t.pending_mak_token is not None,
        "operator": t.operator,
        "master": t.master_tid,
        "role": _role(t, masters),
    }


@terminal.command("profile")
@click.argument("tid", callback=TID)
@click.option(
    "--balance-entries",
    type=click.IntRange(1, 2),
    help="Entries of field 54 in a balance answer: 1 (default; the available balance, 20"
    " characters, for terminals with a 20-byte field 54) or 2 (ledger and available).",
)
@click.option("--default", "reset", is_flag=True, help="Back to the host's defaults.")
@click.pass_context
def terminal_profile(ctx: click.Context, tid: str, balance_entries: int | None, reset: bool):
    """What a strict terminal's fields can hold."""
    if balance_entries is None and not reset:
        raise click.UsageError("give --balance-entries or --default")
    with opened(ctx) as store:
        store.set_terminal_profile(tid, balance_entries=None if reset else balance_entries)
    click.echo(f"terminal {tid}: field 54 entries {balance_entries or 'default (1)'}")


@terminal.command("list")
@click.option("--mid", help="Only this merchant's terminals.")
@click.option("--status", type=click.Choice(["active", "disabled"]))
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def terminal_list(ctx: click.Context, mid: str | None, status: str | None, as_json: bool) -> None:
    """List terminals (key tokens are never printed; only whether a key is loaded), with
    each one's role: master (of secondaries), secondary (of MASTER) or - (neither)."""
    with opened(ctx) as store:
        rows = store.list_terminals(mid=mid, status=status)
        every = rows if mid is None and status is None else store.list_terminals()
    masters = {t.master_tid for t in every if t.master_tid}
    data = [_terminal_dict(t, masters) for t in rows]
    if as_json:
        print_json(data)
        return
    headers = ["tid", "mid", "key_mode", "status", "current_batch", "tmk_loaded", "signed_on",
               "keys_pending", "role", "master"]  # fmt: skip
    print_table([h.upper() for h in headers], [[d[h] for h in headers] for d in data])


@terminal.command("show")
@click.argument("tid", callback=TID)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def terminal_show(ctx: click.Context, tid: str, as_json: bool) -> None:
    """One terminal: its fields (never its keys), its master or its secondaries."""
    with opened(ctx) as store:
        t = store.get_terminal(tid)
        secondaries = [s.tid for s in store.list_secondaries(tid)]
    data = {**_terminal_dict(t, {tid} if secondaries else set()), "secondaries": secondaries}
    if as_json:
        print_json(data)
        return
    print_table(["FIELD", "VALUE"], [[k, v] for k, v in data.items()])


@terminal.command("disable")
@click.argument("tid")
@click.pass_context
def terminal_disable(ctx: click.Context, tid: str) -> None:
    """Disable a terminal."""
    with opened(ctx) as store:
        store.disable_terminal(tid)
    click.echo(f"terminal {tid} disabled")


@terminal.command("enable")
@click.argument("tid")
@click.pass_context
def terminal_enable(ctx: click.Context, tid: str) -> None:
    """Enable a terminal again."""
    with opened(ctx) as store:
        store.enable_terminal(tid)
    click.echo(f"terminal {tid} enabled")


# -- operators --------------------------------------------------------------------------------


@estate.group()
def operator() -> None:
    """Terminal operators (the number a terminal sends in field 63 at sign-on)."""


@operator.command("add")
@click.argument("tid")
@click.argument("operator_no", metavar="NO", callback=OPERATOR_NO)
@click.option(
    "--role", type=click.Choice(["operator", "supervisor"]), default="operator", show_default=True
)
@click.password_option(help="Operator password (prompted when not given); stored scrypt-hashed.")
@click.pass_context
def operator_add(ctx: click.Context, tid: str, operator_no: str, role: str, password: str) -> None:
    """Add an operator to a terminal."""
    with opened(ctx) as store:
        store.add_operator(tid, operator_no, hash_password(password), role)
    click.echo(f"operator {operator_no} of terminal {tid} added ({role})")


@operator.command("list")
@click.option("--tid", help="Only this terminal's operators.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def operator_list(ctx: click.Context, tid: str | None, as_json: bool) -> None:
    """List operators (never their password hashes)."""
    with opened(ctx) as store:
        rows = store.list_operators(tid)
    data = [
        {"tid": o.tid, "operator_no": o.operator_no, "role": o.role, "status": o.status}
        for o in rows
    ]
    if as_json:
        print_json(data)
        return
    headers = ["tid", "operator_no", "role", "status"]
    print_table([h.upper() for h in headers], [[d[h] for h in headers] for d in data])


@operator.command("disable")
@click.argument("tid")
@click.argument("operator_no", metavar="NO")
@click.pass_context
def operator_disable(ctx: click.Context, tid: str, operator_no: str) -> None:
    """Disable an operator."""
    with opened(ctx) as store:
        store.disable_operator(tid, operator_no)
    click.echo(f"operator {operator_no} of terminal {tid} disabled")


@operator.command("enable")
@click.argument("tid")
@click.argument("operator_no", metavar="NO")
@click.pass_context
def operator_enable(ctx: click.Context, tid: str, operator_no: str) -> None:
    """Enable an operator again."""
    with opened(ctx) as store:
        store.enable_operator(tid, operator_no)
    click.echo(f"operator {operator_no} of terminal {tid} enabled")
