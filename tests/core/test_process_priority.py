"""``wsload.process.raised_priority`` and what a load reports of it (``priority_raised``)."""

from __future__ import annotations

import os

from wsload.process import BURST_PRIORITY, raised_priority, take_priority_raised


def test_nested_raises_are_summed_then_restored_and_read_once() -> None:
    """A storm's release pass (10 steps) inside its drain (4): the process ran 14 steps raised
    at most; the reading resets, and every step is undone on the way out. Where the process
    may not raise its priority (not root) nothing changes and 0 is read."""
    take_priority_raised()
    before = os.getpriority(os.PRIO_PROCESS, 0)
    with raised_priority(4) as outer:
        drain = os.getpriority(os.PRIO_PROCESS, 0)
        with raised_priority() as inner:
            deepest = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, 0) == drain
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
    assert outer == inner
    if outer:
        assert drain == max(-20, before - 4)
        assert deepest == max(-20, drain - BURST_PRIORITY)
    else:
        assert drain == deepest == before
    assert take_priority_raised() == before - deepest
    assert take_priority_raised() == 0
