"""The back-office query API: read-only HTTP + JSON over the journal, per-merchant tokens.

Authentication: ``Authorization: Bearer pht_<id>_<secret>`` issued by ``poshost estate token
issue MID`` and stored as a SHA-256 digest in ``api_tokens`` (host/backoffice/tokens.py says why
not scrypt). Every request re-reads its token row (one primary-key read, as cheap as the digest),
so a revocation or an expiry takes effect at the next request, in every process that shares the
journal. An unknown token id costs the same digest work as a wrong secret and gets the same
answer. Failures are throttled per client address and per token id (429 + Retry-After, no
digest work), and each failure and each throttled request is a security event.

Tills (docs/tills.md): ``/tills?date=`` is the day's counted rows per terminal rolled up under
each master, ``/tills/{master}?date=`` one master's view; ``/transactions?master=`` a master's
rows and its secondaries'.

Authorization: every data path names the merchant (``/v1/merchants/{mid}/...``); a token of
another merchant gets 404 with the same body as a merchant that does not exist, so one
merchant never sees another's data nor learns whether it exists. PANs are masked in the
journal already (6+4); fingerprints and internal fields are never returned.

The OpenAPI description is ``openapi.json`` next to this module, served at ``/openapi.json``.
"""

from __future__ import annotations

import json
import re
import time
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
import trio

from host.backoffice.tokens import (
    TOKEN_RE,
    UNKNOWN_ID_DIGEST,
    FailureLimiter,
    digest,
    digest_matches,
    is_legacy,
    new_token,
)
from host.clock import journal_date, parse_date
from host.merchant import recon, tills
from host.security import SecurityMonitor, peer_address
from host.store.errors import NotFound
from host.store.merchant_records import DayTotals
from host.store.passwords import verify_password
from host.store.records import CHANNELS

log = structlog.get_logger("poshost.backoffice")

__all__ = ["BackOffice", "new_token", "serve_backoffice"]

DATE_RE = re.compile(r"\d{8}")
STATUSES = ("pending", "approved", "declined", "timeout", "reversed", "voided", "error")
TXN_FIELDS = (
    "id", "tid", "mid", "batch", "stan", "business_date", "settlement_date", "txn_type", "amount",
    "currency", "pan_masked", "card_group", "channel", "rrn", "auth_code", "response_code",
    "status", "original_id", "requested_at", "responded_at", "master_tid",
)  # fmt: skip
TID_RE = re.compile(r"[ -~]{8}")

Response = tuple[int, str, bytes, list[tuple[str, str]]]


def openapi_document() -> bytes:
    return resources.files("host.backoffice").joinpath("openapi.json").read_bytes()


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def _json(status: int, value: Any) -> Response:
    body = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return status, "application/json", body, []


def _not_found() -> ApiError:
    return ApiError(404, "not found")


