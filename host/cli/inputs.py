"""Option checks shared by the CLIs: a bad value is refused where it enters, naming the option
(click's usage error, exit 2), instead of a deep error that names no option or an empty
table that looks like "nothing happened"."""

from __future__ import annotations

import click

from host.clock import journal_date, parse_date


def yyyymmdd(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A real calendar date as YYYYMMDD (the back office answers 400 to anything else)."""
    if value is None:
        return None
    try:
        day = parse_date(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date as YYYYMMDD") from None
    if len(value) != 8:
        raise click.BadParameter(f"{value!r} is not a date as YYYYMMDD")
    return journal_date(day)


def hex_values(_ctx: click.Context, _param: click.Parameter, value):
    """Hex key material (one value or a multiple option); spaces allowed, nothing else."""
    if value is None:
        return None
    values = value if isinstance(value, tuple) else (value,)
    for n, text in enumerate(values, 1):
        cleaned = text.replace(" ", "")
        where = f" (value {n})" if len(values) > 1 else ""
        if not cleaned or len(cleaned) % 2:
            raise click.BadParameter(f"an even number of hex digits{where}, got {len(cleaned)}")
        try:
            bytes.fromhex(cleaned)
        except ValueError:
            raise click.BadParameter(f"not hexadecimal{where}") from None
    return value
