"""`poshost keys`: the key ceremony and key-management tools.

Rule: a clear key is printed only when ``--i-understand-this-prints-clear-keys`` is given.
Key components are the exception, printed by the ceremony commands (`component`,
`generate-lmk`), because handing them to their custodians is the point of a ceremony.
Clear inputs may be left out to be prompted for without echo, keeping them out of shell history.
"""

from __future__ import annotations

import sys

import click

from keys import des, dukpt, tr31
from keys.checkvalue import kcv, kcv_aes
from keys.errors import KeysError
from keys.hsm import SoftHSM
from keys.lmk import xor_components
from keys.tokens import Algorithm, KeyToken, parse_key_type

CLEAR_FLAG = "--i-understand-this-prints-clear-keys"


def _clear_flag(f):
    return click.option(
        CLEAR_FLAG,
        "show_clear",
        is_flag=True,
        help="Also print clear key values. They end up in terminal scroll-back and logs.",
    )(f)


def _lmk_option(f):
    return click.option(
        "--lmk",
        envvar="POSHOST_LMK",
        required=True,
        help="The LMK in hex (or set POSHOST_LMK).",
    )(f)


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.replace(" ", ""))
    except ValueError:
        raise click.BadParameter(f"{what} must be hex") from None


def _secret(value: str | None, what: str) -> bytes:
    if value is None:
        value = click.prompt(what, hide_input=True, err=True)
    return _hex(value, what)


def _cv(key: bytes, algorithm: str) -> str:
    return (kcv_aes(key) if algorithm == "aes" else kcv(key)).hex().upper()


def _algorithm(name: str | None) -> Algorithm | None:
    return None if name is None else Algorithm.AES if name == "aes" else Algorithm.TDES


def _show_token(tok: KeyToken) -> None:
    click.echo(f"kcv: {tok.check_value}")
    click.echo(f"token: {tok.to_text()}")


def _hsm(lmk: str) -> SoftHSM:
    # An offline operator tool, never a running host: it takes the clear (test) keys and
    # components an operator types, and single-length keys for mode-001 terminals.
    hsm = SoftHSM.from_hex(lmk, ceremony=True, clear_test_keys=True, single_length=True)
    click.echo(f"LMK check value: {hsm.lmk_check_value}", err=True)
    return hsm


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


@click.group()
def keys() -> None:
    """Key ceremony and key management: components, check values, tokens, DUKPT, TR-31."""


@keys.command("generate-lmk")
@click.option("--length", type=click.Choice(["16", "24", "32"]), default="32", show_default=True)
@click.option("--components", "count", type=click.IntRange(2, 9), default=3, show_default=True)
@_clear_flag
def generate_lmk(length: str, count: int, show_clear: bool) -> None:
    """Generate a new LMK as custodian components (ceremony: prints the components)."""
    n = int(length)
    comps = [SoftHSM.generate_lmk(n) for _ in range(count)]
    lmk = xor_components(comps)
    for i, c in enumerate(comps, 1):
        click.echo(f"component {i}: {c.hex().upper()}  kcv {_cv(c, 'aes')}")
    click.echo(f"LMK check value: {SoftHSM(lmk).lmk_check_value}")
    if show_clear:
        click.echo(f"LMK: {lmk.hex().upper()}")


@keys.command("component")
@click.option("--length", type=click.Choice(["8", "16", "24", "32"]), default="16")
@click.option("--algorithm", type=click.Choice(["tdes", "aes"]), default="tdes")
@click.option("--count", type=click.IntRange(1, 9), default=2, show_default=True)
def component(length: str, algorithm: str, count: int) -> None:
    """Generate random key components (ceremony: prints each component and its check value)."""
    import secrets

    n = int(length)
    if algorithm == "aes" and n == 8:
        raise click.BadParameter("an AES key is 16, 24 or 32 bytes", param_hint="--length")
    comps = []
    for i in range(1, count + 1):
        c = secrets.token_bytes(n)
        if algorithm == "tdes":
            c = des.adjust_parity(c)
        comps.append(c)
        click.echo(f"component {i}: {c.hex().upper()}  kcv {_cv(c, algorithm)}")
    if count > 1:
        combined = xor_components(comps)
        if algorithm == "tdes":
            combined = des.adjust_parity(combined)
        click.echo(f"combined key kcv: {_cv(combined, algorithm)}")


@keys.command("combine")
@click.argument("components", nargs=-1, required=True)
@click.option("--algorithm", type=click.Choice(["tdes", "aes"]), default="tdes")
@click.option("--type", "key_type", help="Also wrap the result as a token of this type.")
@click.option("--lmk", envvar="POSHOST_LMK", help="LMK hex for --type (or POSHOST_LMK).")
@_clear_flag
def combine(
    components: tuple[str, ...],
    algorithm: str,
    key_type: str | None,
    lmk: str | None,
    show_clear: bool,
) -> None:
    """XOR two or more components, showing each check value and the result's."""
    parts = [_hex(c, "component") for c in components]
    try:
        for i, c in enumerate(parts, 1):
            click.echo(f"component {i} kcv: {_cv(c, algorithm)}")
        key = xor_components(parts)
        if algorithm == "tdes":
            key = des.adjust_parity(key)
        click.echo(f"combined key kcv: {_cv(key, algorithm)}")
        if show_clear:
            click.echo(f"combined key: {key.hex().upper()}")
        if key_type:
            if not lmk:
                raise click.UsageError("--type needs --lmk or POSHOST_LMK")
            tok = _hsm(lmk).import_clear(parse_key_type(key_type), key, _algorithm(algorithm))
            click.echo(f"token: {tok.to_text()}")
    except KeysError as exc:
        _fail(exc)