class BackOffice:
    """The API's handler. ``monitor`` counts refused and throttled attempts (log only when
    None); ``fail_burst``/``fail_refill_seconds`` shape the per-address and per-token-id
    throttles."""

    def __init__(
        self,
        store,
        *,
        monitor: SecurityMonitor | None = None,
        fail_burst: int = 10,
        fail_refill_seconds: float = 6.0,
    ):
        self.store = store
        self.monitor = monitor if monitor is not None else SecurityMonitor()
        self._by_address = FailureLimiter(fail_burst, fail_refill_seconds)
        self._by_token = FailureLimiter(fail_burst, fail_refill_seconds)
        self._scrypt = trio.CapacityLimiter(1)  # legacy token hashes: one scrypt at a time

    async def handle(
        self, method: str, target: str, headers: dict[str, str], peer: str | None = None
    ) -> Response:
        try:
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "read-only API: GET only")
            url = urlsplit(target)
            if url.path == "/openapi.json":
                return 200, "application/json", openapi_document(), []
            mid = await self._authenticate(headers.get("authorization", ""), peer)
            response = await self._route(mid, url.path, parse_qs(url.query), peer)
        except ApiError as exc:
            status, ctype, body, extra = _json(exc.status, {"error": exc.message})
            if exc.status == 401:
                extra = [("www-authenticate", 'Bearer realm="poshost"')]
            return status, ctype, body, extra + exc.headers
        return response

    async def _authenticate(self, header: str, peer: str | None) -> str:
        """The merchant of a valid token. The throttles are consulted before anything else, so
        a throttled request costs no database read and no digest work."""
        scheme, _, token = header.partition(" ")
        match = TOKEN_RE.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
        token_id = int(match.group(1)) if match else None
        self._check_throttles(peer, token_id)
        if match is None:
            if header:
                self._refused(peer, None, "not a pht_ bearer token")
            raise ApiError(401, "a bearer token is required")
        assert token_id is not None
        secret = match.group(2)
        row = await self.store.get_api_token(token_id)
        if row is None:
            digest_matches(secret, UNKNOWN_ID_DIGEST)  # the same work as for a wrong secret
            ok = False
        elif is_legacy(row.token_hash):
            ok = await self._legacy_check(row, secret, peer)
        else:
            ok = digest_matches(secret, row.token_hash)
        if not ok:
            self._refused(peer, token_id, "wrong secret or unknown token id")
            raise ApiError(401, "invalid token")
        if row.revoked_at is not None:
            self._refused(peer, token_id, "revoked")
            raise ApiError(401, "token revoked")
        if row.expires_at is not None and row.expires_at <= int(time.time() * 1000):
            self._refused(peer, token_id, "expired")
            raise ApiError(401, "token expired")
        return row.mid

    def _check_throttles(self, peer: str | None, token_id: int | None) -> None:
        now = trio.current_time()
        wait = self._by_address.retry_after(peer_address(peer), now)
        if token_id is not None:
            wait = max(wait, self._by_token.retry_after(token_id, now))
        if wait:
            self.monitor.record("api_throttled", peer=peer, detail=f"token id {token_id}")
            raise ApiError(429, "too many failed attempts", [("retry-after", str(wait))])

    def _refused(self, peer: str | None, token_id: int | None, why: str) -> None:
        now = trio.current_time()
        self._by_address.failed(peer_address(peer), now)
        if token_id is not None:
            self._by_token.failed(token_id, now)
        self.monitor.record("api_token_refused", peer=peer, detail=f"token id {token_id}: {why}")

    async def _legacy_check(self, row, secret: str, peer: str | None) -> bool:
        """A token issued before digests (scrypt): checked the slow way, one at a time, and
        re-hashed to a digest on its first success so the slow way is paid once. The throttles
        are asked again once it is this request's turn: requests that queued together must not
        each get a check after the first ones used up the burst."""
        async with self._scrypt:
            self._check_throttles(peer, row.id)
            ok = await trio.to_thread.run_sync(verify_password, secret, row.token_hash)
        if ok and await self.store.rehash_api_token(row.id, row.token_hash, digest(secret)):
            log.info("backoffice_token_rehashed", token_id=row.id)
        return ok

    async def _route(
        self, mid: str, path: str, query: dict[str, list[str]], peer: str | None
    ) -> Response:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 4 or parts[:2] != ["v1", "merchants"]:
            raise _not_found()
        if parts[2] != mid:
            # another merchant's data, or no such merchant: the same answer
            detail = f"token of {mid} asked for {parts[2][:15]}"
            self.monitor.record("api_other_merchant", peer=peer, detail=detail)
            raise _not_found()
        rest = parts[3:]
        if rest == ["transactions"]:
            return await self._transactions(mid, query)
        if rest == ["settlements"]:
            return await self._settlements(mid, query)
        if rest == ["risk-events"]:
            return await self._risk_events(mid, query)
        if rest == ["tills"]:
            return await self._tills(mid, query, None)
        if len(rest) == 2 and rest[0] == "tills" and TID_RE.fullmatch(rest[1]):
            return await self._tills(mid, query, rest[1])
        if len(rest) == 3 and rest[0] == "recon" and DATE_RE.fullmatch(rest[1]):
            return await self._recon_file(mid, rest[1], rest[2])
        raise _not_found()

    async def _transactions(self, mid: str, query) -> Response:
        q = _query(
            query,
            ("terminal", "master", "date", "status", "rrn", "type", "channel", "limit", "offset"),
        )
        if q.get("status") and q["status"] not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
        if q.get("channel") and q["channel"] not in CHANNELS:
            raise ApiError(400, f"channel must be one of {', '.join(CHANNELS)}")
        rows = await self.store.list_transactions(
            mid=mid, tid=q.get("terminal"), business_date=_date(q.get("date")),
            status=q.get("status"), rrn=q.get("rrn"), txn_type=q.get("type"),
            rolls_up_to=q.get("master"), channel=q.get("channel"),
            limit=_int(q.get("limit"), 100, 1, 1000), offset=_int(q.get("offset"), 0, 0, 10**9),
        )  # fmt: skip
        items = [_transaction_item(t) for t in rows]
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

    async def _tills(self, mid: str, query, master: str | None) -> Response:
        """The day's counted rows per terminal, rolled up under masters (docs/tills.md): every
        master of the merchant, or one master's view. The rows are the ones merchant
        settlement counts, so the total is the settlement record's."""
        q = _query(query, ("date",))
        date = _date(q.get("date"))
        if date is None:
            raise ApiError(400, "date (YYYYMMDD) is required")
        groups = tills.roll_up(await self.store.till_day_totals(date, mid))
        if master is None:
            return _json(200, {
                "merchant": mid, "business_date": date,
                "masters": [_group(g) for g in groups],
                "total": _totals(tills.add_up(g.totals for g in groups)),
            })  # fmt: skip
        try:
            terminal = await self.store.get_terminal(master)
        except NotFound:
            terminal = None
        if terminal is None or terminal.mid != mid:
            raise _not_found()  # another merchant's terminal looks like no terminal
        mine = [g for g in groups if g.master == master]
        group = mine[0] if mine else tills.TillGroup(mid, master, (), DayTotals())
        return _json(200, {"merchant": mid, "business_date": date, **_group(group)})

    async def _recon_file(self, mid: str, date: str, name: str) -> Response:
        if name not in ("transactions.csv", "settlement.csv", "channels.csv", "tills.csv"):
            raise _not_found()
        record = await self.store.get_merchant_settlement(mid, date)
        if record is None:
            raise ApiError(404, f"no settlement record for {date}")
        if name == "settlement.csv":
            text = recon.summary_csv([record])
        elif name == "channels.csv":
            text = recon.channels_csv(record)
        elif name == "tills.csv":
            groups = tills.roll_up(await self.store.till_day_totals(date, mid))
            text = recon.tills_csv(groups, date, mid)
        else:
            text = recon.detail_csv(await self.store.counted_transactions(mid, date))
        filename = recon.file_names(parse_date(date), mid)[name.removesuffix(".csv")]
        disposition = [("content-disposition", f'attachment; filename="{filename}"')]
        return 200, "text/csv; charset=utf-8", text.encode("utf-8"), disposition


