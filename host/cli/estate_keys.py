"""`poshost estate terminal set-key`: load a terminal's TMK (or DUKPT BDK) into the estate.

The key reaches the journal only as a token under the host's LMK. Accepted forms, from the
safest: a TR-31 key block under a KBPK token; key components held by separate custodians
(combined by XOR inside the HSM, each component's check value shown); an existing LMK token;
and a clear key, refused unless the flag that names the risk is given (test estates only).
"""

from __future__ import annotations

import click

from host.app import hsm_options, load_lmk
from host.cli.common import opened
from host.cli.estate import terminal
from host.config import ConfigError, config_file, load_settings
from keys.checkvalue import kcv
from keys.errors import KeysError
from keys.hsm import SoftHSM
from keys.tokens import KeyToken, KeyType

TEST_KEY_FLAG = "--i-know-this-is-a-clear-test-key"


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise click.BadParameter(f"{what} must be hex") from exc


@terminal.command("set-key")
@click.argument("tid")
@click.option("--type", "kind", type=click.Choice(["tmk", "bdk"]), default="tmk", show_default=True)
@click.option("--component", "components", multiple=True, help="A key component (hex); 2+.")
@click.option("--tr31", "tr31_block", help="A TR-31 key block carrying the key.")
@click.option("--kbpk", "kbpk_token", help="LMK token of the KBPK that protects --tr31.")
@click.option("--token", "token_text", help="An LMK token of the key (from `poshost keys`).")
@click.option("--clear-test-key", "clear_hex", help=f"A clear TEST key; needs {TEST_KEY_FLAG}.")
@click.option(TEST_KEY_FLAG, "test_ok", is_flag=True, help="Accept --clear-test-key.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Host config.")
@click.pass_context
def set_key(
    ctx: click.Context,
    tid: str,
    kind: str,
    components: tuple[str, ...],
    tr31_block: str | None,
    kbpk_token: str | None,
    token_text: str | None,
    clear_hex: str | None,
    test_ok: bool,
    config_path: str | None,
) -> None:
    """Load TID's TMK (or DUKPT BDK) from components, a TR-31 block, a token or a test key."""
    given = [bool(components), bool(tr31_block), bool(token_text), bool(clear_hex)]
    if sum(given) != 1:
        raise click.UsageError("give exactly one of --component, --tr31, --token, --clear-test-key")
    if clear_hex and not test_ok:
        raise click.UsageError(f"a clear key is for test estates only: add {TEST_KEY_FLAG}")
    try:
        settings = load_settings(config_file(config_path))
        lmk, _source = load_lmk(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    # An offline estate tool: ceremony mode for components; clear keys only with the test flag.
    hsm = SoftHSM(lmk, ceremony=True, clear_test_keys=test_ok, **hsm_options(settings))
    key_type = KeyType.TMK if kind == "tmk" else KeyType.BDK
    try:
        if components:
            if len(components) < 2:
                raise click.UsageError("components come in twos or more")
            parts = [_hex(c, "component") for c in components]
            for n, part in enumerate(parts, 1):
                click.echo(f"component {n} kcv: {kcv(part).hex().upper()}")
            token = hsm.import_components(key_type, parts)
        elif tr31_block:
            if not kbpk_token:
                raise click.UsageError("--tr31 needs --kbpk")
            token = hsm.import_tr31(key_type, tr31_block, KeyToken.from_text(kbpk_token))
        elif token_text:
            token = KeyToken.from_text(token_text)
            if token.key_type is not key_type:
                raise click.UsageError(f"the token is a {token.key_type.name}, not a {kind}")
        else:
            token = hsm.import_clear(key_type, _hex(clear_hex or "", "key"))
    except KeysError as exc:
        raise click.ClickException(str(exc)) from exc
    with opened(ctx) as store:
        if kind == "tmk":
            store.set_terminal_keys(tid, tmk_token=token.to_text())
        else:
            store.set_terminal_keys(tid, bdk_token=token.to_text())
    click.echo(f"{tid}: {kind.upper()} loaded, kcv {token.check_value}")
