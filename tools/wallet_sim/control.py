"""wallet-sim's control endpoint (``--control 127.0.0.1:8591``), JSON in and out:

GET  /settings              faults in force: latency_ms, drop_rate, notify_loss, code_ttl,
                            user_paying_timeout, notify_retry
PUT  /settings              change any of them
GET  /stats                 counters
GET  /users                 users and balances
POST /users/<id>/code       a fresh one-time payment code (the previous one stops working)
POST /users/<id>/codes      {"count": N, "ttl": S}: N codes valid together (load generators)
POST /confirm               {"user": ID} or {"out_trade_no": N}: the user types the password
POST /pay                   {"qr": CONTENT, "user": ID}: the user pays a merchant's QR
GET  /trades/<out_trade_no> the trade (payment code masked) and its notifications
GET  /bill?date=YYYYMMDD    the daily bill (CSV)
POST /reset                 users back to the users file; trades, codes, refunds dropped
"""

from __future__ import annotations

import json
from typing import Any

from tools.wallet_sim.bill import bill_csv


def control_handler(sim):
    async def handle(method: str, target: str, headers: dict[str, str], body: bytes):
        path, _, query = target.partition("?")
        try:
            data = json.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            status, payload = route(sim, method, path, query, data)
        except ValueError as exc:
            status, payload = 400, {"error": str(exc)}
        if isinstance(payload, str):
            return status, "text/csv", payload.encode()
        return status, "application/json", (json.dumps(payload) + "\n").encode()

    return handle


def _trade(trade: dict[str, Any] | None) -> dict[str, Any] | None:
    if trade is None:
        return None
    return {k: v for k, v in trade.items() if k not in ("code_hash",)}


def route(sim, method: str, path: str, query: str, data: dict[str, Any]):
    parts = [p for p in path.split("/") if p]
    if parts == ["settings"]:
        if method == "GET":
            return 200, sim.faults.to_json()
        if method in ("PUT", "POST", "PATCH"):
            return 200, sim.update_faults(data).to_json()
    if parts == ["stats"] and method == "GET":
        return 200, dict(sim.stats)
    if parts == ["users"] and method == "GET":
        return 200, [_user(u) for u in sim.ledger.users()]
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "code" and method == "POST":
        try:
            code = sim.issue_code(parts[1])
        except KeyError:
            return 404, {"error": f"no user {parts[1]!r}"}
        return 200, {"user": parts[1], "code": code, "valid_seconds": sim.faults.code_ttl}
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "codes" and method == "POST":
        count, ttl = int(data.get("count", 1)), float(data.get("ttl", sim.faults.code_ttl))
        if not 1 <= count <= 100_000 or ttl <= 0:
            raise ValueError("count 1..100000 and ttl > 0")
        try:
            codes = sim.ledger.issue_codes(parts[1], sim.now(), ttl, count)
        except KeyError:
            return 404, {"error": f"no user {parts[1]!r}"}
        return 200, {"user": parts[1], "codes": codes, "valid_seconds": ttl}
    if parts == ["confirm"] and method == "POST":
        trade = sim.confirm(user=data.get("user"), out_trade_no=data.get("out_trade_no"))
        if trade is None:
            return 404, {"error": "no payment waits for this user's password"}
        return 200, _trade(trade)
    if parts == ["pay"] and method == "POST":
        if not data.get("qr") or not data.get("user"):
            raise ValueError("needs qr and user")
        result, trade = sim.pay_order(str(data["qr"]), str(data["user"]))
        return (200 if result == "paid" else 409), {"result": result, "trade": _trade(trade)}
    if len(parts) == 2 and parts[0] == "trades" and method == "GET":
        trade = sim.ledger.trade(parts[1])
        if trade is None:
            return 404, {"error": "no such trade"}
        return 200, {"trade": _trade(trade), "notifications": sim.ledger.notifications(parts[1])}
    if parts == ["bill"] and method == "GET":
        day = dict(p.partition("=")[::2] for p in query.split("&") if p).get("date", "")
        if len(day) != 8 or not day.isdigit():
            raise ValueError("date=YYYYMMDD")
        return 200, bill_csv(sim.ledger, day, sim.config.app_id)
    if parts == ["reset"] and method == "POST":
        sim.reset()
        return 200, {"reset": True}
    return 404, {"error": f"no route {method} {path}"}


def _user(u) -> dict[str, Any]:
    return {"id": u.id, "name": u.name, "balance": u.balance,
            "password_threshold": u.password_threshold}  # fmt: skip
