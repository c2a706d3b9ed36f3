"""The garbage collector's settings during a load (``wsload/runner/load/heap.py``), for real."""

from __future__ import annotations

import gc

import trio

from wsload.runner.load.heap import YOUNG_THRESHOLD, load_heap, release_held


def test_load_heap_freezes_and_collects_less_often_then_restores() -> None:
    before = gc.get_threshold()
    survivor = [object() for _ in range(10)]  # alive before the load: frozen with the rest
    with load_heap():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert len(survivor) == 10


async def test_release_held_freezes_what_is_alive_then_releases() -> None:
    release = trio.Event()
    with load_heap():
        frozen_at_start = gc.get_freeze_count()
        held = [[i] for i in range(1000)]  # made during the load, like held connections
        release_held(release.set)
        assert release.is_set()
        assert gc.get_freeze_count() >= frozen_at_start + len(held)
    assert gc.get_freeze_count() == 0
