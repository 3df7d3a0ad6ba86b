"""Where the server's time goes under bench_cluster's traffic (docs/scaling.md, "What bounds
it"): `pg_stat_activity` sampled every few milliseconds while 1 and 2 `flowlang serve`
processes take the traffic of the multi-process tests, each sample of a flowlang connection
counted by what it was doing: running a statement (by its first words), waiting for a lock or
the disk (by the wait event), or idle in a transaction (the server waiting for the process:
round trips and the process's own work). Not a benchmark (`make bench` does not run it):
`python -m benchmarks.profile_cluster [MESSAGES]`.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

from tests.postgres_server import NoPostgres, fresh_schema, postgres_server
from tests.service.cluster import Cluster, Traffic

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


def _profile(server: str, processes: int, messages: int) -> None:
    with tempfile.TemporaryDirectory(prefix="flowlang-profile-") as folder:
        url = fresh_schema(server)
        cluster = Cluster(Path(folder), url, processes).start()
        found: Counter[str] = Counter()
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(url, stop, found))
        try:
            traffic = Traffic(cluster, messages, max(10, messages * 3 // 20))
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


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    try:
        with postgres_server(durable=True) as server:
            for processes in (1, 2):
                _profile(server, processes, messages)
    except NoPostgres as exc:
        print(f"  (not measured: {exc})")


if __name__ == "__main__":
    main()
