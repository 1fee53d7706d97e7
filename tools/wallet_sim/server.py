"""wallet-sim: the wallet platform side of the QR link (docs/qr.md).

The gateway (``POST /gateway.do``) takes the acquirer's signed requests (``trade.pay``,
``trade.precreate``, ``trade.query``, ``trade.cancel``, ``trade.close``, ``trade.refund``) and
answers signed with the platform's key; ``GET /health`` answers the link's probe. A notifier
delivers signed asynchronous notifications of payments with retries; the control endpoint
(tools/wallet_sim/control.py) issues payment codes, confirms "user paying", pays orders and
injects faults. Python API for tests::

    sim = WalletSim(WalletSimConfig(state=..., key_dir=..., acquirer_public_key=...,
                                    listen="127.0.0.1:0", control="127.0.0.1:0"))
    ports = await nursery.start(sim.serve)   # (gateway port, control port)
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
import structlog
import trio

from codec import wallet as w
from codec.errors import CodecError
from host.harness import HttpServer
from keys import rsa_sign
from tools.wallet_sim.config import Faults, WalletSimConfig, parse_hostport
from tools.wallet_sim.ledger import Ledger, load_users

log = structlog.get_logger("wallet_sim")


class WalletSim:
    def __init__(self, config: WalletSimConfig):
        self.config = config
        self.faults: Faults = config.faults
        self.ledger = Ledger(config.state, timezone=config.timezone)
        if self.ledger.is_empty():
            self.ledger.reset(load_users(config.users))
        self.key = rsa_sign.load_or_create(config.platform_private_key, config.platform_public_key)
        self._acquirer_key: rsa_sign.VerifyKey | None = None
        self.rng = random.Random(config.seed)
        self.stats: dict[str, int] = {
            "requests": 0, "answered": 0, "dropped": 0, "bad_signature": 0, "malformed": 0,
            "notifications_sent": 0, "notifications_delivered": 0, "notifications_lost": 0,
            "notifications_failed": 0,
        }  # fmt: skip
        self._record = open(config.record, "a", encoding="utf-8") if config.record else None  # noqa: SIM115
        self.wakeup = trio.Event()

    def close(self) -> None:
        self.ledger.close()
        if self._record is not None:
            self._record.close()

    def now(self) -> float:
        return time.time()

    # -- keys -----------------------------------------------------------------------------------
    def acquirer_key(self) -> rsa_sign.VerifyKey | None:
        """The acquirer's public key, read when first needed (the host may write it after the
        simulator started)."""
        if self._acquirer_key is None and Path(self.config.acquirer_public_key).exists():
            self._acquirer_key = rsa_sign.load_public(Path(self.config.acquirer_public_key))
        return self._acquirer_key

    # -- running --------------------------------------------------------------------------------
    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from tools.wallet_sim.control import control_handler

        host, port = parse_hostport(self.config.listen)
        async with trio.open_nursery() as nursery:
            gateway = await nursery.start(_http(self._gateway).serve, host, port)
            control = None
            if self.config.control:
                chost, cport = parse_hostport(self.config.control)
                control = await nursery.start(_http(control_handler(self)).serve, chost, cport)
            nursery.start_soon(self._notifier)
            log.info("wallet-sim listening", gateway=f"{host}:{gateway}",
                     control=f"{self.config.control and chost}:{control}",
                     key=self.key.public.fingerprint)  # fmt: skip
            task_status.started((gateway, control))

    # -- the gateway ----------------------------------------------------------------------------
    async def _gateway(self, method: str, path: str, headers: dict[str, str], body: bytes):
        path = path.split("?", 1)[0]
        if method == "GET" and path == "/health":
            return 200, "application/json", b'{"ok":true}'
        if path != w.GATEWAY_PATH or method != "POST":
            return 404, "application/json", b'{"error":"not found"}'
        self.stats["requests"] += 1
        started = time.monotonic()
        try:
            params, call = w.parse_request(body)
        except CodecError as exc:
            self.stats["malformed"] += 1
            self._write_record(None, None, "malformed", started, error=str(exc))
            return 400, "application/json", json.dumps({"error": str(exc)}).encode()
        code, response = self._checked(params, call)
        if self.faults.latency_ms:
            await trio.sleep(self.faults.latency_ms / 1000)
        if self.faults.drop_rate and self.rng.random() < self.faults.drop_rate:
            self.stats["dropped"] += 1
            self._write_record(call, code, "dropped", started, response)
            return None
        self.stats["answered"] += 1
        response = {"code": code, "msg": response.pop("msg", "Success"), **response}
        self._write_record(call, code, "answered", started, response)
        answer = w.response_body(call.method, response, rsa_sign.sign(self.key, response))
        return 200, "application/json", answer

    def _checked(self, params: dict[str, Any], call: w.WalletCall) -> tuple[str, dict[str, Any]]:
        key = self.acquirer_key()
        if params.get("app_id") != self.config.app_id:
            return w.INVALID_PARAMETER, _refused("isv.invalid-app-id", "unknown app_id")
        if key is None or not rsa_sign.verify(key, params, params.get("sign")):
            self.stats["bad_signature"] += 1
            return w.INVALID_PARAMETER, _refused(w.INVALID_SIGNATURE, "signature does not verify")
        try:
            return self._dispatch(params, call)
        except (CodecError, KeyError, ValueError) as exc:
            return w.INVALID_PARAMETER, _refused("isv.missing-param", str(exc)[:100])

    def _dispatch(self, params: dict[str, Any], call: w.WalletCall) -> tuple[str, dict[str, Any]]:
        now, biz, ledger = self.now(), dict(call.biz), self.ledger
        notify_url = params.get("notify_url") or None
        ledger.expire(now, self.faults.user_paying_timeout)
        if call.method == "trade.pay":
            return ledger.pay(params["app_id"], biz, now, notify_url)
        if call.method == "trade.precreate":
            return ledger.precreate(params["app_id"], biz, now, notify_url,
                                    self.config.order_validity)  # fmt: skip
        if call.method == "trade.query":
            return ledger.query(biz)
        if call.method == "trade.cancel":
            return ledger.cancel(params["app_id"], biz, now)
        if call.method == "trade.close":
            return ledger.close_trade(biz, now)
        return ledger.refund(biz, now)

    def _write_record(self, call, code, outcome, started, response=None, error=None) -> None:
        if self._record is None:
            return
        biz = dict(call.biz) if call is not None else {}
        if "auth_code" in biz:
            biz["auth_code"] = w.mask_code(str(biz["auth_code"]))
        line = {
            "ts": round(time.time(), 3), "outcome": outcome,
            "method": call.method if call is not None else None, "biz": biz, "code": code,
            "sub_code": (response or {}).get("sub_code"),
            "trade_status": (response or {}).get("trade_status"),
            "elapsed_ms": round((time.monotonic() - started) * 1000, 2),
        }  # fmt: skip
        if error:
            line["error"] = error
        self._record.write(json.dumps(line) + "\n")
        self._record.flush()

    # -- notifications --------------------------------------------------------------------------
    def notification(self, trade: dict[str, Any], notify_id: str) -> dict[str, Any]:
        body = {
            "notify_id": notify_id,
            "notify_time": dt.datetime.fromtimestamp(self.now(), self.ledger.tz).strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "notify_type": w.NOTIFY_TYPE,
            "app_id": trade["app_id"],
            "out_trade_no": trade["out_trade_no"],
            "trade_no": trade["trade_no"],
            "trade_status": trade["status"],
            "total_amount": w.yuan(trade["amount"]),
            "buyer_id": trade["user_id"] or "",
            "sign_type": w.SIGN_TYPE,
        }
        body["sign"] = rsa_sign.sign(self.key, w.notification_signed_part(body))
        return body

    async def _notifier(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                with trio.move_on_after(0.2):
                    await self.wakeup.wait()
                self.wakeup = trio.Event()
                now = self.now()
                self.ledger.expire(now, self.faults.user_paying_timeout)
                for item in self.ledger.due_notifications(now):
                    await self._deliver(client, item)

    async def _deliver(self, client: httpx.AsyncClient, item: dict[str, Any]) -> None:
        lost = self.faults.notify_loss and self.rng.random() < self.faults.notify_loss
        if item["attempts"] == 0 and lost:
            self.stats["notifications_lost"] += 1
            self.ledger.notification_done(item["id"], "lost", "lost on purpose")
            log.info("notification lost on purpose", out_trade_no=item["out_trade_no"])
            return
        trade = self.ledger.trade(item["out_trade_no"])
        if trade is None:
            self.ledger.notification_done(item["id"], "failed", "no trade")
            return
        self.stats["notifications_sent"] += 1
        error = None
        try:
            resp = await client.post(item["url"], json=self.notification(trade, item["notify_id"]))
            if resp.status_code == 200 and resp.content.strip() == w.NOTIFY_ACK:
                self.stats["notifications_delivered"] += 1
                self.ledger.notification_done(item["id"], "delivered")
                return
            error = f"HTTP {resp.status_code}: {resp.content[:40]!r}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}"
        schedule = self.faults.notify_retry
        if item["attempts"] >= len(schedule):
            self.stats["notifications_failed"] += 1
            self.ledger.notification_done(item["id"], "failed", error)
            return
        self.ledger.notification_retry(item["id"], self.now() + schedule[item["attempts"]], error)

    # -- what the control endpoint and tests call --------------------------------------------
    def issue_code(self, user: str) -> str:
        return self.ledger.issue_code(user, self.now(), self.faults.code_ttl)

    def confirm(self, *, user: str | None = None, out_trade_no: str | None = None):
        trade = self.ledger.confirm(self.now(), user_id=user, out_trade_no=out_trade_no)
        self.wakeup.set()
        return trade

    def pay_order(self, qr: str, user: str):
        result = self.ledger.pay_order(qr, user, self.now())
        self.wakeup.set()
        return result

    def update_faults(self, changes: dict[str, Any]) -> Faults:
        self.faults = self.faults.updated(changes)
        log.info("settings changed", **self.faults.to_json())
        return self.faults

    def reset(self) -> None:
        self.ledger.reset(load_users(self.config.users))


def _refused(sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"msg": "Invalid Arguments", "sub_code": sub_code, "sub_msg": sub_msg}


def _http(handler) -> HttpServer:
    """The host's small HTTP server (keep-alive, timeouts, size caps) for a wallet-sim handler:
    ``async (method, target, headers, body) -> (status, content type, body)``, or None to close
    without answering (an injected drop)."""

    async def answer(method: str, target: str, headers: dict[str, str], _peer, body: bytes):
        reply = await handler(method, target, headers, body)
        return None if reply is None else (*reply, [])

    return HttpServer(answer, name="wallet_sim", max_body=64 * 1024)
