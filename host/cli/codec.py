"""``poshost decode`` and ``poshost encode``: the codec from the shell, masked by default."""

from __future__ import annotations

import json
import sys

import click

from codec import issuer, terminal
from codec.dump import format_message, masked_fields, unmasked_fields
from codec.errors import CodecError
from codec.framing import build_envelope, parse_envelope, prefix_length
from codec.message import Message

_DIALECTS = {"terminal": terminal, "issuer": issuer}
_BINARY = {"terminal": {52, 55, 62}, "issuer": {52, 55, 128}}


def _hex_arg(text: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise click.BadParameter("not hexadecimal", param_hint="HEX") from None


@click.command()
@click.option(
    "--dialect", type=click.Choice(sorted(_DIALECTS)), default="terminal", show_default=True
)
@click.option(
    "--framed",
    is_flag=True,
    help="HEX starts with the 2-byte length (and, for the terminal dialect, TPDU + header).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the fields as JSON.")
@click.option("--unmasked", is_flag=True, help="With --json: clear values (test data only).")
@click.argument("hex_text", metavar="HEX")
def decode(dialect: str, framed: bool, as_json: bool, unmasked: bool, hex_text: str) -> None:
    """Decode a message given as HEX and print a masked dump."""
    data = _hex_arg(hex_text)
    extra: dict[str, str] = {}
    try:
        if framed:
            if len(data) < 2 or int.from_bytes(data[:2], "big") != len(data) - 2:
                raise CodecError("length prefix does not match the data", field="frame", offset=0)
            data = data[2:]
            if dialect == "terminal":
                env = parse_envelope(data)
                extra = {"tpdu": env.tpdu.hex().upper(), "header": env.header.hex().upper()}
                data = env.payload
        msg = _DIALECTS[dialect].decode(data)
    except CodecError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        fields = unmasked_fields(msg) if unmasked else masked_fields(msg, dialect)
        click.echo(json.dumps({**extra, **fields}, indent=2))
        return
    for k, v in extra.items():
        click.echo(f"{k}: {v}")
    click.echo(format_message(msg, dialect))


@click.command()
@click.option(
    "--dialect", type=click.Choice(sorted(_DIALECTS)), default="terminal", show_default=True
)
@click.option(
    "--framed",
    is_flag=True,
    help="Add the 2-byte length (and TPDU + header for the terminal dialect).",
)
@click.option(
    "--tpdu", default="6000030000", show_default=True, help="TPDU as hex (--framed, terminal)."
)
@click.option(
    "--header",
    "header_hex",
    default="603100000000",
    show_default=True,
    help="Header as hex (--framed, terminal).",
)
@click.argument("source", type=click.File("r"), default="-")
def encode(dialect: str, framed: bool, tpdu: str, header_hex: str, source) -> None:
    """Encode a message from JSON (SOURCE file or stdin) and print it as hex.

    JSON: {"mti": "0200", "3": "000000", ...}; binary fields (52, 55, 62, 128) as hex.
    """
    try:
        doc = json.load(source)
    except json.JSONDecodeError as e:
        raise click.ClickException(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict) or "mti" not in doc:
        raise click.ClickException('JSON must be an object with "mti"')
    binary = _BINARY[dialect]
    try:
        fields = {}
        for key, value in doc.items():
            if key in ("mti", "tpdu", "header"):
                continue
            n = int(key)
            fields[n] = bytes.fromhex(value) if n in binary else str(value)
        msg = Message(str(doc["mti"]), fields)
        out = _DIALECTS[dialect].encode(msg)
        if framed:
            if dialect == "terminal":
                out = build_envelope(
                    out,
                    tpdu=_hex_arg(doc.get("tpdu", tpdu)),
                    header=_hex_arg(doc.get("header", header_hex)),
                ).to_body()
            out = prefix_length(out)
    except (CodecError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(out.hex().upper())
    sys.stdout.flush()
