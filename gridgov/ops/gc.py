"""The garbage collector of a server process: the heap built at start-up frozen, every pause
timed.

A worker holds ~200,000 long-lived objects once the app is built (routes, models, settings,
the OpenAPI document); each full collection walked all of them again, a pause of 0.1–0.3 s
that every request in flight waited for — the long tail of a cheap read. ``freeze_startup_heap``
moves them out of the collector's reach (``gc.freeze``, as CPython documents for servers);
what requests allocate is still collected. ``gridgov_gc_pause_seconds`` shows the pauses.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from gridgov.ops.metrics import GC_PAUSES

_started: dict[int, float] = {}
_observers = {generation: GC_PAUSES.labels(str(generation)) for generation in range(3)}


def _time_pause(phase: str, info: dict[str, Any]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = time.perf_counter()
    elif (began := _started.pop(generation, None)) is not None:
        _observers[generation].observe(time.perf_counter() - began)


def freeze_startup_heap(prepare: Callable[[], object]) -> int:
    """``prepare()`` (what start-up should build before the freeze), collect, then freeze what
    is left — once per process (a test run builds many apps; only the first one's heap is
    frozen, and only it pays for ``prepare``); returns how many objects are frozen."""
    if _time_pause not in gc.callbacks:
        prepare()
        gc.collect()
        gc.freeze()
        gc.callbacks.append(_time_pause)
    return gc.get_freeze_count()
