"""Several `flowlang serve` processes on one PostgreSQL store (docs/scaling.md), in one run:
messages/s and ACD decisions/s with 1, 2 and 3 processes on PostgreSQL and with 1 on SQLite.

Each measurement is the full traffic of the multi-process tests (tests/service/cluster.py):
2,000 WhatsApp messages from 300 customers through 8 clients, 10 % also sent to a second
process at once, the four agents of Retail Banking accepting and completing through the API of
random processes. Messages/s: 2,000 over the time from the first message until every one is
processed; ACD decisions/s: the ACD's notices in the event log (offers, acceptances, requeues,
completions, ...) over the time until every interaction is completed. The configurations are
interleaved over the repetitions; min and median are shown, with the checks (lost, doubled,
out of order, agents over capacity) of every PostgreSQL run. Then once: 3 processes with
`kill -9` of the leader after a third of the messages, and the time until another leads.
Goals: 2 processes >= 1 on PostgreSQL (no collapse); 1 on PostgreSQL >= 50 % of 1 on SQLite.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from flowlang.store import open_store
from tests.postgres_server import NoPostgres, fresh_schema, postgres_server
from tests.service.cluster import Cluster, Traffic, Verdict

MESSAGES = 2000
CUSTOMERS = 300
REPEATS = 3
ACD_KINDS = {
    "waiting",
    "offered",
    "accepted",
    "requeued",
    "withdrawn",
    "expired",
    "disconnected",
    "ring_widened",
    "completed",
}
CONFIGS = [("SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 2), ("PostgreSQL", 3)]


def _measure(server: str, store: str, processes: int) -> tuple[float, float, str]:
    """One run: messages/s, ACD decisions/s and the checks' summary."""
    with tempfile.TemporaryDirectory(prefix="flowlang-bench-cluster-") as folder:
        location: str | Path = (
            fresh_schema(server) if store == "PostgreSQL" else Path(folder) / "cc.sqlite"
        )
        cluster = Cluster(Path(folder), location, processes).start()
        try:
            traffic = Traffic(cluster, MESSAGES, CUSTOMERS)
            traffic.run()
        finally:
            cluster.stop()
        with open_store(location) as db:
            decisions = sum(1 for e in db.iter_events() if e["kind"] in ACD_KINDS)
        checks = _checks(str(location), traffic) if store == "PostgreSQL" else "-"
        return MESSAGES / traffic.processed_in, decisions / traffic.finished_in, checks


def _checks(url: str, traffic: Traffic) -> str:
    verdict = Verdict.of(url, traffic.sent)
    return (
        f"lost {len(verdict.lost)}, doubled {len(verdict.doubled)}, out of order "
        f"{len(verdict.out_of_order)}, over capacity {len(verdict.over_capacity())}, "
        f"offered twice {len(verdict.offered_twice)}"
    )


def _failover(server: str) -> None:
    with tempfile.TemporaryDirectory(prefix="flowlang-bench-cluster-") as folder:
        url = fresh_schema(server)
        cluster = Cluster(Path(folder), url, 3).start()
        took: list[float] = []

        def kill_the_leader(traffic: Traffic) -> None:
            while len(traffic.sent) < MESSAGES // 3:
                time.sleep(0.02)
            leader = cluster.leader()
            assert leader is not None
            killed = time.monotonic()
            leader.kill()
            while cluster.leader() is None:
                time.sleep(0.02)
            took.append(time.monotonic() - killed)

        try:
            traffic = Traffic(cluster, MESSAGES, CUSTOMERS)
            traffic.run(kill_the_leader)
        finally:
            cluster.stop()
        print(f"  kill -9 of the leader of 3: another leads {took[0]:.2f} s later (goal 10 s)")
        print(f"    {MESSAGES / traffic.processed_in:,.0f} messages/s; {_checks(url, traffic)}")


def main() -> None:
    try:
        with postgres_server(durable=True) as server:
            _run(server)
    except NoPostgres as exc:
        print(f"  (not measured: {exc})")


def _run(server: str) -> None:
    print(
        f"{MESSAGES:,} WhatsApp messages from {CUSTOMERS} customers, 8 clients, "
        "4 agents accepting and completing"
    )
    rates: dict[tuple[str, int], list[float]] = {c: [] for c in CONFIGS}
    decisions: dict[tuple[str, int], list[float]] = {c: [] for c in CONFIGS}
    for _ in range(REPEATS):
        for config in CONFIGS:
            rate, per_second, checks = _measure(server, *config)
            rates[config].append(rate)
            decisions[config].append(per_second)
            if checks != "-":
                print(f"  ({config[0]} x{config[1]}: {checks})", flush=True)
    print(f"  {'':24} {'messages/s min':>15} {'median':>8} {'ACD decisions/s':>16}")
    for (store, processes), found in rates.items():
        label = f"{store}, {processes} process{'es' if processes > 1 else ''}"
        acd = statistics.median(decisions[(store, processes)])
        print(f"  {label:24} {min(found):15,.1f} {statistics.median(found):8,.1f} {acd:16,.1f}")
    one = statistics.median(rates[("PostgreSQL", 1)])
    two = statistics.median(rates[("PostgreSQL", 2)])
    sqlite = statistics.median(rates[("SQLite", 1)])
    print(f"  PostgreSQL 2 / 1 processes   {two / one:5.2f}  (goal >= 1.00)")
    print(f"  PostgreSQL 1 / SQLite 1      {one / sqlite:5.2f}  (goal >= 0.50)")
    _failover(server)


if __name__ == "__main__":
    main()
