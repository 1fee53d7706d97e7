"""The receiving end of a merchant webhook, as a merchant's server would be written.

Each POST is checked the way docs/webhooks.md tells receivers to: the ``Poshost-Signature``
header must carry an HMAC-SHA256 of ``"<t>." + body`` under the shared secret, made within the
tolerance of this machine's clock (else 400, and nothing is printed as an event). A verified
event is acknowledged with 200 and printed as one JSON line; one whose ``Poshost-Event-Id`` was
seen before is acknowledged again and printed with ``"duplicate": true`` (a sender that
delivers at least once may repeat it; the receiver's job is to act once).

For tests and demonstrations: ``fail_first`` answers 503 to the first N requests (a merchant
server that is down), ``delay`` holds each answer that many seconds.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

import attrs

from keys import webhook as signing

MAX_BODY = 1 << 20


@attrs.define
class ReceiverState:
    secret: str = attrs.field(repr=False)
    tolerance: int = signing.DEFAULT_TOLERANCE
    fail_first: int = 0
    delay: float = 0.0
    out: IO[str] = sys.stdout
    clock: Callable[[], float] = time.time
    seen: set[str] = attrs.field(factory=set)
    requests: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def emit(self, line: dict[str, Any]) -> None:
        with self.lock:
            self.out.write(json.dumps(line, sort_keys=True) + "\n")
            self.out.flush()


def handle(state: ReceiverState, headers: Any, body: bytes) -> tuple[int, dict[str, Any] | None]:
    """(HTTP status, the line to print or None) for one request: the receiver's logic without
    the socket."""
    event_id = headers.get(signing.EVENT_ID_HEADER)
    now = int(state.clock())
    if not signing.verify(state.secret, headers.get(signing.SIGNATURE_HEADER), body, now,
                          state.tolerance):  # fmt: skip
        return 400, {"verified": False, "event_id": event_id, "error": "bad signature"}
    try:
        event = json.loads(body)
    except ValueError:
        return 400, {"verified": True, "event_id": event_id, "error": "not JSON"}
    if not isinstance(event, dict) or event.get("id") != event_id:
        return 400, {"verified": True, "event_id": event_id, "error": "event id mismatch"}
    with state.lock:
        state.requests += 1
        if state.requests <= state.fail_first:
            return 503, None
        duplicate = event_id in state.seen
        state.seen.add(event_id)
    return 200, {
        "verified": True,
        "duplicate": duplicate,
        "event_id": event_id,
        "type": event.get("type"),
        "created": event.get("created"),
        "merchant": event.get("merchant"),
        "transaction": (event.get("data") or {}).get("transaction"),
        "received_at": round(state.clock(), 3),
    }


def make_handler(state: ReceiverState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "poshost-webhook-receiver/1"

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._answer(413)
                return
            body = self.rfile.read(length)
            status, line = handle(state, self.headers, body)
            if state.delay:
                time.sleep(state.delay)
            if line is not None:
                state.emit(line)
            self._answer(status)

        def _answer(self, status: int) -> None:
            payload = b'{"ok":true}' if status == 200 else b'{"ok":false}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one JSON line per event on stdout is the output

    return Handler


def serve(state: ReceiverState, host: str, port: int) -> ThreadingHTTPServer:
    """A bound server (``serve_forever()`` it); port 0 picks one (``server_address[1]``)."""
    server = ThreadingHTTPServer((host, port), make_handler(state))
    server.daemon_threads = True
    return server
