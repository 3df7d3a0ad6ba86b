"""Several `flowlang serve` processes on one PostgreSQL store (docs/scaling.md), in one run:
messages/s and ACD decisions/s with 1, 2 and 3 processes on PostgreSQL and with 1 on SQLite.

Each measurement is the full traffic of the multi-process tests (tests/service/cluster.py):
2,000 WhatsApp messages from 300 customers through 8 clients, 10 % also sent to a second
process at once, the four agents of Retail Banking working as the agent workspace does: each
agent's live stream open on a process picked at random, an offer accepted when the stream
brings it, an interaction completed when the stream says it is assigned, through that
process's API. For comparison, PostgreSQL with 1 and 2 processes also with agents polling
their work list on a random process every 20 ms (as the multi-process tests do, to hammer the
API across processes): the agents' API calls per message are shown for each. Messages/s:
2,000 over the time from the first message until every one is processed; ACD decisions/s:
the ACD's notices in the event log (offers, acceptances, requeues, completions, ...) over the
time until every interaction is completed. The configurations are
interleaved over the repetitions; min and median are shown, with the checks (lost, doubled,
out of order, agents over capacity) of every PostgreSQL run. Then once: 3 processes with
`kill -9` of the leader after a third of the messages, and the time until another leads.
Goals: 2 processes >= 1 on PostgreSQL (no collapse); 1 on PostgreSQL >= 50 % of 1 on SQLite.

The work a message makes is not fixed: a customer's message that comes after their
conversation was completed starts another, which is routed, offered, accepted and completed
again, so agents who complete sooner (or an engine that processes later) make more
interactions of the same 2,000 messages; the interactions accepted per message are shown
with each rate, and only rates with about as many interactions compare.

Beside the rates, the CPU each part of the service spent per message (user and system time
from /proc, the whole run): the leader's engine process and its front (each `flowlang serve`
is a front taking the webhooks and an engine process it starts: docs/service.md, "Two
processes"; a `flowlang serve` of one process counts as its engine), the followers' engine
processes and fronts together, and the PostgreSQL server's processes: what a machine with more
cores would run side by side, and what stays on one process.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg

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
Agents = Literal["poll", "stream"]
CONFIGS: list[tuple[str, int, Agents]] = [
    ("SQLite", 1, "stream"),
    ("PostgreSQL", 1, "stream"),
    ("PostgreSQL", 2, "stream"),
    ("PostgreSQL", 3, "stream"),
    ("PostgreSQL", 1, "poll"),
    ("PostgreSQL", 2, "poll"),
]


@dataclass
class Run:
    """One run's figures: rates, the checks, and CPU milliseconds per message by part."""

    rate: float
    decisions: float
    checks: str
    engine: float  # the leader's engine process
    front: float  # the leader's front
    follower_engines: float  # the other services' engine processes together
    follower_fronts: float  # ... and their fronts
    server: float  # PostgreSQL's processes
    calls: float  # the agents' API requests per message (their streams opened included)
    interactions: float  # interactions accepted per message (see the module doc)


def _measure(server: str, store: str, processes: int, agents: Agents) -> Run:
    """One run: messages/s, ACD decisions/s, the checks' summary, CPU per message."""
    with tempfile.TemporaryDirectory(prefix="flowlang-bench-cluster-") as folder:
        location: str | Path = (
            fresh_schema(server) if store == "PostgreSQL" else Path(folder) / "cc.sqlite"
        )
        cluster = Cluster(Path(folder), location, processes).start()
        try:
            leader = cluster.leader() if store == "PostgreSQL" else cluster.processes[0]
            assert leader is not None and leader.process is not None
            front, engine = _parts(leader.process.pid)
            fronts: set[int] = set()
            engines: set[int] = set()
            for process in cluster.processes:
                if process is not leader and process.process is not None:
                    other_front, other_engine = _parts(process.process.pid)
                    fronts |= other_front
                    engines |= other_engine
            servers = _server_processes(server)
            every = front | engine | fronts | engines | servers
            before = {pid: _cpu(pid) for pid in every}
            traffic = Traffic(cluster, MESSAGES, CUSTOMERS, agents=agents)
            traffic.run()
            servers |= _server_processes(server)
            every |= servers
            spent = {pid: _cpu(pid) - before.get(pid, 0.0) for pid in every}
        finally:
            cluster.stop()
        with open_store(location) as db:
            decisions = sum(1 for e in db.iter_events() if e["kind"] in ACD_KINDS)
        checks = _checks(str(location), traffic) if store == "PostgreSQL" else "-"

        def per_message(pids: set[int]) -> float:
            return sum(spent[pid] for pid in pids) / MESSAGES * 1000

        return Run(
            MESSAGES / traffic.processed_in,
            decisions / traffic.finished_in,
            checks,
            per_message(engine),
            per_message(front),
            per_message(engines),
            per_message(fronts),
            per_message(servers) if store == "PostgreSQL" else 0.0,
            traffic.calls.total() / MESSAGES,
            traffic.accepted / MESSAGES,
        )


