"""Counts a process's round trips to PostgreSQL by what asked for them (docs/scaling.md, "What
bounds it"): `install(path)` wraps psycopg's `Connection.wait` (every time the driver waits for
the server) and writes the counts to `path` every half second, as JSON. A wait that only sends
(a statement queued in pipeline mode) is not a round trip and is counted apart.

`benchmarks/profile_cluster.py --round-trips` installs it in every `flowlang serve` process it
starts (through a `sitecustomize` module on `PYTHONPATH`) and reads the leader's counts.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tests.round_trips import is_round_trip

ENV = "FLOWLANG_ROUND_TRIPS"  # a folder: each process writes <pid>.json there
ENGINE_CPU = "cpu of the engine's thread"  # (0, seconds) among the counts
_HELPERS = {"_run", "_returning", "_count", "_many", "execute", "executemany", "sync", "_atomic"}


def _site() -> str:
    """The store method that waited and the first caller outside the store."""
    frame = sys._getframe(3)
    method = caller = "?"
    while frame is not None:
        path = frame.f_code.co_filename
        name = frame.f_code.co_name
        if "flowlang" in path and "benchmarks" not in path:
            if "/store/" in path:
                if name not in _HELPERS and method == "?":
                    method = name
            else:
                caller = name
                break
        frame = frame.f_back  # type: ignore[assignment]
    return f"{method} <- {caller}"


def install(folder: str) -> None:
    """Count this process's waits for the server, written to `folder`/<pid>.json."""
    import psycopg

    counts: Counter[str] = Counter()
    engine_cpu = [0.0]
    seconds: dict[str, float] = defaultdict(float)
    original = psycopg.Connection.wait

    def wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name != "flowlang-engine":
            return original(self, gen, *args, **kwargs)
        engine_cpu[0] = time.thread_time()  # the engine thread's CPU so far
        kind = getattr(gen, "__qualname__", type(gen).__name__)
        asks = is_round_trip(self, gen)
        began = time.perf_counter()
        try:
            return original(self, gen, *args, **kwargs)
        finally:
            key = ("wait " if asks else "send ") + kind + ": " + _site()
            counts[key] += 1
            seconds[key] += time.perf_counter() - began

    psycopg.Connection.wait = wait  # type: ignore[method-assign]
    out = Path(folder) / f"{os.getpid()}.json"

    def dump() -> None:
        while True:
            time.sleep(0.5)
            snapshot = {k: [counts[k], seconds[k]] for k in list(counts)}
            snapshot[ENGINE_CPU] = [0, engine_cpu[0]]
            out.with_suffix(".tmp").write_text(json.dumps(snapshot))
            out.with_suffix(".tmp").replace(out)

    threading.Thread(target=dump, name="round-trips", daemon=True).start()


def read(folder: Path, pid: int) -> dict[str, tuple[int, float]]:
    """The counts process `pid` wrote: {what: (waits, seconds)}."""
    path = folder / f"{pid}.json"
    if not path.exists():
        return {}
    return {k: (int(v[0]), float(v[1])) for k, v in json.loads(path.read_text()).items()}
