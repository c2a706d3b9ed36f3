"""The dataclasses built once or more per connection write their ``__init__`` out by hand.

``@dataclass`` generates ``__init__`` as Python source that it ``exec``s, so it stays
interpreted in the compiled build (mypyc compiles only what is written in the module), and a
frozen one sets every field through ``object.__setattr__`` from Python: the connection record
alone cost ≈ 8 µs of a ≈ 200 µs cycle. These classes say ``init=False`` and write the same
``__init__`` out, which mypyc compiles. Here: each one takes exactly the arguments the
dataclass's own would (names, order, defaults, keywords), sets every field from them, and a
frozen one stays frozen. Runs on the compiled build and on the pure one alike.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any

import pytest

from wsload._compiled import status
from wsload.core.browser import BrowserCloseEvent
from wsload.core.closing import CloseState, CloseTracker
from wsload.core.deflate import DeflateParams
from wsload.core.frames import ReceivedClose
from wsload.core.handshake import UpgradeResponse
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.engine.behaviours import Ending
from wsload.engine.context import ConnectionPlan
from wsload.scenario.model import CloseKind, CloseSpec

WRITTEN_OUT: tuple[type[Any], ...] = (
    BrowserCloseEvent,
    CloseTracker,
    ConnectionPlan,
    ConnectionRecord,
    Ending,
    ReceivedClose,
    UpgradeResponse,
)


def _generated(cls: type[Any]) -> list[tuple[str, object]]:
    """(name, default) of every parameter the dataclass's generated ``__init__`` would take."""
    out: list[tuple[str, object]] = []
    for f in dataclasses.fields(cls):
        assert f.init, f"{cls.__name__}.{f.name}: init=False fields need their own test"
        assert f.default_factory is dataclasses.MISSING, f"{cls.__name__}.{f.name}: a factory"
        default = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        out.append((f.name, default))
    return out


SAMPLES: dict[type[Any], Any] = {
    BrowserCloseEvent: lambda: BrowserCloseEvent(1000, "bye", True),
    CloseTracker: lambda: CloseTracker(CloseState.CLOSED, 1.0, 2.0, code_sent=1000),
    ConnectionPlan: lambda: ConnectionPlan(7, 1.5, CloseSpec(CloseKind.CLEAN, "clean"), row=("a",)),
    ConnectionRecord: lambda: ConnectionRecord(
        7, "clean", "clean", Outcome.CLEAN, 1.5, 2.0, message_rtts=(0.1,), subprotocol=""
    ),
    Ending: lambda: Ending(stopped=True),
    ReceivedClose: lambda: ReceivedClose(1000, "bye"),
    UpgradeResponse: lambda: UpgradeResponse(101, "OK", (("a", "b"),), None, b"x", DeflateParams()),
}
"""A value of each, built the way the code builds them (the compiled build checks types)."""

pure_only = pytest.mark.skipif(
    status().compiled, reason="the pure sources' __init__ (a compiled one checks types)"
)


@pure_only
@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_the_written_out_init_takes_what_the_dataclass_would(cls: type[Any]) -> None:
    params = inspect.signature(cls).parameters.values()
    assert [(p.name, p.default) for p in params] == _generated(cls)
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)


@pure_only
@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_every_field_is_set_from_its_argument_positionally_or_by_name(cls: type[Any]) -> None:
    fields = _generated(cls)
    names = [name for name, _ in fields]
    values = [object() for _ in names]  # distinct: a field set from the wrong argument shows
    for made in (cls(*values), cls(**dict(zip(names, values, strict=True)))):
        assert [getattr(made, name) for name in names] == values
    required = [v for (_, d), v in zip(fields, values, strict=True) if d is inspect.Parameter.empty]
    made = cls(*required)
    defaults = [(n, d) for n, d in fields if d is not inspect.Parameter.empty]
    assert [(n, getattr(made, n)) for n, _ in defaults] == defaults


@pytest.mark.skipif(not status().compiled, reason="the pure build: every __init__ is Python")
@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_the_compiled_build_runs_a_compiled_init(cls: type[Any]) -> None:
    assert not isinstance(cls.__init__, types.FunctionType)


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_keywords_and_positions_build_the_same_value(cls: type[Any]) -> None:
    made = SAMPLES[cls]()
    names = [name for name, _ in _generated(cls)]
    values = [getattr(made, name) for name in names]
    assert cls(*values) == made == cls(**dict(zip(names, values, strict=True)))


@pytest.mark.parametrize(
    "cls", [c for c in WRITTEN_OUT if c.__dataclass_params__.frozen], ids=lambda c: c.__name__
)
def test_a_frozen_one_stays_frozen(cls: type[Any]) -> None:
    made = SAMPLES[cls]()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, _generated(cls)[0][0], None)
    assert made == dataclasses.replace(made)
    assert hash(made) == hash(dataclasses.replace(made))
