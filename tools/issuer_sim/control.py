"""The control endpoint: a tiny HTTP/1.1 server on loopback (``--control 127.0.0.1:8089``).

    GET  /settings            {"latency": "fixed:0", "drop_rate": 0.0, "disconnect_rate": 0.0}
    PUT  /settings  (or POST) a JSON object with any of those keys; answers the new settings
    GET  /stats               counters: connections, requests, answered, dropped, closed, ...
    GET  /cards/<PAN>         status, balance, available, holds, PIN tries (PAN masked)
    POST /reset               reset balances, holds and the ledger to the card file
    POST /reload              read the rules file again (as SIGHUP does); 400 with file, line
                              and rule when it has an error, and the old rules stay in force

One request per connection (``Connection: close``); bodies up to 64 KiB.
"""

from __future__ import annotations

import json

import structlog
import trio

from tools.issuer_sim.cards import mask_pan
from tools.issuer_sim.config import parse_hostport

log = structlog.get_logger("issuer_sim.control")

MAX_BODY = 65536
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


async def serve_control(sim, address: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    host, port = parse_hostport(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("control endpoint listening", address=f"{host}:{bound}")
    await trio.serve_listeners(
        lambda stream: _handle(sim, stream), listeners, task_status=_Started(task_status, bound)
    )


class _Started:
    """Report the bound port instead of the listeners to whoever started us."""

    def __init__(self, task_status, port: int):
        self._status, self._port = task_status, port

    def started(self, _value=None) -> None:
        self._status.started(self._port)


async def _read_request(stream) -> tuple[str, str, bytes]:
    buf = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in buf:
            chunk = await stream.receive_some(4096)
            if not chunk or len(buf) > 16384:
                raise ValueError("incomplete request head")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length > MAX_BODY:
            raise ValueError("body too large")
        while len(body) < length:
            chunk = await stream.receive_some(length - len(body))
            if not chunk:
                raise ValueError("incomplete body")
            body += chunk
    return method.upper(), path, body[:length]


async def _handle(sim, stream) -> None:
    try:
        try:
            method, path, body = await _read_request(stream)
        except (ValueError, trio.TooSlowError) as e:
            await _send(stream, 400, {"error": str(e)})
            return
        status, payload = await _route(sim, method, path.split("?", 1)[0], body)
        await _send(stream, status, payload)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        log.exception("control request failed")
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def _route(sim, method: str, path: str, body: bytes) -> tuple[int, dict]:
    if path == "/settings":
        if method == "GET":
            return 200, sim.settings.to_json()
        if method in ("PUT", "POST", "PATCH"):
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object")
                return 200, sim.update_settings(changes).to_json()
            except ValueError as e:
                return 400, {"error": str(e)}
        return 405, {"error": "use GET or PUT"}
    if path == "/reload" and method == "POST":
        try:
            return 200, {"rules": sim.reload_rules()}
        except ValueError as e:  # RulesError: file, line, rule; the old rules stay in force
            return 400, {"error": str(e)}
    if path == "/stats" and method == "GET":
        return 200, dict(sim.stats)
    if path == "/reset" and method == "POST":
        await sim.reset()
        log.info("state reset from the card file")
        return 200, {"reset": True}
    if path.startswith("/cards/") and method == "GET":
        pan = path[len("/cards/") :]
        card = await sim.card(pan)
        if card is None:
            return 404, {"error": "no such card"}
        holds = await sim.holds(pan)
        return 200, {
            "pan": mask_pan(card.pan),
            "status": card.status,
            "expiry": card.expiry,
            "currency": card.currency,
            "balance": card.balance,
            "available": card.available,
            "holds": [{"id": h.id, "amount": h.amount} for h in holds],
            "pin_tries": card.pin_tries,
            "spent_today": card.spent_today,
            "daily_limit": card.daily_limit,
        }
    return 404, {"error": f"no route {method} {path}"}


async def _send(stream, status: int, payload: dict) -> None:
    body = (json.dumps(payload) + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    await stream.send_all(head + body)
