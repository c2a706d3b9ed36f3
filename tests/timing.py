"""Real-clock bounds for the tests over real sockets and processes, on a loaded machine.

A deadline never fires early, so a lower bound is the configured time itself (less the clock's
granularity). An upper bound is only as tight as a busy 2-core machine can still meet: the
expected time plus :data:`SLACK`, used where what the test rules out (a longer timer, a wait
that never ends) takes longer still. Exact times are proved on Trio's autojump clock
(``MockClock(autojump_threshold=0)``: tests/engine/test_server_timing.py, test_driver_*.py),
and counts of events (ticks, yields, starts) prove what a rate would only suggest.
"""

from __future__ import annotations

__all__ = ["EXIT_SLACK", "SLACK"]

SLACK = 1.0
"""Seconds a real-clock wait may overrun while other processes hold both cores."""
EXIT_SLACK = 10.0
"""Seconds a child ``wsload`` may take, on a loaded machine, to finish writing its results and
exit once its run has stopped (interpreter teardown, the built-in server's exit, files)."""
