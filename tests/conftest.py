"""Shared test plumbing."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest


@pytest.fixture
def bounded_sync() -> Iterator[None]:
    """Bound a synchronous test at 20 s with SIGALRM.

    Pure code never reaches a Trio checkpoint, so ``trio.fail_after`` cannot bound it.
    Use with ``pytestmark = pytest.mark.usefixtures("bounded_sync")``.
    """

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("test took longer than 20 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def bounded_slow() -> Iterator[None]:
    """``bounded_sync`` at 180 s, for synchronous tests that make whole runs (CLI, browser)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("test took longer than 180 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(180)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