def _transaction_item(t) -> dict[str, Any]:
    """One journal row as the API shows it; a transfer's payee as the journal keeps it, masked
    6+4 (``extra.payee``), null for every other type."""
    item = {k: getattr(t, k) for k in TXN_FIELDS}
    item["payee_masked"] = (t.extra or {}).get("payee")
    return item


def _totals(t) -> dict[str, int]:
    return {
        "debit_count": t.debit_count, "debit_amount": t.debit_amount,
        "credit_count": t.credit_count, "credit_amount": t.credit_amount,
        "gross": t.debit_amount - t.credit_amount,
    }  # fmt: skip


def _group(group) -> dict[str, Any]:
    return {
        "master": group.master,
        "tills": [{"tid": t.tid, "role": group.role(t), **_totals(t)} for t in group.tills],
        "total": _totals(group.totals),
    }


def _query(query: dict[str, list[str]], allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = set(query) - set(allowed)
    if unknown:
        raise ApiError(400, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    return {k: v[-1] for k, v in query.items()}


def _date(value: str | None) -> str | None:
    """A business date from the query, as the journal's SQL compares it (YYYYMMDD)."""
    if value is None:
        return None
    try:
        if len(value) != 8:
            raise ValueError(value)
        return journal_date(parse_date(value))
    except ValueError as exc:
        raise ApiError(400, "date must be YYYYMMDD") from exc


def _int(value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ApiError(400, f"expected an integer from {low} to {high}")
    return int(value)


async def serve_backoffice(
    store,
    listen: str,
    *,
    monitor: SecurityMonitor | None = None,
    fail_burst: int = 10,
    fail_refill_seconds: float = 6.0,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    from host.config import parse_address
    from host.http import HttpServer

    host, port = parse_address(listen)
    backoffice = BackOffice(
        store, monitor=monitor, fail_burst=fail_burst, fail_refill_seconds=fail_refill_seconds
    )

    async def handle(method: str, target: str, headers: dict[str, str], peer: str | None,
                     _body: bytes) -> Response:  # fmt: skip
        return await backoffice.handle(method, target, headers, peer)

    await HttpServer(handle).serve(host, port, task_status=task_status)
