"""Run ``twist`` with the garbage collector's time recorded (``gc.callbacks``); used by ``bench/gc_time.py``.

    python bench/gc_probe.py [twist arguments]

``SIGUSR2`` appends the collections and seconds per generation since the last
signal to the JSON-lines file ``AGW_GC_OUT`` and starts counting again.
``AGW_GC_THRESHOLDS`` ("a,b,c") replaces the thresholds the gateway sets, one
second after start-up (after ``settle_heap``), to compare settings.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from typing import Any

from twisted.application.twist._twist import Twist
from twisted.internet import reactor

counts = [0, 0, 0]
seconds = [0.0, 0.0, 0.0]
started = [0.0]


def record(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        started[0] = time.perf_counter()
        return
    counts[info["generation"]] += 1
    seconds[info["generation"]] += time.perf_counter() - started[0]


def dump() -> None:
    with open(os.environ["AGW_GC_OUT"], "a") as out:
        out.write(json.dumps({"collections": counts, "seconds": seconds}) + "\n")
    counts[:] = [0, 0, 0]
    seconds[:] = [0.0, 0.0, 0.0]


def main(argv: list[str]) -> None:
    wanted = os.environ.get("AGW_GC_THRESHOLDS")
    if wanted:
        thresholds = tuple(int(part) for part in wanted.split(","))
        reactor.callWhenRunning(lambda: reactor.callLater(1.0, gc.set_threshold, *thresholds))
    gc.callbacks.append(record)
    signal.signal(signal.SIGUSR2, lambda *_: reactor.callFromThread(dump))
    Twist.main(["twist", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