def _parts(service: int) -> tuple[set[int], set[int]]:
    """A `flowlang serve`'s front and its engine process (a service of one process: its
    engine, and no front)."""
    engines = children(service)
    return ({service}, engines) if engines else (set(), {service})


def _cpu(pid: int) -> float:
    """The CPU seconds (user and system, all threads) process `pid` has used (0: gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(parent: int) -> set[int]:
    """The processes whose parent is `parent`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _server_processes(url: str) -> set[int]:
    """The PostgreSQL server's processes: its postmaster's children (backends, WAL writer...)."""
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute("SELECT pg_backend_pid()").fetchone()
    backend = int(row[0]) if row else 0
    stat = Path(f"/proc/{backend}/stat")
    if not stat.exists():
        return set()
    return children(int(stat.read_text().rsplit(")", 1)[1].split()[1]))


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
            traffic = Traffic(cluster, MESSAGES, CUSTOMERS, agents="stream")
            traffic.run(kill_the_leader)
        finally:
            cluster.stop()
        print(f"  kill -9 of the leader of 3: another leads {took[0]:.2f} s later (goal 10 s)")
        print(f"    {MESSAGES / traffic.processed_in:,.0f} messages/s; {_checks(url, traffic)}")
        print(f"    the agents' streams opened {traffic.streams_opened} times (4 agents)")


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
    runs: dict[tuple[str, int, Agents], list[Run]] = {c: [] for c in CONFIGS}
    loads = [os.getloadavg()[0]]
    for _ in range(REPEATS):
        for config in CONFIGS:
            run = _measure(server, *config)
            runs[config].append(run)
            loads.append(os.getloadavg()[0])
            if run.checks != "-":
                print(f"  ({config[0]} x{config[1]}, {config[2]}: {run.checks})", flush=True)
    print(
        f"  {'':34} {'messages/s min':>15} {'median':>8} {'ACD decisions/s':>16}"
        f" {'API calls/msg':>14} {'interactions/msg':>17}"
        "  CPU ms a message: leader's engine, front; followers' engines, fronts; server"
    )
    rates: dict[tuple[str, int, Agents], list[float]] = {}
    for (store, processes, agents), found in runs.items():
        label = f"{store}, {processes} process{'es' if processes > 1 else ''}, {agents}"
        rates[(store, processes, agents)] = [run.rate for run in found]

        def median(part: str, found: list[Run] = found) -> float:
            return float(statistics.median(getattr(run, part) for run in found))

        print(
            f"  {label:34} {min(r.rate for r in found):15,.1f} {median('rate'):8,.1f} "
            f"{median('decisions'):16,.1f} {median('calls'):14.2f} {median('interactions'):17.2f}"
            f"  {'':18}{median('engine'):5.2f} "
            f"{median('front'):5.2f}; {median('follower_engines'):5.2f} "
            f"{median('follower_fronts'):5.2f}; {median('server'):5.2f}"
        )
    print(f"  load average (1 min) over the runs: {min(loads):.1f} to {max(loads):.1f}")
    one = statistics.median(rates[("PostgreSQL", 1, "stream")])
    two = statistics.median(rates[("PostgreSQL", 2, "stream")])
    sqlite = statistics.median(rates[("SQLite", 1, "stream")])
    polled = statistics.median(rates[("PostgreSQL", 2, "poll")]) / statistics.median(
        rates[("PostgreSQL", 1, "poll")]
    )
    print(f"  PostgreSQL 2 / 1 processes   {two / one:5.2f}  (goal >= 1.00)")
    print(f"  ... with agents polling      {polled:5.2f}  (the same, for comparison)")
    print(f"  PostgreSQL 1 / SQLite 1      {one / sqlite:5.2f}  (goal >= 0.50)")
    _failover(server)


if __name__ == "__main__":
    main()
