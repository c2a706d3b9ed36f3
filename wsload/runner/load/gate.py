"""A storm split over worker processes, released by the parent once every share is open.

Segments that cannot talk to each other (``--cluster``, ``--segment``) agree on a release
instant computed from the scenario alone (``wsload.plan.segment.shared_release_offset``), and a
share still opening then releases late, which ``close_start_lag`` counts. The ``--workers``
parent can do what one process does instead: each worker reports its share open
(:meth:`ReleaseGate.opened`), and when every worker has (or has ended), the parent releases them
all at one instant, which each worker measures ``close_start_lag`` from
(``wsload.runner.executors.workers``).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

__all__ = ["ReleaseGate"]

_MAX_LEAD = 1.0


class ReleaseGate:
    """One worker's side of the parent's release.

    Attributes:
        at: the parent's release instant on this process's run clock (None: not released).
    """

    __slots__ = ("_go", "_report", "at")

    def __init__(self, report_open: Callable[[], None]) -> None:
        self._report = report_open
        self._go = trio.Event()
        self.at: float | None = None

    def opened(self) -> None:
        """Tell the parent that every connection of this share is open (or gave up)."""
        self._report()

    def release(self, at: float | None) -> None:
        """Release at the parent's instant ``at`` (run clock; a little ahead, so that every
        worker has the message before any starts its pass), or None when the run is stopping
        or the parent is gone (the storm releases at once, counted from then)."""
        if self.at is None:
            self.at = at
        self._go.set()

    async def wait(self) -> None:
        """Until :meth:`release`, then until its instant (at most ``_MAX_LEAD`` away: the
        instant is mapped from the wall clock, which may step; a stop in between waits for
        it too, ``RELEASE_LEAD`` of ``wsload.runner.executors.workers``)."""
        await self._go.wait()
        if self.at is not None:
            await trio.sleep_until(min(self.at, trio.current_time() + _MAX_LEAD))
