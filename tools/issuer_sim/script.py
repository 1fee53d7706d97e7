"""The Python hook: ``--script file.py`` defining ``on_request``.

The documented function::

    def on_request(request: Message, ctx: HookContext) -> Message | str | None:
        ...

or ``async def on_request(...)`` with the same return values:

- ``None``: default processing (card checks, PIN, ledger);
- a 2-character ``str``: answer with that response code, with no ledger effect;
- a ``Message``: send it as the response, as is (build it with ``request.response(...)``);
- ``ctx.DROP``: never answer; ``ctx.CLOSE``: close the connection.

``ctx`` offers ``ctx.state`` (a dict kept for the life of the simulator), ``ctx.log`` (a
structlog logger), ``ctx.connection`` (the connection number), ``ctx.settings`` (the failure
settings in force) and, for async hooks, ``await ctx.default(request)`` (the response default
processing would give, with its ledger effect applied) and ``await ctx.card(pan)`` (a
``CardState`` or None). Hooks run after the rules file: a matching rule with an answering
action (response, drop, close) means the hook is not called.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


DROP = _Sentinel("DROP")
CLOSE = _Sentinel("CLOSE")


class HookContext:
    DROP = DROP
    CLOSE = CLOSE

    def __init__(
        self,
        *,
        state: dict,
        connection: int,
        settings: Any,
        default: Callable[[Any], Awaitable[Any]],
        card: Callable[[str], Awaitable[Any]],
    ):
        self.state = state
        self.connection = connection
        self.settings = settings
        self.log = structlog.get_logger("issuer_sim.script")
        self._default = default
        self._card = card

    async def default(self, request):
        return await self._default(request)

    async def card(self, pan: str):
        return await self._card(pan)


class Hook:
    def __init__(self, func: Callable):
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)

    async def __call__(self, request, ctx: HookContext):
        result = self.func(request, ctx)
        if self.is_async or inspect.isawaitable(result):
            result = await result
        return result


def load_hook(path: str | Path) -> Hook:
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"issuer_sim_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load script {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    func = getattr(module, "on_request", None)
    if not callable(func):
        raise ValueError(f"{path} defines no on_request(request, ctx)")
    return Hook(func)
