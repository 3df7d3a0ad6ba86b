"""The supervisor dashboard: what a live snapshot costs against folding the event log.

A store with the morning of a busy day (bench_reporting's synthetic day: 20,000 conversations
in 4 queues and 50 agents, read up to 13:00, when thousands are waiting or in progress).
Measured in one run, in interleaved rounds:

1. baseline: the real-time view as `GET /api/supervisor/realtime` builds it for each request,
   folding the store's log (`requested_reports(..., "realtime", ...)`, no checkpoint);
2. `Board.snapshot` over the live log the engine's commits keep current (its one-second
   sharing defeated, so each call builds a whole snapshot, and five interactions changed
   since the one before, which today's figures recount);
3. what keeping that log current adds to each event on the worker (`InteractionLog.apply`).

Reported: min and median of each, and the ratio of the baseline to the snapshot
(goal: a snapshot at least 100x cheaper than a fold, and under 50 ms).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from benchmarks.bench_reporting import T0, _events
from flowlang.acd import SkillsAcd
from flowlang.reporting import InteractionLog, Scope
from flowlang.reporting.requested import requested_reports
from flowlang.runtime.engine import Engine
from flowlang.service.dashboard import Board
from flowlang.store import SqliteStore

ROUNDS = 5
NOW = T0 + timedelta(hours=5)


class _Host:
    """What a snapshot reads of the engine besides the log: an ACD that knows no agent
    (presence comes from the log), customers' names from the store."""

    def __init__(self, store: SqliteStore) -> None:
        self.acd = SkillsAcd()
        self.store = store


def _timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    events = [e for e in _events(random.Random(3)) if e[1] < NOW]
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "dashboard.sqlite")
        with store.transaction():
            for kind, at, conv, data in events:
                store.append_event(kind, at, conv, data)
        board = Board(store, None)
        host = cast(Engine, _Host(store))
        first = board.snapshot(host, NOW)
        conversations = random.Random(4).sample(sorted({e[2] for e in events}), 50)
        folds, snapshots = [], []
        for _ in range(ROUNDS):
            folds.append(
                _timed(lambda: requested_reports(store, "realtime", Scope(), NOW, NOW, None, False))
            )
            for n in range(10):
                board.version += 1  # as if events came: no sharing, and each snapshot
                for conv in conversations[n * 5 : n * 5 + 5]:  # recounts five interactions
                    board._today.touch(conv)
                snapshots.append(_timed(lambda: board.snapshot(host, NOW)))
        logged = list(store.iter_events())
        store.close()
    applies = []
    for _ in range(ROUNDS):
        applies.append(_timed(lambda: InteractionLog.from_events(logged)) / len(logged))
    waiting = sum(q["waiting"] for q in first["queues"])
    active = sum(m["active"] for m in first["media"])
    print(
        f"the dashboard at {NOW:%H:%M} of a busy day: {len(events):,} events so far, "
        f"{active:,} interactions active, {waiting:,} waiting, {len(first['agents'])} agents"
    )
    fold_min, fold_med = min(folds), statistics.median(folds)
    snap_min, snap_med = min(snapshots), statistics.median(snapshots)
    print(
        f"  real-time view folding the log (baseline)  min {fold_min * 1e3:8.1f} ms"
        f"  median {fold_med * 1e3:8.1f} ms"
    )
    print(
        f"  Board.snapshot over the live log           min {snap_min * 1e3:8.2f} ms"
        f"  median {snap_med * 1e3:8.2f} ms"
    )
    print(
        f"  ratio (baseline / snapshot, medians)       {fold_med / snap_med:8.0f}x"
        "  (goal >= 100x, snapshot < 50 ms)"
    )
    print(
        f"  keeping the live log current, per event    min {min(applies) * 1e6:8.2f} µs"
        f"  median {statistics.median(applies) * 1e6:8.2f} µs"
    )


if __name__ == "__main__":
    main()
