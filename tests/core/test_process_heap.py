"""A server process's garbage collector settings (``wsload.process.serving_heap``), for real."""

from __future__ import annotations

import gc

from wsload.process import YOUNG_THRESHOLD, serving_heap


def test_serving_heap_freezes_what_exists_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    survivor = [object() for _ in range(10)]  # alive before: frozen with the rest
    try:
        serving_heap()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > len(survivor)
        made_after = [[i] for i in range(100)]  # the connections': still in the collector's sight
        seen = gc.get_objects()  # what collections walk (frozen objects are not in it)
        assert any(obj is made_after for obj in seen)
        assert not any(obj is survivor for obj in seen)
        del seen
    finally:  # the test process goes on: undo what a server process keeps for ever
        gc.unfreeze()
        gc.set_threshold(*before)
    assert len(survivor) == 10
