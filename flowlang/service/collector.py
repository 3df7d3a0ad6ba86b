"""The cyclic garbage collector of the engine process (`flowlang serve`, `engine_main.py`).

With Python's defaults (a collection every 700 allocations net, a full one every hundred of
those once the heap has grown by a quarter) the engine's long-lived objects (the loaded flows,
the app, what recovery read, the ACD's state) were walked again and again: a full collection
stopped a message for up to hundreds of milliseconds, and the mean message cost about 1.4x
the mean with the collector off (`python -m benchmarks engine`, "collector"). The engine
process therefore freezes what it holds once loaded and recovered (`gc.freeze`: never walked
again) and collects less often; reference counting still frees everything at once that is
not in a cycle, which is nearly everything a message makes.
"""

from __future__ import annotations

import gc

# (young objects, young collections a middle one, middle collections a full one)
THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    """Collect less often: every 50,000 allocations net, a full collection rarely."""
    gc.set_threshold(*THRESHOLDS)


def freeze_loaded() -> None:
    """Set aside what the process holds now (after loading and each recovery): collections
    no longer walk it. The young objects are collected first so that little garbage is set
    aside (a cycle dropped later among the frozen objects stays until the process ends)."""
    gc.collect(1)
    gc.freeze()
