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

6. `flowlang report all` on a store of 1,000,000 events, run as a user runs it (a fresh
   process writing every report's rows to a file), alternating with a process that only reads
   the log: the time of each and their ratio (goal: within 2x), and each one's peak resident
   memory (goal: the report within 150 MB whatever the log's size), folding every event and
   resuming from a stored fold (`flowlang store fold`, run before the last day's events were
   written); and, in CPU time in the bench's own process, what each step of the report costs
   against reading the log.

Reported: events per second and the fold's time as a ratio to the plain read (goal: within 2x;
the two alternate, best of 3), and the memory each holds at its peak (tracemalloc): the fold
that keeps everything grows with the log, the one that sets interactions aside (what reports
do) does not.
"""

from __future__ import annotations

import gc
import random
import resource
import subprocess
import sys
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
from flowlang.reporting.checkpoint import SPILL_OVER, fold_for_report, fold_live
from flowlang.reporting.render import csv_chunks
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


def _set_aside(store: SqliteStore) -> int:
    """What `flowlang report all` does with the log: fold it with at most `SPILL_OVER`
    interactions in memory, then read every report's rows once."""
    log = InteractionLog.from_events(store.iter_events(), spill_over=SPILL_OVER)
    scope = Scope()
    rows = 0
    for report in (
        interaction_details(log, scope),
        agent_performance(log, scope),
        queue_performance(log, scope),
    ):
        rows += sum(1 for _ in report.rows)
    return rows


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
        read, fold, streamed = float("inf"), float("inf"), float("inf")
        for _ in range(3):  # interleaved: the read and the folds alternate
            took, count = _timed(lambda: sum(1 for _ in store.iter_events()), repeat=1)
            read = min(read, took)
            took, log = _timed(lambda: InteractionLog.from_events(store.iter_events()), repeat=1)
            fold = min(fold, took)
            took, _ = _timed(lambda: _set_aside(store), repeat=1)
            streamed = min(streamed, took)
        read_peak, _ = _peak(lambda: sum(1 for _ in store.iter_events()))
        fold_peak, _ = _peak(lambda: InteractionLog.from_events(store.iter_events()))
        streamed_peak, _ = _peak(lambda: _set_aside(store))
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
        f"  read + fold in memory     {fold:7.3f} s  {count / fold:10,.0f} events/s"
        f"  (×{fold / read:.2f} the read: the floor of any report that folds every event, "
        "goal of report all ≤ 2×)"
    )
    print(
        f"  read + fold, at most {SPILL_OVER:,} in memory, + every report's rows read"
        f"  {streamed:7.3f} s  (×{streamed / read:.2f} the read)"
    )
    print(f"  queue + agent + details   {reports:7.3f} s")
    print(
        f"  memory at its peak (tracemalloc): read {read_peak:6.1f} MB, read + fold in memory "
        f"{fold_peak:6.1f} MB (grows with the log), read + fold with {SPILL_OVER:,} in memory "
        f"+ reports {streamed_peak:6.1f} MB (does not)"
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
    million()


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


READ_CHILD = """
import sys
from flowlang.store import SqliteStore
with SqliteStore(sys.argv[1]) as store:
    print(sum(1 for _ in store.iter_events()))
"""


def _child(args: list[str]) -> tuple[float, float, float]:
    """Run a Python child process; its wall time (s), peak resident memory (MB) and CPU time
    (s, user and system: what the load of other processes on the machine does not inflate).

    The peak is the child's own (`VmHWM` of its address space, written at exit): the
    `ru_maxrss` that `wait4` gives carries the parent's size over `fork` and `exec`, so after
    a big benchmark in this process every child looked as big as it (1,041 MB each)."""
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", MEASURED_CHILD, peak.name, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        took = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.returncode != 0:
            raise RuntimeError(f"{args} failed: {child.stderr.decode()}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return took, int(peak.read()) / 1024, cpu  # kilobytes


def million(events: int = 1_000_000, rounds: int = 3) -> None:
    """`flowlang report all` on a store of 1,000,000 events, as a user runs it (a fresh
    process, every format's rows written to a file): its peak resident memory and its time
    against a process that only reads the log, alternating; folding every event
    (`--no-checkpoints`), and resuming from the fold `flowlang store fold` stored the evening
    before (the last day's 45,000 events written after it)."""
    rng = random.Random(7)
    per_day = 5_000
    days = -(-events // (9 * per_day))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "million.sqlite"
        before_last_day = (days - 1) * 9 * per_day
        written = 0
        folded = (0.0, 0.0, 0.0)
        for day in range(days):
            if day == days - 1:  # the evening before the last day: store the fold
                folded = _child(["-m", "flowlang", "store", "fold", "--store", str(path)])
            with SqliteStore(path) as store, store.transaction():
                for kind, at, conv, data in _events(rng, per_day, day):
                    if written < events:
                        store.append_event(kind, at, conv, data)
                        written += 1
        with SqliteStore(path) as store:
            count = store.last_event_seq()
        empty = _child(["-c", "import flowlang.cli"])
        reads, reports, resumed = [], [], []
        report = ["-m", "flowlang", "report", "all", "--store", str(path), "--format", "csv"]
        out = ["-o", str(Path(folder) / "report.csv")]
        for _ in range(rounds):  # interleaved: the read and the reports alternate
            reads.append(_child(["-c", READ_CHILD, str(path)]))
            reports.append(_child([*report, "--no-checkpoints", *out]))
            resumed.append(_child([*report, *out]))
        phases = _phases(path)
    read_s = sorted(t for t, _, _ in reads)
    read_cpu = sorted(c for _, _, c in reads)
    read_mb = max(m for _, m, _ in reads)
    print(f"`flowlang report all` on a store of {count:,} events, {rounds} interleaved rounds")
    print(
        f"  read the log (baseline) min {read_s[0]:6.2f} s, median {_median(read_s):6.2f} s; "
        f"CPU time min {read_cpu[0]:6.2f} s, median {_median(read_cpu):6.2f} s"
    )
    for name, runs in (
        ("folding every event (--no-checkpoints)", reports),
        (f"from the stored fold, {count - before_last_day:,} events after it", resumed),
    ):
        took = sorted(t for t, _, _ in runs)
        cpu = sorted(c for _, _, c in runs)
        print(
            f"  report all {name}: min {took[0]:6.2f} s, median {_median(took):6.2f} s: "
            f"×{took[0] / read_s[0]:.2f} (median ×{_median(took) / _median(read_s):.2f}); "
            f"CPU time min {cpu[0]:6.2f} s, median {_median(cpu):6.2f} s: "
            f"×{cpu[0] / read_cpu[0]:.2f} (median ×{_median(cpu) / _median(read_cpu):.2f}); "
            f"goal ≤ 2×; peak {max(m for _, m, _ in runs):6.1f} MB"
        )
    print(
        f"  storing the fold of {before_last_day:,} events (`flowlang store fold`, once): "
        f"{folded[0]:6.2f} s (CPU {folded[2]:6.2f} s), peak {folded[1]:6.1f} MB"
    )
    print(
        f"  peak resident memory: python with flowlang imported {empty[1]:6.1f} MB, "
        f"read the log {read_mb:6.1f} MB (goal of a report ≤ 150 MB)"
    )
    read = phases["read the log"]
    print("  where the time goes (CPU time in this process, each a share of reading the log):")
    for name, seconds in phases.items():
        print(f"    {name:<60} {seconds:6.2f} s  ×{seconds / read:.2f}")


def _median(values: list[float]) -> float:
    return values[len(values) // 2]


def _phases(path: Path) -> dict[str, float]:
    """`report all`'s steps, each timed on its own in CPU time: the read, the fold with
    everything in memory and with interactions set aside as a report does, the agent and
    queue reports on that log, the interaction details as CSV."""
    clock = time.process_time
    scope = Scope()
    phases: dict[str, float] = {}
    with SqliteStore(path) as store:
        started = clock()
        sum(1 for _ in store.iter_events())
        phases["read the log"] = clock() - started
        started = clock()
        InteractionLog.from_events(store.iter_events())
        phases["read and fold, everything in memory"] = clock() - started
        gc.collect()
        started = clock()
        log = InteractionLog.from_events(store.iter_events(), spill_over=SPILL_OVER)
        phases["read and fold, interactions set aside (as reports do)"] = clock() - started
        started = clock()
        agent_performance(log, scope)
        queue_performance(log, scope)
        phases["agent and queue reports (each reads the log's interactions)"] = clock() - started
        started = clock()
        sum(len(chunk) for chunk in csv_chunks(interaction_details(log, scope)))
        phases["interaction details written as CSV"] = clock() - started
        started = clock()
        (log,) = fold_for_report(store, None, [None], T0, spill_over=SPILL_OVER)
        phases["the stored fold taken up, the events after it folded"] = clock() - started
    return phases


# Runs `-c CODE ARGS...` or `-m MODULE ARGS...` and writes the peak resident memory of this
# process (kB) to the file named first.
MEASURED_CHILD = """
import atexit, runpy, sys
peak_file, how, what, *rest = sys.argv[1:]
def _peak():
    with open("/proc/self/status") as status, open(peak_file, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(_peak)
sys.argv = [what, *rest]
if how == "-m":
    runpy.run_module(what, run_name="__main__", alter_sys=True)
else:
    exec(compile(what, "<child>", "exec"), {"__name__": "__main__"})
"""


if __name__ == "__main__":
    main()
