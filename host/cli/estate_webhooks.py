"""``poshost estate merchant webhook``: a merchant's real-time notifications (docs/webhooks.md).

The secret is printed once, when the host generates it, and never again: the journal keeps it
sealed under the host's webhook key (the data directory's ``webhook.key``, or
``webhooks.sealing_key``), and ``show`` prints only its check value. So this command reads the
same config as ``serve`` (``poshost --config FILE``) to find that key.
"""

from __future__ import annotations

from pathlib import Path

import click

from host.cli.common import opened, print_json, print_table, when
from host.cli.estate import MID, merchant
from host.config import ConfigError, config_file, load_settings


def _sealing_key() -> bytes:
    from host.merchant.webhooks import load_sealing_key

    try:
        return load_sealing_key(load_settings(config_file()))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@merchant.group()
def webhook() -> None:
    """Real-time notifications: every final outcome POSTed, signed, to the merchant's URL."""


@webhook.command("set")
@click.argument("mid", callback=MID)
@click.argument("url")
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the signing secret from this file (16-256 printable characters). Without it "
    "the host generates one and prints it once.",
)
@click.pass_context
def webhook_set(ctx: click.Context, mid: str, url: str, secret_file: Path | None) -> None:
    """Send MID's events to URL (replaces an earlier URL and secret)."""
    from host.merchant.webhooks import check_url
    from keys import webhook as signing

    try:
        check_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from exc
    generated = secret_file is None
    try:
        secret = (
            signing.new_secret() if generated else signing.check_secret(secret_file.read_text())
        )
    except (signing.WebhookSecretError, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--secret-file") from exc
    sealed = signing.seal(_sealing_key(), mid, secret)
    check = signing.check_value(secret)
    with opened(ctx) as store:
        store.set_webhook(mid, url, sealed, check)
    click.echo(f"webhook of merchant {mid}: {url} (secret check value {check})")
    if generated:
        click.echo(f"signing secret (shown this once; give it to the receiver): {secret}")


@webhook.command("show")
@click.argument("mid", callback=MID)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def webhook_show(ctx: click.Context, mid: str, as_json: bool) -> None:
    """The URL, the secret's check value (never the secret) and the events by state."""
    with opened(ctx) as store:
        store.get_merchant(mid)
        hook = store.get_webhook(mid)
        counts = store.count_webhook_events(mid)
    data = {
        "mid": mid,
        "url": hook.url if hook else None,
        "secret_check": hook.secret_check if hook else None,
        "created_at": hook.created_at if hook else None,
        "updated_at": hook.updated_at if hook else None,
        "events": counts,
    }
    if as_json:
        print_json(data)
        return
    if hook is None:
        click.echo(f"merchant {mid} has no webhook")
    rows = [["url", data["url"]], ["secret check value", data["secret_check"]],
            ["set", when(data["updated_at"])]] if hook else []  # fmt: skip
    rows += [[f"events {state}", n] for state, n in counts.items()]
    print_table(["WEBHOOK", "VALUE"], rows)


@webhook.command("clear")
@click.argument("mid", callback=MID)
@click.pass_context
def webhook_clear(ctx: click.Context, mid: str) -> None:
    """Stop sending MID's events (pending ones fail at their next attempt)."""
    with opened(ctx) as store:
        store.clear_webhook(mid)
    click.echo(f"webhook of merchant {mid} cleared")


@webhook.command("log")
@click.argument("mid", callback=MID)
@click.option("--event", "event_id", help="Only this event's attempts.")
@click.option("--events", "show_events", is_flag=True, help="The events, not the attempts.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def webhook_log(
    ctx: click.Context,
    mid: str,
    event_id: str | None,
    show_events: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Delivery attempts (status code, latency), newest first; or the events (--events)."""
    with opened(ctx) as store:
        store.get_merchant(mid)
        if show_events:
            events = store.list_webhook_events(mid=mid, limit=limit)
            if as_json:
                print_json([e.to_dict() for e in events])
                return
            print_table(
                ["EVENT", "KIND", "TXN", "STATUS", "ATTEMPTS", "CREATED", "LAST ERROR"],
                [[e.event_id, e.kind, e.transaction_id, e.status, e.attempts,
                  when(e.created_at), e.last_error] for e in events],
            )  # fmt: skip
            return
        attempts = store.list_webhook_deliveries(mid=mid, event_id=event_id, limit=limit)
        kinds = {e: store.get_webhook_event(e).kind for e in {a.event_id for a in attempts}}
    if as_json:
        print_json([{**a.to_dict(), "kind": kinds[a.event_id]} for a in attempts])
        return
    print_table(
        ["AT", "EVENT", "KIND", "ATTEMPT", "HTTP", "LATENCY MS", "ERROR"],
        [[when(a.at), a.event_id, kinds[a.event_id], a.attempt, a.status_code, a.latency_ms,
          a.error] for a in attempts],
    )  # fmt: skip


@webhook.command("resend")
@click.argument("event_id")
@click.pass_context
def webhook_resend(ctx: click.Context, event_id: str) -> None:
    """Deliver an event again (same id and body, so the receiver can tell it is a repeat)."""
    with opened(ctx) as store:
        event = store.resend_webhook_event(event_id)
    click.echo(f"event {event.event_id} ({event.kind}, merchant {event.mid}) queued again")
