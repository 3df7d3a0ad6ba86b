"""Where the server's time goes under bench_cluster's traffic (docs/scaling.md, "What bounds
it"): `pg_stat_activity` sampled every few milliseconds while 1 and 2 `flowlang serve`
processes take the traffic of the multi-process tests, each sample of a flowlang connection
counted by what it was doing: running a statement (by its first words), waiting for a lock or
the disk (by the wait event), or idle in a transaction (the server waiting for the process:
round trips and the process's own work). With `--round-trips`, the leader's round trips to
the server per message instead, by the store method that waited and its caller
(`benchmarks/round_trips.py`). The agents work from their live streams, as in the benchmark;
with `--poll`, they poll their work lists instead. Not a benchmark (`make bench` does not run
it): `python -m benchmarks.profile_cluster [--round-trips] [--poll] [MESSAGES]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

from benchmarks import round_trips
from benchmarks.bench_cluster import Agents, children
from tests.postgres_server import NoPostgres, fresh_schema, postgres_server
from tests.service.cluster import Cluster, Traffic

SITE = """import os
if os.environ.get("FLOWLANG_ROUND_TRIPS"):
    from benchmarks.round_trips import install
    install(os.environ["FLOWLANG_ROUND_TRIPS"])
"""

INTERVAL = 0.005


def _what(state: str | None, wait_type: str | None, wait: str | None, query: str) -> str:
    head = " ".join(query.split()[:3])[:40]
    if state == "idle in transaction":
        return "idle in transaction (waiting for the process)"
    if wait_type in ("Lock", "LWLock", "IO", "IPC"):
        return f"waiting: {wait_type}/{wait} in {head}"
    return f"running: {head}"


def _sample(server: str, stop: threading.Event, found: Counter[str]) -> None:
    with psycopg.connect(server, autocommit=True) as db:
        me = db.execute("SELECT pg_backend_pid()").fetchone()
        while not stop.is_set():
            rows = db.execute(
                "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' "
                "AND pid <> %s AND state <> 'idle'",
                (me[0] if me else 0,),
            ).fetchall()
            for state, wait_type, wait, query in rows:
                found[_what(state, wait_type, wait, query or "")] += 1
            found["(samples)"] += 1
            time.sleep(INTERVAL)


def _profile(server: str, processes: int, messages: int, agents: Agents) -> None:
    with tempfile.TemporaryDirectory(prefix="flowlang-profile-") as folder:
        url = fresh_schema(server)
        cluster = Cluster(Path(folder), url, processes).start()
        found: Counter[str] = Counter()
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(url, stop, found))
        try:
            traffic = Traffic(cluster, messages, max(10, messages * 3 // 20), agents=agents)
            sampler.start()
            traffic.run()
        finally:
            stop.set()
            sampler.join()
            cluster.stop()
    samples = found.pop("(samples)")
    print(f"  {processes} process(es): {messages / traffic.processed_in:,.1f} messages/s, ", end="")
    print(f"{samples} samples; busy connections per sample, by what they did:")
    for what, count in found.most_common(12):
        print(f"    {count / samples:6.3f}  {what}")


def _round_trips(server: str, processes: int, messages: int, agents: Agents) -> None:
    """The leader's waits for the server per message, by what waited."""
    with tempfile.TemporaryDirectory(prefix="flowlang-profile-") as folder:
        site = Path(folder) / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITE, "utf-8")
        counts = Path(folder) / "counts"
        counts.mkdir()
        root = str(Path(__file__).resolve().parent.parent)
        os.environ["PYTHONPATH"] = os.pathsep.join([str(site), root])
        os.environ[round_trips.ENV] = str(counts)
        try:
            cluster = Cluster(Path(folder), fresh_schema(server), processes).start()
        finally:
            del os.environ["PYTHONPATH"], os.environ[round_trips.ENV]
        try:
            traffic = Traffic(cluster, messages, max(10, messages * 3 // 20), agents=agents)
            traffic.run()
            leader = cluster.leader()
            assert leader is not None and leader.process is not None
            # (its engine process's: the front's children, read while it runs)
            pids = [leader.process.pid, *children(leader.process.pid)]
            time.sleep(1.0)  # the counts are written every half second
        finally:
            cluster.stop()
        found = {}
        for pid in pids:
            found.update(round_trips.read(counts, pid))
    engine_cpu = found.pop(round_trips.ENGINE_CPU, (0, 0.0))[1]
    waits = {k: v for k, v in found.items() if k.startswith("wait ")}
    total = sum(n for n, _ in waits.values())
    spent = sum(s for _, s in waits.values())
    sends = sum(n for k, (n, _) in found.items() if k.startswith("send "))
    print(
        f"  {processes} process(es): {messages / traffic.processed_in:,.1f} messages/s; the "
        f"leader waited for the server {total / messages:.2f} times a message "
        f"({spent / messages * 1000:.2f} ms), and sent {sends / messages:.2f} statements "
        f"without waiting; its engine thread spent {engine_cpu / messages * 1000:.2f} ms of CPU "
        "a message (from the start: its recovery and lead included); waits a message, by what "
        "waited:"
    )
    for key, (count, seconds) in sorted(waits.items(), key=lambda kv: -kv[1][0])[:20]:
        print(f"    {count / messages:6.3f}  {seconds / count * 1000:6.2f} ms  {key[5:]}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    messages = int(args[0]) if args else 1000
    profile = _round_trips if "--round-trips" in sys.argv else _profile
    agents: Agents = "poll" if "--poll" in sys.argv else "stream"
    try:
        with postgres_server(durable=True) as server:
            for processes in (1, 2):
                profile(server, processes, messages, agents)
    except NoPostgres as exc:
        print(f"  (not measured: {exc})")


if __name__ == "__main__":
    main()
