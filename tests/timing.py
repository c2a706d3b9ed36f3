"""Real-clock bounds for the tests over real sockets and processes, on a loaded machine.

A deadline never fires early, so a lower bound is the configured time itself (less the clock's
granularity). An upper bound is only as tight as a busy 2-core machine can still meet: the
expected time plus :data:`SLACK`, used where what the test rules out (a longer timer, a wait
that never ends) takes longer still. Exact times are proved on Trio's autojump clock
(``MockClock(autojump_threshold=0)``: tests/engine/test_server_timing.py, test_driver_*.py),
and counts of events (ticks, yields, starts) prove what a rate would only suggest.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["EXIT_SLACK", "SLACK", "time_limit"]

SLACK = 1.0
"""Seconds a real-clock wait may overrun while other processes hold both cores."""
EXIT_SLACK = 10.0
"""Seconds a child ``wsload`` may take, on a loaded machine, to finish writing its results and
exit once its run has stopped (interpreter teardown, the built-in server's exit, files)."""


@contextmanager
def time_limit(cpu_seconds: float, wall_seconds: int) -> Iterator[None]:
    """Fail the enclosed code with ``TimeoutError`` once this process has spent
    ``cpu_seconds`` of CPU time in it, or ``wall_seconds`` of real time have passed.

    A loop that never ends spends CPU, and CPU time does not stretch on a busy machine the way
    real time does (a 3 s hypothesis test took over 20 s of real time beside five other test
    runs); a wait that never ends spends none, so a generous real-time bound catches it.
    Synchronous code only, in the main thread (``SIGPROF`` and ``SIGALRM``).
    """

    def expire(signum: int, frame: FrameType | None) -> None:
        what = f"{cpu_seconds:g} s of CPU" if signum == signal.SIGPROF else f"{wall_seconds} s"
        raise TimeoutError(f"test took longer than {what}")

    previous = signal.signal(signal.SIGALRM, expire), signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    signal.alarm(wall_seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGALRM, previous[0])
        signal.signal(signal.SIGPROF, previous[1])