@keys.command("kcv")
@click.argument("key", required=False)
@click.option("--algorithm", type=click.Choice(["tdes", "aes"]), default="tdes")
def check_value(key: str | None, algorithm: str) -> None:
    """Compute a key's check value (TDES: E(0) first 3 bytes; AES: CMAC(0) first 5)."""
    try:
        click.echo(_cv(_secret(key, "key"), algorithm))
    except KeysError as exc:
        _fail(exc)


@keys.command("derive-ipek")
@click.option("--bdk", help="BDK hex (prompted without echo when left out).")
@click.option("--ksn", required=True, help="KSN hex: 10 bytes (TDES) or 12 bytes (AES).")
@click.option("--lmk", envvar="POSHOST_LMK", help="Print the initial key as an LMK token.")
@_clear_flag
def derive_ipek(bdk: str | None, ksn: str, lmk: str | None, show_clear: bool) -> None:
    """Derive a device's initial key: X9.24-1 IPEK (16-byte BDK) or X9.24-3 IK (AES BDK)."""
    ksn_b = _hex(ksn, "KSN")
    bdk_b = _secret(bdk, "BDK")
    try:
        if len(ksn_b) == dukpt.TDES_KSN_LEN:
            ik, alg, kind = dukpt.derive_ipek(bdk_b, ksn_b), "tdes", "IPEK"
        elif len(ksn_b) == dukpt.AES_KSN_LEN:
            ik, alg, kind = dukpt.derive_initial_key(bdk_b, ksn_b[:8]), "aes", "IK_AES"
        else:
            raise click.BadParameter("a KSN is 10 (TDES) or 12 (AES) bytes", param_hint="--ksn")
        click.echo(f"{kind} kcv: {_cv(ik, alg)}")
        if show_clear:
            click.echo(f"{kind}: {ik.hex().upper()}")
        if lmk:
            hsm = _hsm(lmk)
            tok = hsm.import_clear(parse_key_type(kind), ik)
            click.echo(f"token: {tok.to_text()}")
    except KeysError as exc:
        _fail(exc)


@keys.command("import")
@click.option("--type", "key_type", required=True, help="TMK, TPK/PIK, TAK/MAK, ZPK, BDK ...")
@click.option("--key", help="Clear key hex (prompted without echo when left out).")
@click.option("--algorithm", type=click.Choice(["tdes", "aes"]), default=None)
@_lmk_option
def import_clear(key_type: str, key: str | None, algorithm: str | None, lmk: str) -> None:
    """Wrap a clear (test) key under the LMK and print the token."""
    try:
        kt = parse_key_type(key_type)
        alg = _algorithm(algorithm)
        tok = _hsm(lmk).import_clear(kt, _secret(key, "key"), alg)
        _show_token(tok)
    except KeysError as exc:
        _fail(exc)


@keys.command("generate")
@click.option("--type", "key_type", required=True)
@click.option("--length", type=click.Choice(["8", "16", "24", "32"]), default="16")
@click.option("--algorithm", type=click.Choice(["tdes", "aes"]), default=None)
@_lmk_option
def generate(key_type: str, length: str, algorithm: str | None, lmk: str) -> None:
    """Generate a random key inside the HSM and print its token."""
    try:
        alg = _algorithm(algorithm)
        tok = _hsm(lmk).generate_key(parse_key_type(key_type), int(length), alg)
        _show_token(tok)
    except KeysError as exc:
        _fail(exc)


@keys.command("export")
@click.option("--token", "token_text", required=True, help="Token of the key to export.")
@click.option("--kek", "kek_text", required=True, help="Token of the TMK/ZMK/KEK.")
@_lmk_option
def export(token_text: str, kek_text: str, lmk: str) -> None:
    """Export a key under a KEK (ECB) with its 4-byte check value, as sign-on field 62 has it."""
    try:
        crypt, cv = _hsm(lmk).export_key(
            KeyToken.from_text(token_text), KeyToken.from_text(kek_text)
        )
        click.echo(f"cryptogram: {crypt.hex().upper()}")
        click.echo(f"check value: {cv.hex().upper()}")
    except KeysError as exc:
        _fail(exc)


