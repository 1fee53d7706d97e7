"""The one exception family the codec raises.

A host must turn any malformed input into a defined reaction (close the socket, or answer with
response code 30), so every decode/encode path funnels its failures into ``CodecError`` carrying
*where* it went wrong. Callers then catch one type instead of guessing which library raised what.
"""

from __future__ import annotations

from typing import Any


class CodecError(ValueError):
    """Any failure to decode or encode; names the field, the byte offset and the reason.

    ``field`` is a field number, or a part name such as ``"mti"``, ``"bitmap"``, ``"frame"``,
    ``"tpdu"``, ``"header"``, ``"60.3"``; ``offset`` is the byte offset in the input (-1 when the
    failure is not tied to a position, e.g. on encode).
    """

    def __init__(self, reason: str, *, field: int | str | None = None, offset: int = -1) -> None:
        self.field = field
        self.offset = offset
        self.reason = reason
        where = f"field {field}" if field is not None else "message"
        at = f" at offset {offset}" if offset >= 0 else ""
        super().__init__(f"{where}{at}: {reason}")

    def __reduce__(
        self,
    ) -> tuple[Any, ...]:  # keep it picklable across process pools despite keyword-only args
        return (_rebuild, (type(self), self.reason, self.field, self.offset))


def _rebuild(cls: type[CodecError], reason: str, field: Any, offset: int) -> CodecError:
    return cls(reason, field=field, offset=offset)


class FrameError(CodecError):
    """Framing problems (oversize, zero or short frames, bad TPDU): the connection should close."""
