"""structlog set-up: JSON lines in production, readable lines on a terminal.

Log lines carry masked dumps only; nothing here ever sees a PIN block, a track or a key, because
callers log the output of ``codec.dump.masked_fields`` rather than messages themselves.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def _orjson_text(obj, **_kwargs) -> str:
    """structlog's JSON serializer hook: orjson renders the per-exchange line (two masked
    dumps) several times faster than the standard library, and that line is on every request.
    Values orjson does not know are logged as their str()."""
    return orjson.dumps(obj, default=str).decode()


def configure(fmt: str = "auto", level: str = "info", stream=None) -> None:
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if fmt == "json"
        # Tracebacks without local variables: a frame's locals can hold key material or a
        # PIN block, and a log line must never show them.
        else structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