@keys.command("sign-on-keys")
@click.option("--tmk", "tmk_text", required=True, help="The terminal's TMK token.")
@click.option("--mode", type=click.Choice(["001", "003", "004"]), default="003", show_default=True)
@_lmk_option
def sign_on_keys(tmk_text: str, mode: str, lmk: str) -> None:
    """New working keys for a terminal and the field 62 a sign-on response carries."""
    try:
        hsm = _hsm(lmk)
        tmk = KeyToken.from_text(tmk_text)
        pik = hsm.generate_key(parse_key_type("PIK"), 8 if mode == "001" else 16)
        mak = hsm.generate_key(parse_key_type("MAK"), 8)
        field = b""
        for tok in (pik, mak):
            crypt, cv = hsm.export_key(tok, tmk)
            if tok is mak and mode != "001":
                crypt += bytes(8)
            field += crypt + cv
            click.echo(f"{tok.key_type.name} token: {tok.to_text()}")
        if mode == "004":
            tdk = hsm.generate_key(parse_key_type("TDK"), 16)
            crypt, cv = hsm.export_key(tdk, tmk)
            field += crypt + cv
            click.echo(f"TDK token: {tdk.to_text()}")
        click.echo(f"field 62 ({len(field)} bytes): {field.hex().upper()}")
    except KeysError as exc:
        _fail(exc)


@keys.command("tr31-wrap")
@click.option("--kbpk", help="KBPK hex (prompted when left out).")
@click.option("--key", help="Key hex (prompted when left out).")
@click.option("--version", type=click.Choice(["B", "D"]), default=None, help="Default: by KBPK.")
@click.option("--usage", required=True, help="TR-31 key usage, e.g. P0, M3, K0, B0, D0.")
@click.option("--algorithm", "alg", type=click.Choice(["T", "A", "D"]), default="T")
@click.option("--mode", required=True, help="Mode of use, e.g. E, D, B, C, G, V, X, N.")
@click.option("--exportability", type=click.Choice(["E", "N", "S"]), default="E")
@click.option("--key-version", default="00")
def tr31_wrap(
    kbpk: str | None,
    key: str | None,
    version: str | None,
    usage: str,
    alg: str,
    mode: str,
    exportability: str,
    key_version: str,
) -> None:
    """Wrap a clear key into a TR-31 block (B for a TDES KBPK, D for AES)."""
    kb = _secret(kbpk, "KBPK")
    k = _secret(key, "key")
    try:
        version = version or ("D" if len(kb) == 32 else "B")
        header = tr31.Header(version, usage, alg, mode, key_version, exportability)
        click.echo(tr31.wrap(kb, header, k))
    except KeysError as exc:
        _fail(exc)


@keys.command("tr31-unwrap")
@click.argument("block")
@click.option("--kbpk", help="KBPK hex (prompted when left out).")
@_clear_flag
def tr31_unwrap(block: str, kbpk: str | None, show_clear: bool) -> None:
    """Verify and open a TR-31 block: header fields and the key's check value."""
    kb = _secret(kbpk, "KBPK")
    try:
        header, key = tr31.unwrap(kb, block.strip())
    except KeysError as exc:
        _fail(exc)
        return
    click.echo(f"version: {header.version}")
    click.echo(f"usage: {header.usage} ({tr31.USAGES[header.usage]})")
    click.echo(f"algorithm: {header.algorithm} ({tr31.ALGORITHMS[header.algorithm]})")
    click.echo(f"mode of use: {header.mode} ({tr31.MODES[header.mode]})")
    click.echo(f"key version: {header.key_version}")
    click.echo(
        f"exportability: {header.exportability} ({tr31.EXPORTABILITY[header.exportability]})"
    )
    for bid, data in header.optional_blocks:
        click.echo(f"optional block {bid}: {data}")
    click.echo(f"key kcv: {_cv(key, 'aes' if header.algorithm == 'A' else 'tdes')}")
    if show_clear:
        click.echo(f"key: {key.hex().upper()}")


@keys.command("lmk-kcv")
@click.option(
    "--lmk", envvar="POSHOST_LMK", help="An LMK in hex (default: the host's, from its config)."
)
def lmk_kcv(lmk: str | None) -> None:
    """Show the check value of an LMK: by default the one the host uses (hsm.lmk,
    hsm.lmk_components, hsm.lmk_file or <data.dir>/lmk.hex of the config), never creating one."""
    try:
        hsm = SoftHSM.from_hex(lmk) if lmk else SoftHSM(_configured_lmk())
        click.echo(hsm.lmk_check_value)
    except KeysError as exc:
        _fail(exc)


def _configured_lmk() -> bytes:
    from pathlib import Path

    from host.config import ConfigError, config_file, load_settings
    from keys.lmk import xor_components

    try:
        settings = load_settings(config_file())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    hsm_cfg = settings.hsm
    if hsm_cfg.lmk:
        return _hex(hsm_cfg.lmk, "hsm.lmk")
    if hsm_cfg.lmk_components:
        return xor_components(list(hsm_cfg.lmk_components))
    path = Path(hsm_cfg.lmk_file or settings.data_dir / "lmk.hex")
    if not path.exists():
        raise click.ClickException(
            f"no LMK at {path}: the host generates one on its first start (make run); "
            "or use `poshost --config FILE` / --lmk"
        )
    return _hex(path.read_text().strip(), str(path))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(keys())
