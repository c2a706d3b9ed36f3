"""A storm split over worker processes, released by the parent once every share is open.

Segments that cannot talk to each other (``--cluster``, ``--segment``) agree on a release
instant computed from the scenario alone (``wsload.plan.segment.shared_release_offset``), and a
share still opening then releases late, which ``close_start_lag`` counts. The ``--workers``
parent can do what one process does instead: each worker reports its share open
(:meth:`ReleaseGate.opened`), and when every worker has (or has ended), the parent releases them
all at one instant a little ahead (``RELEASE_LEAD``, so that every worker has it in time), which
each worker waits for and measures ``close_start_lag`` from (``wsload.runner.executors.workers``).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

__all__ = ["ReleaseGate"]


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
        """Release at the parent's instant ``at`` (run clock), or now (None) when the run is
        stopping or the parent is gone (counted from then)."""
        if self.at is None:
            self.at = at
        self._go.set()

    async def wait(self) -> None:
        """Until :meth:`release`."""
        await self._go.wait()
