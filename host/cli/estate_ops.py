"""``poshost estate limits`` and ``poshost estate terms``: risk limits per MCC or merchant, and
a merchant's settlement and operator terms (registered on the estate group)."""

from __future__ import annotations

import click

from host.cli.common import opened, print_json, print_table
from host.cli.estate import MCC, MID, estate
from host.cli.inputs import hex_values
from host.config import ConfigError, config_file, load_settings
from host.merchant.risk import resolve_limits
from host.store.merchant_records import LIMIT_FIELDS

_config_option_estate = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="Host config."
)


def _limit_options(fn):
    for name in reversed(LIMIT_FIELDS):
        opt = "--" + name.replace("_", "-")
        fn = click.option(opt, name, type=click.IntRange(0), help=f"{name} (0 = off).")(fn)
    return fn


@estate.group()
def limits() -> None:
    """Risk limits: per merchant category (--mcc) or per merchant (--mid). Amounts in fen."""


@limits.command("set")
@click.option("--mcc", callback=MCC, help="Set the limits of this merchant category.")
@click.option("--mid", callback=MID, help="Set the limits of this merchant.")
@_limit_options
@click.pass_context
def limits_set(ctx: click.Context, mcc: str | None, mid: str | None, **values) -> None:
    """Set limits (only the ones given change); e.g. --mid M --monthly-amount 30000000."""
    if (mcc is None) == (mid is None):
        raise click.UsageError("give exactly one of --mcc, --mid")
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one limit")
    with opened(ctx) as store:
        if mid:
            store.get_merchant(mid)
        store.set_risk_limits("mcc" if mcc else "merchant", mcc or mid, given)
    click.echo(f"limits of {'MCC ' + mcc if mcc else 'merchant ' + mid} set")


@limits.command("clear")
@click.option("--mcc", callback=MCC)
@click.option("--mid", callback=MID)
@click.pass_context
def limits_clear(ctx: click.Context, mcc: str | None, mid: str | None) -> None:
    """Remove an override row (its limits are inherited again)."""
    if (mcc is None) == (mid is None):
        raise click.UsageError("give exactly one of --mcc, --mid")
    with opened(ctx) as store:
        store.delete_risk_limits("mcc" if mcc else "merchant", mcc or mid)
    click.echo("limits cleared")


