"""The store's typed methods (host/store/facade.py) stay in step with its operations
(host/store/ops.py): one method per operation, the same parameters, and the right way through
(a write that went through a read connection would not be durable, and a read through the
writer would queue behind every write)."""

import inspect

import pytest
import trio

from host.store import ops
from host.store.facade import AsyncFacade, SyncFacade

OPERATIONS = [(fn, "write") for fn in ops.WRITES] + [(fn, "read") for fn in ops.READS]


def _params(fn, drop: str) -> list[tuple]:
    params = list(inspect.signature(fn).parameters.values())
    assert params[0].name == drop
    return [(p.name, p.kind, p.default, p.annotation) for p in params[1:]]


def _dummy_call(method):
    """Arguments for a method that only forwards them: None for each parameter."""
    args, kwargs = [], {}
    for p in list(inspect.signature(method).parameters.values()):
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = None
        elif p.kind is p.POSITIONAL_OR_KEYWORD:
            args.append(None)
    return args, kwargs


class RecordingAsync(AsyncFacade):
    async def _write(self, fn, *args, **kwargs):
        return ("write", fn)

    async def _read(self, fn, *args, **kwargs):
        return ("read", fn)


class RecordingSync(SyncFacade):
    def _transact(self, fn, *args, **kwargs):
        return ("write", fn)

    def _read_now(self, fn, *args, **kwargs):
        return ("read", fn)


def test_every_operation_has_one_method_on_each_face_and_nothing_else():
    names = {fn.__name__ for fn, _ in OPERATIONS}
    assert len(names) == len(OPERATIONS)
    for face in (AsyncFacade, SyncFacade):
        public = {n for n in vars(face) if not n.startswith("_")}
        assert public == names, face.__name__


@pytest.mark.parametrize(("fn", "kind"), OPERATIONS, ids=lambda v: getattr(v, "__name__", v))
def test_a_method_has_its_operations_parameters_and_goes_the_right_way(fn, kind):
    for face in (AsyncFacade, SyncFacade):
        assert _params(getattr(face, fn.__name__), "self") == _params(fn, "db"), face.__name__
    args, kwargs = _dummy_call(getattr(SyncFacade, fn.__name__))
    assert getattr(RecordingSync(), fn.__name__)(*args[1:], **kwargs) == (kind, fn)
    method = getattr(RecordingAsync(), fn.__name__)
    assert trio.run(lambda: method(*args[1:], **kwargs)) == (kind, fn)
