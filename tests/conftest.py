"""Shared test plumbing."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest
from browser import Chromium, chromium_skip_reason


@contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"test took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def bounded_sync() -> Iterator[None]:
    """Bound a synchronous test at 20 s with SIGALRM.

    Pure code never reaches a Trio checkpoint, so ``trio.fail_after`` cannot bound it.
    Use with ``pytestmark = pytest.mark.usefixtures("bounded_sync")``.
    """
    with _alarm(20):
        yield


@pytest.fixture
def bounded_slow() -> Iterator[None]:
    """``bounded_sync`` at 180 s, for synchronous tests that make whole runs (CLI, browser)."""
    with _alarm(180):
        yield


@pytest.fixture(scope="module")
def loopback_chromium() -> Iterator[Chromium]:
    """One headless Chromium per module whose pages may reach 127.0.0.1 (WebSockets to test
    servers); skipped with the reason when it cannot run."""
    reason = chromium_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with Chromium(loopback=True) as browser:
        yield browser
