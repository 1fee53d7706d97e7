"""The back-office query API: read-only HTTP + JSON over the journal, per-merchant tokens.

Authentication: ``Authorization: Bearer pht_<id>_<secret>`` issued by ``poshost estate token
issue MID`` and stored scrypt-hashed (``api_tokens``). A verified token is remembered for
``TOKEN_CACHE_SECONDS`` (keyed by the SHA-256 of the token, never the token) so scrypt is paid
once a minute, not per request; a revocation takes effect within that time.

Authorization: every data path names the merchant (``/v1/merchants/{mid}/...``); a token of
another merchant gets 404 with the same body as a merchant that does not exist, so one
merchant never sees another's data nor learns whether it exists. PANs are masked in the
journal already (6+4); fingerprints and internal fields are never returned.

The OpenAPI description is ``openapi.json`` next to this module, served at ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
import trio

from host import recon
from host.store.passwords import hash_password, verify_password

log = structlog.get_logger("poshost.backoffice")

TOKEN_CACHE_SECONDS = 60.0
TOKEN_RE = re.compile(r"pht_(\d{1,12})_([0-9a-f]{32})")
DATE_RE = re.compile(r"\d{8}")
STATUSES = ("pending", "approved", "declined", "timeout", "reversed", "voided", "error")
TXN_FIELDS = (
    "id", "tid", "mid", "batch", "stan", "business_date", "settlement_date", "txn_type", "amount",
    "currency", "pan_masked", "card_group", "rrn", "auth_code", "response_code", "status",
    "original_id", "requested_at", "responded_at",
)  # fmt: skip

Response = tuple[int, str, bytes, list[tuple[str, str]]]


def new_token() -> tuple[str, str]:
    """(secret part, its hash); the full token is ``pht_<id>_<secret>`` once the row exists."""
    secret = secrets.token_hex(16)
    return secret, hash_password(secret)


def openapi_document() -> bytes:
    return resources.files("host.backoffice").joinpath("openapi.json").read_bytes()


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _json(status: int, value: Any) -> Response:
    body = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return status, "application/json", body, []


def _not_found() -> ApiError:
    return ApiError(404, "not found")


class BackOffice:
    def __init__(self, store):
        self.store = store
        self._tokens: dict[str, tuple[str, float]] = {}

    async def handle(self, method: str, target: str, headers: dict[str, str]) -> Response:
        try:
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "read-only API: GET only")
            url = urlsplit(target)
            if url.path == "/openapi.json":
                return 200, "application/json", openapi_document(), []
            mid = await self._authenticate(headers.get("authorization", ""))
            response = await self._route(mid, url.path, parse_qs(url.query))
        except ApiError as exc:
            status, ctype, body, extra = _json(exc.status, {"error": exc.message})
            if exc.status == 401:
                extra = [("www-authenticate", 'Bearer realm="poshost"')]
            return status, ctype, body, extra
        return response

    async def _authenticate(self, header: str) -> str:
        scheme, _, token = header.partition(" ")
        match = TOKEN_RE.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
        if match is None:
            raise ApiError(401, "a bearer token is required")
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        now = trio.current_time()
        hit = self._tokens.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        row = await self.store.get_api_token(int(match.group(1)))
        ok = row is not None and row.revoked_at is None
        if ok:
            ok = await trio.to_thread.run_sync(verify_password, match.group(2), row.token_hash)
        if not ok:
            log.warning("backoffice_token_refused", token_id=match.group(1))
            raise ApiError(401, "invalid token")
        self._tokens[key] = (row.mid, now + TOKEN_CACHE_SECONDS)
        return row.mid

    async def _route(self, mid: str, path: str, query: dict[str, list[str]]) -> Response:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 4 or parts[:2] != ["v1", "merchants"]:
            raise _not_found()
        if parts[2] != mid:
            # another merchant's data, or no such merchant: the same answer
            log.warning("backoffice_other_merchant", token_mid=mid, asked=parts[2][:15])
            raise _not_found()
        rest = parts[3:]
        if rest == ["transactions"]:
            return await self._transactions(mid, query)
        if rest == ["settlements"]:
            return await self._settlements(mid, query)
        if rest == ["risk-events"]:
            return await self._risk_events(mid, query)
        if len(rest) == 3 and rest[0] == "recon" and DATE_RE.fullmatch(rest[1]):
            return await self._recon_file(mid, rest[1], rest[2])
        raise _not_found()

    async def _transactions(self, mid: str, query) -> Response:
        q = _query(query, ("terminal", "date", "status", "rrn", "type", "limit", "offset"))
        if q.get("status") and q["status"] not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
        rows = await self.store.list_transactions(
            mid=mid, tid=q.get("terminal"), business_date=_date(q.get("date")),
            status=q.get("status"), rrn=q.get("rrn"), txn_type=q.get("type"),
            limit=_int(q.get("limit"), 100, 1, 1000), offset=_int(q.get("offset"), 0, 0, 10**9),
        )  # fmt: skip
        items = [{k: getattr(t, k) for k in TXN_FIELDS} for t in rows]
        return _json(200, {"merchant": mid, "count": len(items), "transactions": items})

    async def _settlements(self, mid: str, query) -> Response:
        q = _query(query, ("date", "limit"))
        rows = await self.store.list_merchant_settlements(
            mid=mid, business_date=_date(q.get("date")), limit=_int(q.get("limit"), 100, 1, 1000)
        )
        items = [r.to_dict() for r in rows]
        return _json(200, {"merchant": mid, "count": len(items), "settlements": items})

    async def _risk_events(self, mid: str, query) -> Response:
        q = _query(query, ("date", "terminal", "limit", "offset"))
        rows = await self.store.list_risk_events(
            mid=mid, business_date=_date(q.get("date")), tid=q.get("terminal"),
            limit=_int(q.get("limit"), 100, 1, 1000), offset=_int(q.get("offset"), 0, 0, 10**9),
        )  # fmt: skip
        items = [e.to_dict() for e in rows]
        return _json(200, {"merchant": mid, "count": len(items), "risk_events": items})

    async def _recon_file(self, mid: str, date: str, name: str) -> Response:
        if name not in ("transactions.csv", "settlement.csv"):
            raise _not_found()
        record = await self.store.get_merchant_settlement(mid, date)
        if record is None:
            raise ApiError(404, f"no settlement record for {date}")
        if name == "settlement.csv":
            text = recon.summary_csv([record])
        else:
            text = recon.detail_csv(await self.store.counted_transactions(mid, date))
        filename = recon.file_names(date, mid)[name.removesuffix(".csv")]
        disposition = [("content-disposition", f'attachment; filename="{filename}"')]
        return 200, "text/csv; charset=utf-8", text.encode("utf-8"), disposition


def _query(query: dict[str, list[str]], allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = set(query) - set(allowed)
    if unknown:
        raise ApiError(400, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    return {k: v[-1] for k, v in query.items()}


def _date(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        dt.datetime.strptime(value, "%Y%m%d")
    except ValueError as exc:
        raise ApiError(400, "date must be YYYYMMDD") from exc
    return value


def _int(value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ApiError(400, f"expected an integer from {low} to {high}")
    return int(value)


async def serve_backoffice(store, listen: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    from host.backoffice.http import HttpServer
    from host.config import parse_address

    host, port = parse_address(listen)
    server = HttpServer(BackOffice(store).handle)
    await server.serve(host, port, task_status=task_status)