@limits.command("show")
@click.option("--mid", callback=MID, help="The limits in force for this merchant.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Host config.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def limits_show(ctx: click.Context, mid: str | None, config_path, as_json: bool) -> None:
    """Override rows, or (with --mid) the effective limits of one merchant."""
    with opened(ctx) as store:
        if mid:
            merchant = store.get_merchant(mid)
            rows = store.get_risk_limit_rows(mid, merchant.mcc)
        else:
            rows = store.list_risk_limits()
    if mid:
        try:
            settings = load_settings(config_file(config_path))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        import attrs

        effective = attrs.asdict(resolve_limits(settings.risk, merchant.mcc, rows))
        if as_json:
            print_json(effective)
            return
        print_table(["LIMIT", "VALUE"], [[k, v or "off"] for k, v in effective.items()])
        return
    data = [{"scope": r.scope, "key": r.key, **r.values()} for r in rows]
    if as_json:
        print_json(data)
        return
    headers = ["scope", "key", *LIMIT_FIELDS]
    print_table([h.upper() for h in headers], [[d.get(h) for h in headers] for d in data])


@estate.group()
def terms() -> None:
    """A merchant's terms: settlement cycle, fee rates, minimum payout, operator rules, what
    a secondary terminal may do (docs/tills.md)."""


def _rate(_ctx, _param, value):
    if value is None:
        return None
    from decimal import Decimal, InvalidOperation

    try:
        rate = Decimal(value)
    except InvalidOperation as exc:
        raise click.BadParameter(f"a fee rate is a percent such as 0.60, not {value!r}") from exc
    if not Decimal(0) <= rate < Decimal(100):
        raise click.BadParameter("a fee rate is a percent between 0 and 100")
    return str(rate)


@terms.command("set")
@click.argument("mid", callback=MID)
@click.option("--cycle", type=click.Choice(["T1", "D0"]), help="Settlement cycle.")
@click.option("--fee-rate", callback=_rate, help="Card T+1 fee, percent (e.g. 0.60).")
@click.option("--d0-fee-rate", callback=_rate, help="Card D0 fee, percent (e.g. 0.70).")
@click.option("--qr-fee-rate", callback=_rate, help="QR wallet T+1 fee, percent (e.g. 0.38).")
@click.option("--qr-d0-fee-rate", callback=_rate, help="QR wallet D0 fee, percent (e.g. 0.48).")
@click.option("--min-payout", type=click.IntRange(0), help="Minimum payout in fen.")
@click.option("--require-operator/--no-require-operator", default=None,
              help="Sign-on must name a valid operator with the password.")  # fmt: skip
@click.option(
    "--supervisor-types", help="Comma list of types needing a supervisor, e.g. void,refund."
)
@click.option(
    "--secondary-may-void-others/--no-secondary-may-void-others",
    default=None,
    help="A secondary terminal may void another till's sale (docs/tills.md).",
)
@click.option(
    "--secondary-may-refund/--no-secondary-may-refund",
    default=None,
    help="A secondary terminal may refund its own sales.",
)
@click.option("--secondary-may-refund-others/--no-secondary-may-refund-others", default=None,
              help="A secondary terminal may refund another till's sale.")  # fmt: skip
@click.pass_context
def terms_set(ctx: click.Context, mid: str, **values) -> None:
    """Set a merchant's terms (only the ones given change)."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one term")
    with opened(ctx) as store:
        store.set_merchant_terms(mid, given)
    click.echo(f"terms of merchant {mid} set")


@terms.command("show")
@click.argument("mid", callback=MID)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Host config.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def terms_show(ctx: click.Context, mid: str, config_path, as_json: bool) -> None:
    """The terms in force for a merchant (its own, else the configured defaults)."""
    import attrs

    from host.merchant.operators import effective_terms

    with opened(ctx) as store:
        row = store.get_merchant_terms(mid)
    try:
        settings = load_settings(config_file(config_path))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    data = attrs.asdict(effective_terms(settings.merchant, row))
    if as_json:
        print_json(data)
        return
    from host.formatting import format_amount

    print_table(
        ["TERM", "VALUE"],
        [[k, format_amount(v) if k == "min_payout" else v] for k, v in data.items()],
    )


# -- activation: devices' transport keys and one-time codes (host/merchant/activation.py) ---


@estate.group()
def device() -> None:
    """Devices (by serial number, TUSN) and their transport keys for activation."""


@device.command("enroll")
@click.argument("serial")
@click.option("--component", "components", multiple=True, callback=hex_values,
              help="Transport key component (hex).")  # fmt: skip
@click.option("--token", "token_text", help="An LMK token of the transport key (a KEK).")
@click.option(
    "--kdk-clear-test-key",
    "kdk_hex",
    callback=hex_values,
    help="Derive from a TEST KDK (README); needs the flag.",
)
@click.option("--i-know-this-is-a-clear-test-key", "test_ok", is_flag=True)
@click.option("--replace", is_flag=True, help="Replace an enrolled key.")
@_config_option_estate
@click.pass_context
def device_enroll(ctx, serial, components, token_text, kdk_hex, test_ok, replace, config_path):
    """Enroll a device's transport key: components, a token, or derived from a test KDK."""
    from host.app import hsm_options, load_lmk
    from host.merchant.activation import derive_transport_key
    from keys.checkvalue import kcv
    from keys.errors import KeysError
    from keys.hsm import SoftHSM
    from keys.tokens import KeyToken, KeyType

    if sum([bool(components), bool(token_text), bool(kdk_hex)]) != 1:
        raise click.UsageError("give exactly one of --component, --token, --kdk-clear-test-key")
    if kdk_hex and not test_ok:
        raise click.UsageError("a clear KDK is for test estates only: add the flag")
    try:
        settings = load_settings(config_file(config_path))
        lmk, _source = load_lmk(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    # An offline estate tool: ceremony mode for components; clear keys only with the test flag.
    hsm = SoftHSM(lmk, ceremony=True, clear_test_keys=test_ok, **hsm_options(settings))
    try:
        if components:
            parts = [bytes.fromhex(c) for c in components]
            if len(parts) < 2:
                raise click.UsageError("components come in twos or more")
            for n, part in enumerate(parts, 1):
                click.echo(f"component {n} kcv: {kcv(part).hex().upper()}")
            token = hsm.import_components(KeyType.KEK, parts)
        elif token_text:
            token = KeyToken.from_text(token_text)
            if token.key_type is not KeyType.KEK:
                raise click.UsageError("a transport key token is a KEK")
        else:
            transport = derive_transport_key(bytes.fromhex(kdk_hex), serial)
            token = hsm.import_clear(KeyType.KEK, transport)
    except (KeysError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    with opened(ctx) as store:
        store.enroll_device(serial, token.to_text(), replace=replace)
    click.echo(f"device {serial} enrolled, transport key kcv {token.check_value}")


@estate.group("activation-code")
def activation_code() -> None:
    """One-time activation codes for new terminals."""


@activation_code.command("issue")
@click.argument("tid")
@click.option("--serial", help="Only the device with this TUSN may use it (default: the "
              "terminal's enrolled serial, if any).")  # fmt: skip
@click.option("--ttl", type=click.IntRange(60), help="Seconds it stays valid (config default).")
@_config_option_estate
@click.pass_context
def activation_code_issue(ctx, tid, serial, ttl, config_path) -> None:
    """Issue a code for TID (printed once; stored only as a hash). Voids earlier codes."""
    import time

    from host.merchant.activation import hash_code, new_code

    try:
        settings = load_settings(config_file(config_path))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    ttl = ttl or settings.activation.code_ttl
    code = new_code()
    expires = int(time.time() * 1000) + ttl * 1000
    with opened(ctx) as store:
        store.add_activation_code(
            tid, hash_code(code), expires_at=expires,
            max_tries=settings.activation.max_tries, serial=serial,
        )  # fmt: skip
    click.echo(f"activation code for {tid}: {code} (valid {ttl // 60} minutes, single use)")


# -- back-office API tokens (host/backoffice) --------------------------------------------------


@estate.group()
def token() -> None:
    """Back-office API tokens, one merchant each (stored hashed)."""


@token.command("issue")
@click.argument("mid", callback=MID)
@click.option("--label", help="What the token is for.")
@click.option("--expires", help="30d, 12h, 90m, 2w from now, or a date (2026-12-31, through that "
              "day UTC) or date-time. Default: no expiry.")  # fmt: skip
@click.pass_context
def token_issue(ctx: click.Context, mid: str, label: str | None, expires: str | None) -> None:
    """Issue a token for MID (printed once; only its SHA-256 digest is stored)."""
    import datetime as dt

    from host.backoffice.tokens import new_token, parse_expiry

    expires_at = None
    if expires:
        now = dt.datetime.now(dt.UTC)
        try:
            moment = parse_expiry(expires, now)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from exc
        if moment <= now:
            raise click.BadParameter(f"{moment.isoformat()} is past", param_hint="--expires")
        expires_at = int(moment.timestamp() * 1000)
    secret, hashed = new_token()
    with opened(ctx) as store:
        token_id = store.add_api_token(mid, hashed, label, expires_at=expires_at)
    click.echo(f"pht_{token_id}_{secret}")


@token.command("list")
@click.option("--mid", callback=MID)
@click.pass_context
def token_list(ctx: click.Context, mid: str | None) -> None:
    """Tokens (never their secrets): when each expires and whether it still works."""
    import time

    from host.backoffice.tokens import is_legacy
    from host.cli.common import when

    with opened(ctx) as store:
        rows = store.list_api_tokens(mid)
    now = int(time.time() * 1000)

    def state(t) -> str:
        if t.revoked_at is not None:
            return "revoked"
        if t.expires_at is not None and t.expires_at <= now:
            return "expired"
        return "active (legacy hash)" if is_legacy(t.token_hash) else "active"

    print_table(
        ["ID", "MID", "LABEL", "CREATED", "EXPIRES", "REVOKED", "STATE"],
        [[t.id, t.mid, t.label, when(t.created_at), when(t.expires_at), when(t.revoked_at),
          state(t)] for t in rows],
    )  # fmt: skip


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_context
def token_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke a token: its next request is refused, in every API process on this journal."""
    with opened(ctx) as store:
        store.revoke_api_token(token_id)
    click.echo(f"token {token_id} revoked")
