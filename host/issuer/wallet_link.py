"""The wallet link: HTTP + JSON to a QR wallet platform (docs/qr.md), the I/O edge of the
wallet protocol (``host.issuer.wallet_protocol``).

It keeps one pooled HTTP client (httpx, under Trio), the acquirer's key pair (made on first
start in the data directory, the public half written next to it for the platform) and the
platform's public key (read when first needed: the platform may publish it after the host
started). A probe of the platform's ``/health`` says whether the link is up, so a QR sale is
answered 91 at once while the wallet is unreachable.

The money rule is the card link's: ``request`` raises ``LinkDown`` only when the request
certainly never left (no connection could be made), and an ``OutcomeUnknown`` for everything
after that (timeout, broken connection, an answer that is not the platform's signed one).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import httpx
import structlog
import trio

from codec import wallet as w
from codec.errors import CodecError
from host.issuer.link import LinkDown, LinkLost, LinkTimeout
from host.issuer.wallet_protocol import WALLET, WalletProtocol
from keys import rsa_sign

log = structlog.get_logger("poshost.wallet")

# The wallets' timestamp is local time in their zone.
_TZ = dt.timezone(dt.timedelta(hours=8))


@attrs.define
class WalletLink:
    name: str
    host: str
    port: int
    app_id: str
    key: rsa_sign.SigningKey = attrs.field(repr=False)
    platform_key_file: Path
    timeout: float = 10.0
    probe_interval: float = 5.0
    notify_url: str | None = None
    protocol: WalletProtocol = WALLET

    _client: httpx.AsyncClient | None = attrs.field(default=None, init=False)
    _up: trio.Event = attrs.field(factory=trio.Event, init=False)
    _platform: rsa_sign.VerifyKey | None = attrs.field(default=None, init=False)
    stats: dict[str, int] = attrs.field(
        factory=lambda: {"sent": 0, "answered": 0, "unknown": 0, "refused": 0}
    )

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    async def wait_up(self) -> None:
        await self._up.wait()

    def platform_key(self) -> rsa_sign.VerifyKey | None:
        if self._platform is None and self.platform_key_file.exists():
            try:
                self._platform = rsa_sign.load_public(self.platform_key_file)
                log.info("wallet_platform_key", link=self.name, key=self._platform.fingerprint)
            except rsa_sign.SignatureKeyError as exc:
                log.warning("wallet_platform_key_unusable", link=self.name, error=str(exc))
        return self._platform

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        timeout = httpx.Timeout(self.timeout, connect=min(2.0, self.timeout))
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=4)
        base = f"http://{self.host}:{self.port}"
        async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
            self._client = client
            task_status.started()
            try:
                while True:
                    await self._probe(client)
                    await trio.sleep(self.probe_interval if self.is_up else 0.5)
            finally:
                self._client = None
                self._up = trio.Event()

    async def _probe(self, client: httpx.AsyncClient) -> None:
        ok = False
        try:
            with trio.move_on_after(self.timeout):
                resp = await client.get("/health")
                ok = resp.status_code == 200 and self.platform_key() is not None
        except httpx.HTTPError:
            ok = False
        if ok and not self.is_up:
            self._up.set()
            log.info("link_up", link=self.name, peer=f"{self.host}:{self.port}")
        elif not ok and self.is_up:
            self._up = trio.Event()
            log.warning("link_down", link=self.name, peer=f"{self.host}:{self.port}")

    async def request(self, call: w.WalletCall) -> w.WalletReply:
        """Send one signed call and return the platform's signed answer (docstring above for
        what is raised when)."""
        client, platform = self._client, self.platform_key()
        if client is None or platform is None or not self.is_up:
            raise LinkDown(self.name)
        stamp = dt.datetime.now(_TZ).strftime("%Y-%m-%d %H:%M:%S")
        body = self.protocol.request_body(call, app_id=self.app_id, key=self.key,
                                          timestamp=stamp, notify_url=self.notify_url)  # fmt: skip
        self.stats["sent"] += 1
        try:
            with trio.fail_after(self.timeout):
                resp = await client.post(
                    w.GATEWAY_PATH, content=body, headers={"content-type": "application/json"}
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self._up = trio.Event()  # the probe brings it back
            raise LinkDown(f"{self.name}: {type(exc).__name__}") from exc
        except (trio.TooSlowError, httpx.TimeoutException) as exc:
            self.stats["unknown"] += 1
            raise LinkTimeout(self.name) from exc
        except httpx.HTTPError as exc:
            self.stats["unknown"] += 1
            raise LinkLost(f"{self.name}: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            self.stats["unknown"] += 1
            raise LinkLost(f"{self.name}: HTTP {resp.status_code}")
        try:
            reply = self.protocol.read_reply(call.method, resp.content, platform)
        except CodecError as exc:
            self.stats["unknown"] += 1
            log.warning("wallet_bad_answer", link=self.name, method=call.method, error=str(exc))
            raise LinkLost(f"{self.name}: {exc}") from exc
        self.stats["answered"] += 1
        if reply.code == w.INVALID_PARAMETER:
            self.stats["refused"] += 1
            log.warning("wallet_refused_request", link=self.name, method=call.method,
                        sub_code=reply.sub_code)  # fmt: skip
        return reply


def acquirer_key_paths(data_dir: Path, configured: str | None) -> tuple[Path, Path]:
    """The acquirer's private key file (configured, else in the data directory) and where its
    public half is published for the platform."""
    private = Path(configured) if configured else data_dir / "wallet_acquirer.pem"
    return private, private.with_name(private.stem + "_public.pem")
