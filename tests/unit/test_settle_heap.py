"""settle_heap: start-up objects frozen, and the young generation collected far less often."""

import gc

from gateway.tap import GC_THRESHOLDS, settle_heap


def test_settle_heap_freezes_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # CPython's default: an in-process service test may have settled it already
        settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert GC_THRESHOLDS[0] > 700
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
