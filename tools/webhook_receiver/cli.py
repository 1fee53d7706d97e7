"""`poshost webhook-receiver`: receive a merchant's webhooks, verify them, print them."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("webhook-receiver")
@click.option("--port", type=click.IntRange(0, 65535), default=8600, show_default=True)
@click.option("--host", "bind", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--secret-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The merchant's signing secret (what `estate merchant webhook set` printed or read).",
)
@click.option("--tolerance", default=300, show_default=True, type=click.IntRange(1),
              help="Seconds a signature's timestamp may differ from this clock.")  # fmt: skip
@click.option("--fail-first", default=0, type=click.IntRange(0),
              help="Answer 503 to the first N requests (a server that is down).")  # fmt: skip
@click.option("--delay", default=0.0, type=click.FloatRange(0), help="Seconds before answering.")
def webhook_receiver(
    port: int, bind: str, secret_file: Path, tolerance: int, fail_first: int, delay: float
) -> None:
    """Verify each webhook's signature and print each event as a JSON line (docs/webhooks.md).
    A repeated event id is acknowledged and printed with "duplicate": true."""
    from keys import webhook as signing
    from tools.webhook_receiver.server import ReceiverState, serve

    try:
        secret = signing.check_secret(secret_file.read_text())
    except (signing.WebhookSecretError, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--secret-file") from exc
    state = ReceiverState(secret, tolerance=tolerance, fail_first=fail_first, delay=delay)
    server = serve(state, bind, port)
    click.echo(f"webhook-receiver listening on {bind}:{server.server_address[1]}", err=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        sys.exit(0)
    finally:
        server.server_close()
