"""Delivering merchant webhooks: the worker that POSTs the journal's outbox (docs/webhooks.md).

Events are written by the journal itself, in the transaction of the outcome they report
(host/store/webhooks.py); this worker only delivers them. It looks at the outbox every
``webhooks.poll_interval`` seconds, takes the due events (moving their next attempt past the
request's timeout first, so nothing else sends them meanwhile), and POSTs each one's fixed
body, signed with the merchant's secret, to the merchant's current URL. A 2xx answer delivers
it; anything else (another status, a refused connection, a timeout) is logged as an attempt
and retried after ``retry_min`` seconds, doubling up to ``retry_max``, until ``give_up_after``
seconds have passed since the event was made (or re-sent): then it is marked failed.

Delivery is at least once: a crash after the receiver answered but before the journal
recorded it sends the event again after the restart, with the same event id and body. The
receiver dedupes on ``Poshost-Event-Id``. Log lines name the merchant, the event, the
endpoint's host and the outcome; never the secret, the signature or the URL's query.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import structlog
import trio

from host.config import ConfigError, Settings
from keys import webhook as signing

log = structlog.get_logger("poshost.webhooks")

USER_AGENT = "poshost-webhooks/1"


def retry_delay_ms(attempts: int, retry_min: float, retry_max: float) -> int:
    """The wait after the ``attempts``-th failed attempt (1, 2, ...): retry_min doubled each
    time, at most retry_max (1 s, 2 s, 4 s ... 1 h by default)."""
    delay = retry_min * (2 ** min(max(attempts - 1, 0), 30))
    return int(min(delay, retry_max) * 1000)


def check_url(url: str) -> str:
    """An http(s) URL with a host, or ValueError (the CLI refuses it where it is typed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a webhook URL is http:// or https:// with a host, not {url!r}")
    if parts.username or parts.password:
        raise ValueError("a webhook URL carries no user or password: the signature authenticates")
    return url


def url_for_log(url: str) -> str:
    """Scheme, host and path: a query may hold a merchant's own token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def load_sealing_key(settings: Settings) -> bytes:
    """The key that seals webhook secrets in the journal: ``webhooks.sealing_key`` (hex), else
    ``<data.dir>/webhook.key``, created (mode 0600) on first use."""
    configured = settings.webhooks.sealing_key
    if configured:
        try:
            key = bytes.fromhex(configured)
        except ValueError as exc:
            raise ConfigError("webhooks.sealing_key must be hex") from exc
        if len(key) != signing.SEALING_KEY_BYTES:
            raise ConfigError("webhooks.sealing_key must be 32 bytes (64 hex)")
        return key
    path = settings.data_dir / "webhook.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(signing.SEALING_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


class WebhookWorker:
    """Takes due events from the outbox and delivers them, ``concurrency`` at a time."""

    def __init__(self, host: Any, sealing_key: bytes):
        cfg = host.settings.webhooks
        self.host = host
        self.store = host.store
        self.sealing_key = sealing_key
        self.poll_interval = cfg.poll_interval
        self.timeout = cfg.timeout
        self.retry_min = cfg.retry_min
        self.retry_max = cfg.retry_max
        self.give_up_after_ms = int(cfg.give_up_after * 1000)
        self.concurrency = max(1, cfg.concurrency)
        self.in_flight: set[str] = set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        import httpx  # only the worker needs it: the CLI's imports stay light

        timeout = httpx.Timeout(self.timeout)
        limits = httpx.Limits(max_connections=self.concurrency)
        async with (
            httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False) as client,
            trio.open_nursery() as nursery,
        ):
            task_status.started()
            while True:
                free = self.concurrency - len(self.in_flight)
                events = []
                if free > 0 and await self.store.webhook_events_due():
                    events = await self.store.claim_webhook_events(self.hold_ms, limit=free)
                for event in events:
                    if event.event_id not in self.in_flight:
                        self.in_flight.add(event.event_id)
                        nursery.start_soon(self._deliver_guarded, client, event)
                if len(events) < free or free <= 0:
                    await trio.sleep(self.poll_interval)

    @property
    def hold_ms(self) -> int:
        """How long a taken event is left alone: its request's timeout, and a margin."""
        return int((self.timeout + 5.0) * 1000)

    async def _deliver_guarded(self, client: Any, event: Any) -> None:
        try:
            await self.deliver(client, event)
        except Exception:
            # A bug or a journal failure: the event stays pending and is taken again once its
            # hold expires. Never let one event stop the worker.
            log.exception("webhook_delivery_error", mid=event.mid, event_id=event.event_id)
        finally:
            self.in_flight.discard(event.event_id)

    async def deliver(self, client: Any, event: Any) -> str:
        """One attempt at ``event``; returns its state afterwards (delivered/pending/failed)."""
        import httpx

        hook = await self.store.get_webhook(event.mid)
        if hook is None:
            return await self._record(event, "", None, 0, "no webhook configured", final=True)
        secret = signing.unseal(self.sealing_key, event.mid, hook.sealed_secret)
        body = event.payload.encode("utf-8")
        # Wall-clock time, not the host's business clock: the receiver checks t= against its
        # own clock (a test host running on a fixed day must still be believed).
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            signing.EVENT_ID_HEADER: event.event_id,
            signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, body),
        }
        del secret
        started = trio.current_time()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(hook.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__  # its text may quote the URL
        latency_ms = int((trio.current_time() - started) * 1000)
        return await self._record(event, hook.url, status_code, latency_ms, error)

    async def _record(
        self,
        event: Any,
        url: str,
        status_code: int | None,
        latency_ms: int,
        error: str | None,
        *,
        final: bool = False,
    ) -> str:
        delivered = error is None
        state = await self.store.record_webhook_attempt(
            event.event_id,
            url=url_for_log(url) if url else "",
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
            delivered=delivered,
            retry_in_ms=retry_delay_ms(event.attempts + 1, self.retry_min, self.retry_max),
            give_up_after_ms=0 if final else self.give_up_after_ms,
        )
        line = log.info if delivered else log.warning
        line("webhook_delivered" if delivered else "webhook_attempt_failed", mid=event.mid,
             event_id=event.event_id, kind=event.kind, attempt=event.attempts + 1,
             status=status_code, latency_ms=latency_ms, error=error, state=state,
             endpoint=url_for_log(url) if url else None)  # fmt: skip
        return state


async def webhook_worker(host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The worker `poshost serve` runs (``webhooks.enabled``)."""
    worker = WebhookWorker(host, load_sealing_key(host.settings))
    await worker.run(task_status=task_status)
