"""The two generator-based coroutines the poller's fibers need (kept interpreted on purpose).

A fiber (``wsload.engine.poller``) is a connection's coroutine stepped by the poller instead of
by a Trio task: when it parks, the whole chain of ``await`` under it must yield one value to
the poller, and only a generator can yield a bare value; mypyc compiles generators into
classes that ``types.coroutine`` does not mark as awaitable, so these stay Python (this module
is not in ``setup.py``'s ``COMPILED``). :func:`adopt` runs a fiber that needs one of Trio's own
waits (a connect still in progress, a full socket buffer, a yield for fairness) in a Trio task
of its own, until its next park hands it back to the poller.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, cast

__all__ = ["adopt", "suspend"]


@types.coroutine
def _yield(token: object) -> Generator[object, None, None]:
    yield token


suspend = cast("Callable[[object], Awaitable[None]]", _yield)
"""``await suspend(token)``: yield ``token`` to whoever steps the coroutine (the poller)."""


@types.coroutine
def _carry(coro: Coroutine[Any, Any, Any], until: object) -> Generator[object, object, None]:
    """Resume ``coro`` (suspended at its promotion) and pass what it yields to Trio, and what
    Trio sends or throws back to it, until it returns or yields ``until`` (it is a fiber again:
    left suspended there): ``yield from`` by hand, because a coroutine suspended inside an
    ``await`` cannot be awaited again."""
    value: object = None
    error: BaseException | None = None
    while True:
        try:
            yielded = coro.send(value) if error is None else coro.throw(error)
        except StopIteration:
            return
        if yielded is until:
            return
        value, error = None, None
        try:
            value = yield yielded
        except BaseException as exc:  # forwarded into the coroutine
            error = exc


async def adopt(coro: Coroutine[Any, Any, Any], until: object = None) -> None:
    """Run ``coro`` in the current task from where it promoted itself (or from its start),
    until it returns or yields ``until``."""
    await cast("Awaitable[None]", _carry(coro, until))
