"""structlog set-up: JSON lines in production, readable lines on a terminal.

Log lines carry masked dumps only; nothing here ever sees a PIN block, a track or a key, because
callers log the output of ``codec.dump.masked_fields`` rather than messages themselves.
"""

from __future__ import annotations

import logging
import sys
import threading

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_WRITE_LOCK = threading.Lock()


def write_line(text: str, stream=None) -> None:
    """One whole line, in one write, under the lock every log line takes: lines relayed from a
    child (the issuer simulator under `serve`) never land in the middle of a host line."""
    stream = stream or sys.stderr
    with _WRITE_LOCK:
        stream.write(text.rstrip("\n") + "\n")
        stream.flush()


class _LineLogger:
    """structlog's PrintLogger writes a message and its newline separately; this writes the
    line at once, under the shared lock (see write_line)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        write_line(message, self._stream)

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


def resolved_format(fmt: str, stream=None) -> str:
    """ "auto" made concrete: readable lines on a terminal, JSON lines elsewhere."""
    stream = stream or sys.stderr
    if fmt == "auto":
        return "console" if stream.isatty() else "json"
    return fmt


def _orjson_text(obj, **_kwargs) -> str:
    """structlog's JSON serializer hook: orjson renders the per-exchange line (two masked
    dumps) several times faster than the standard library, and that line is on every request.
    Values orjson does not know are logged as their str()."""
    return orjson.dumps(obj, default=str).decode()


def configure(fmt: str = "auto", level: str = "info", stream=None) -> None:
    stream = stream or sys.stderr
    fmt = resolved_format(fmt, stream)
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
        logger_factory=lambda *_args: _LineLogger(stream),
        cache_logger_on_first_use=True,
    )
