"""A ``--workers`` storm's release gate (``wsload.runner.load.gate``): the parent's release
instant is a little ahead of its message (``RELEASE_LEAD``), and every worker waits for that
instant before its pass, so no worker's pass starts while another still waits for its message.
Exact times on Trio's autojump clock."""

from __future__ import annotations

import trio
import trio.testing

from wsload.runner.executors.workers import RELEASE_LEAD
from wsload.runner.load.gate import ReleaseGate


async def _released_at(gate: ReleaseGate, at: float | None, sent: float) -> float:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gate.wait)
        await trio.sleep_until(sent)
        gate.release(at)
    return trio.current_time()


async def test_a_worker_waits_for_the_parents_instant(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = ReleaseGate(lambda: None)
    sent = trio.current_time() + 5.0
    assert await _released_at(gate, sent + RELEASE_LEAD, sent) == sent + RELEASE_LEAD
    assert gate.at == sent + RELEASE_LEAD  # close_start_lag counts from the instant


async def test_a_message_that_comes_after_the_instant_releases_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = ReleaseGate(lambda: None)
    sent = trio.current_time() + 5.0
    assert await _released_at(gate, sent - 0.2, sent) == sent
    assert gate.at == sent - 0.2  # its lateness is counted, not hidden


async def test_a_stop_releases_at_once_and_a_far_instant_is_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent = trio.current_time() + 5.0
    assert await _released_at(ReleaseGate(lambda: None), None, sent) == sent
    # an instant mapped from a wall clock that stepped: at most a second's wait
    assert await _released_at(ReleaseGate(lambda: None), sent + 3600, sent) == sent + 1.0
