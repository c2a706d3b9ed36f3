"""The garbage collector's settings while a load runs: out of the measured window.

Python's cyclic collector runs when allocations outnumber deallocations by a threshold (700
for the youngest generation), and each run walks a whole generation. During a load that means
hundreds of collections a second, and every collection of an older generation walks every
connection alive: in a 10,000-connection storm the release used to spend ≈ 25-35 % of its CPU
in the collector (one full collection alone: 200-290 ms), all of it on the loop's one thread,
in whatever is being timed. Nothing the collector finds during a load is large: what it frees
is the reference cycles of finished connections (exceptions and their tracebacks), a few KB
each, which can wait a little longer.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from wsload.process import YOUNG_THRESHOLD

__all__ = ["FREEZE_EVERY", "YOUNG_THRESHOLD", "freeze_held", "load_heap", "release_held"]

FREEZE_EVERY = 500
"""A storm's opening freezes the connections held so far every this many starts
(:func:`freeze_held`)."""


@contextmanager
def load_heap() -> Iterator[None]:
    """Freeze what exists before the load and collect the young generation less often.

    A full (generation 2) collection walks every object alive, imported modules included
    (plotly, rich, hdrh): 20-30 ms on these machines, a stall of the whole loop that lands in
    whatever latencies are being timed (it showed as a 25-45 ms start-lag p99 at 160/s).
    Freezing what exists before the load moves it out of the collector's sight; what the run
    itself creates is still collected. Thresholds and the freeze are undone afterwards so that
    a process running many loads (a search, the tests) does not keep their garbage for ever.
    """
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def freeze_held() -> None:
    """Move the objects of a storm's connections held so far out of the collector's sight.

    A storm holds every connection it opens until its release, so each of the older
    generation's collections during the opening walked every connection opened so far: at
    16,000 held, a stall of tens of milliseconds of the whole loop, each about a quarter more
    connections apart, and every start due meanwhile was late (a quiet 100,000-connection run:
    start lag p99 29-36 ms per worker, loop lag p99 13 ms). ``gc.freeze`` only moves the
    generations' lists (constant time); :func:`load_heap` unfreezes at the end of the load.
    """
    gc.freeze()


def release_held(release: Callable[[], None]) -> None:
    """Release a storm: freeze the held connections' objects first, then ``release()`` (the
    pass and the event: ``Alarm.release``).

    Every connection of the storm is alive and its objects (made during the load, so not
    frozen by :func:`load_heap`) would be walked by each older-generation collection that the
    release's burst of allocations triggers. Frozen, they are out of sight until the load
    ends (:func:`load_heap` unfreezes).
    """
    gc.freeze()
    release()
