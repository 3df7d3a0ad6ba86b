"""Reports over a large event log: how much folding costs over just reading the log.

A synthetic day of 20,000 conversations in 4 queues and 50 agents (about 10 events each:
message, flow path, queued, offered or accepted, replies, completed, after-call work, wrap-up
end), written to a SQLite store. Measured in one run:

1. baseline: reading every event back from the store (`iter_events`, JSON decoding included);
2. the same read folded into interactions (`InteractionLog.from_events`);
3. the queue, agent and interaction-details reports over the folded log;
4. a real-time view with 10,000 interactions waiting, which reads the live indexes
   (reported per call; it should not grow with the number waiting);
5. the last day's report of a 30-day store (5,000 conversations a day): folding the whole log
   (baseline) against starting from the previous day's report checkpoint; and the real-time
   view at noon of that day, from the first event and from the checkpoint.

Reported: events per second and the fold's time as a ratio to the plain read (goal: within 2x;
the two alternate, best of 3), and the memory each holds at its peak (tracemalloc), with the
fold's extrapolated to a log of 1,000,000 events (goal: at most 150 MB whatever the size).
"""

from __future__ import annotations

import gc
import random
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flowlang.reporting import (
    InteractionLog,
    Scope,
    agent_performance,
    interaction_details,
    queue_performance,
    realtime,
)
from flowlang.reporting.checkpoint import fold_for_report, fold_live
from flowlang.store import SqliteStore

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CONVERSATIONS = 20_000
QUEUES = ["Retail", "Loans", "Cards", "Social"]
AGENTS = [f"agent{n:02d}" for n in range(50)]


def _events(
    rng: random.Random, conversations: int = CONVERSATIONS, day: int = 0
) -> list[tuple[str, datetime, str, dict[str, Any]]]:
    events = []
    for n in range(conversations):
        conv = f"conv{day}-{n}"
        start = T0 + timedelta(days=day, seconds=rng.uniform(0, 10 * 3600))
        queue, agent = rng.choice(QUEUES), rng.choice(AGENTS)
        answered = start + timedelta(seconds=rng.expovariate(1 / 90))
        done = answered + timedelta(seconds=rng.expovariate(1 / 400))
        channel = rng.choice(["web", "whatsapp", "x_dm", "x_public"])
        events += [
            ("message_in", start, conv, {"channel": channel, "message_kind": "message"}),
            ("flow_path", start, conv, {"nodes": ["start/0", "start/1", "routing/0"]}),
            ("queued", start, conv, {"queue": queue, "skills": ["Cards"], "channel": channel}),
            ("accepted", answered, conv, {"agent": agent, "queue": queue}),
            ("message_out", answered, conv, {"sender": "agent", "agent": agent}),
            ("message_out", done, conv, {"sender": "agent", "agent": agent}),
            ("completed", done, conv, {"agent": agent, "wrap_up": "Resolved", "queue": queue}),
            ("after_call_work", done, conv, {"agent": agent, "queue": queue}),
            ("wrap_up_ended", done + timedelta(seconds=60), conv, {"agent": agent}),
        ]
    return events


def _timed(run: Any, repeat: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def _peak(run: Any) -> tuple[float, Any]:
    """Megabytes allocated at the peak while `run` runs (tracemalloc), and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6, result


def main() -> None:
    rng = random.Random(3)
    events = _events(rng)
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "bench.sqlite")
        with store.transaction():
            for kind, at, conv, data in events:
                store.append_event(kind, at, conv, data)
        read, fold = float("inf"), float("inf")
        for _ in range(3):  # interleaved: the read and the fold alternate
            took, count = _timed(lambda: sum(1 for _ in store.iter_events()), repeat=1)
            read = min(read, took)
            took, log = _timed(lambda: InteractionLog.from_events(store.iter_events()), repeat=1)
            fold = min(fold, took)
        read_peak, _ = _peak(lambda: sum(1 for _ in store.iter_events()))
        fold_peak, _ = _peak(lambda: InteractionLog.from_events(store.iter_events()))
        store.close()
    scope = Scope()
    reports, _ = _timed(
        lambda: (
            queue_performance(log, scope),
            agent_performance(log, scope),
            interaction_details(log, scope),
        )
    )
    print(f"{count:,} events, {CONVERSATIONS:,} conversations, best of 3")
    print(f"  read the log (baseline)   {read:7.3f} s  {count / read:10,.0f} events/s")
    print(
        f"  read + fold               {fold:7.3f} s  {count / fold:10,.0f} events/s"
        f"  (×{fold / read:.2f} the read)"
    )
    print(f"  queue + agent + details   {reports:7.3f} s")
    per_million = fold_peak / count * 1_000_000
    print(
        f"  memory at its peak: read {read_peak:6.1f} MB, read + fold {fold_peak:6.1f} MB "
        f"(about {per_million:,.0f} MB for 1,000,000 events, growing with the log: the fold "
        "keeps every interaction; goal <= 150 MB whatever the size)"
    )

    waiting = InteractionLog()
    moment = T0
    for n in range(10_000):
        moment = T0 + timedelta(seconds=n)
        waiting.apply({"kind": "queued", "at": moment, "conversation_id": f"w{n}", "queue": "Q"})
    small = InteractionLog()
    small.apply({"kind": "queued", "at": T0, "conversation_id": "w0", "queue": "Q"})
    calls = 200
    big, _ = _timed(lambda: [realtime(waiting, moment, scope) for _ in range(calls)])
    one, _ = _timed(lambda: [realtime(small, moment, scope) for _ in range(calls)])
    print(
        f"  real-time view, 10,000 waiting: {big / calls * 1e6:8.1f} µs per view; "
        f"1 waiting: {one / calls * 1e6:8.1f} µs (×{big / one:.2f})"
    )
    checkpoints()


def checkpoints(days: int = 30, per_day: int = 5_000) -> None:
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "month.sqlite")
        with store.transaction():
            for day in range(days):
                for kind, at, conv, data in _events(rng, per_day, day):
                    store.append_event(kind, at, conv, data)
        count = store.last_event_seq()
        midnight = T0.replace(hour=0)
        last, end = midnight + timedelta(days=days - 1), midnight + timedelta(days=days)
        now = end + timedelta(days=1)
        fold_for_report(store, last - timedelta(days=1), [last], now)  # yesterday's report
        whole, _ = _timed(lambda: fold_for_report(store, last, [end], now, use_checkpoints=False))
        resumed, _ = _timed(lambda: fold_for_report(store, last, [end], now))
        noon = last + timedelta(hours=12)
        live_whole, _ = _timed(lambda: fold_live(store, noon, use_checkpoints=False))
        live, _ = _timed(lambda: fold_live(store, noon))
        store.close()
    print(f"the last day's report of a {days}-day store ({count:,} events), best of 3")
    print(f"  from the first event (baseline)      {whole:7.3f} s")
    print(
        f"  from yesterday's report checkpoint   {resumed:7.3f} s  (×{whole / resumed:.1f} faster)"
    )
    print("the real-time view at noon of the last day")
    print(f"  from the first event (baseline)      {live_whole:7.3f} s")
    print(
        f"  from yesterday's report checkpoint   {live:7.3f} s  (×{live_whole / live:.1f} faster)"
    )


if __name__ == "__main__":
    main()
