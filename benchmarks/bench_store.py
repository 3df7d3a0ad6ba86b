"""Conversation store: durable throughput, and identity lookup among 1,000,000 customers.

1. The same stream of inbound web messages (1,000 customers, a few messages each, the real
   flows/messaging.flow) through an Engine on the in-memory store (baseline), on the SQLite
   store (one file, WAL, synchronous=FULL: every message committed durably before the next;
   and with group commit, `engine.handle_all` of 16 and of 64 messages, one durable commit a
   group, as the service's turns do) and on the PostgreSQL store (a local server started for
   the run with PostgreSQL's durable defaults, over loopback TCP), in interleaved rounds.
   Reported: messages per second each (best and median) and each durable store's share of the
   in-memory throughput (goal for SQLite with group commit: at least 30 %).
2. `resolve_customer` for a returning WhatsApp customer, with 1,000 and with 1,000,000 customers
   stored, on SQLite and on PostgreSQL, the sizes alternating round after round: CPU
   microseconds per lookup (min and median of the rounds) and the ratio (an index lookup: it
   should barely grow; goal 1.2x). SQLite as the service's engine opens it (the file read
   through a memory map) and, on a second connection to the same file, read by read calls as
   a tool opens it (the baseline the mapping is judged against).

Without PostgreSQL installed (`scripts/ensure-system-packages postgresql`) its lines say why
they are missing.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowlang import load_project
from flowlang.events import InboundEvent
from flowlang.runtime.memory import MemoryStore, ScriptedDataActions
from flowlang.runtime.ports import ConversationStore, DataResult
from flowlang.store import SqliteStore
from flowlang.store.postgres import PostgresStore
from tests.postgres_server import NoPostgres, fresh_schema, postgres_server

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TEXTS = ["Hi, I have a question about my loan", "12345678", "thanks", "any news?"]


def _stream(count: int, customers: int) -> list[InboundEvent]:
    rng = random.Random(7)
    return [
        InboundEvent(
            event_id=f"m{i}",
            channel="web",
            account="gbank-web",
            sender_id=f"visitor-{rng.randrange(customers)}",
            text=rng.choice(TEXTS),
            timestamp=T0 + timedelta(seconds=i),
        )
        for i in range(count)
    ]


GROUPS = (16, 64)  # messages a durable commit, with group commit (`engine.handle_all`)


def _throughput(store: ConversationStore, events: list[InboundEvent], group: int = 1) -> float:
    """Messages a second through `engine.handle` (group 1: a commit each), or through
    `engine.handle_all` `group` messages at a time (one commit each group)."""
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    crm = ScriptedDataActions({"CRM Lookup": DataResult("not_found")})
    engine = project.engine(store=store, data_actions=crm)
    start = time.perf_counter()
    if group == 1:
        for event in events:
            engine.handle(event)
    else:
        for first in range(0, len(events), group):
            engine.handle_all(events[first : first + group])
    return len(events) / (time.perf_counter() - start)


def _synced_commits(path: Path, count: int) -> float:
    """Commits per second of one small row each, in plain sqlite3 with the store's settings
    (WAL, synchronous=FULL): the disk's sync, with nothing of ours around it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (n INTEGER)")
        start = time.perf_counter()
        for n in range(count):
            db.execute("BEGIN")
            db.execute("INSERT INTO t VALUES (?)", (n,))
            db.execute("COMMIT")
        return count / (time.perf_counter() - start)
    finally:
        db.close()


def store_throughput(postgres: str | None, count: int = 1000, rounds: int = 5) -> None:
    """Messages per second on each store, best and median of `rounds` interleaved rounds (a
    fresh store each), and each durable store's share of the in-memory throughput: the share
    in each round, against the in-memory run just before it (a shared machine's load drifts
    less between two runs side by side than across the whole bench), min / median / max of the
    rounds. Beside them, synced commits of nothing but one row, the bound of a store that
    commits each message (an in-memory message plus one sync)."""
    events = _stream(count, customers=500)
    rates: dict[str, list[float]] = {"memory": [], "sqlite": [], "postgres": [], "sync": []}
    rates.update({f"sqlite-{group}": [] for group in GROUPS})
    shares: dict[str, list[float]] = {key: [] for key in rates}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):

            def paired(key: str, rate: float) -> None:
                memory = _throughput(MemoryStore(), events)
                rates["memory"].append(memory)
                rates[key].append(rate)
                shares[key].append(rate / memory)

            with SqliteStore(Path(tmp) / f"bench-{round_}.db") as db:
                paired("sqlite", _throughput(db, events))
            for group in GROUPS:
                with SqliteStore(Path(tmp) / f"bench-{round_}-{group}.db") as db:
                    paired(f"sqlite-{group}", _throughput(db, events, group))
            rates["sync"].append(_synced_commits(Path(tmp) / f"sync-{round_}.db", count))
            if postgres is not None:
                with PostgresStore(fresh_schema(postgres)) as pg:
                    paired("postgres", _throughput(pg, events))
    memory = max(rates["memory"])
    print(
        f"  ({count:,} messages, {rounds} interleaved rounds: best / median messages per "
        "second; share of the in-memory run beside it, min / median / max of the rounds)"
    )
    for key, title in (
        ("memory", "in-memory store (baseline)"),
        ("sqlite", "SQLite, a commit a message"),
        *((f"sqlite-{group}", f"SQLite, {group} a commit") for group in GROUPS),
        ("postgres", "PostgreSQL store, durable"),
    ):
        if not rates[key]:
            continue
        best, median = max(rates[key]), statistics.median(rates[key])
        share = ""
        if key != "memory":
            low, mid, high = min(shares[key]), statistics.median(shares[key]), max(shares[key])
            share = f"  {low:6.1%} / {mid:6.1%} / {high:6.1%} of in-memory"
        goal = "  (goal: median >= 30%)" if key.startswith("sqlite-") else ""
        print(f"  {title:<27} {best:8,.0f} / {median:8,.0f}{share}{goal}")
    sync_best, sync_median = max(rates["sync"]), statistics.median(rates["sync"])
    bound = 1 / (1 / memory + 1 / sync_best)  # an in-memory message, then one sync
    print(
        f"  one synced commit alone    {sync_best:8,.0f} / {sync_median:8,.0f}  (plain sqlite3, "
        f"one row): a store that syncs once a message reaches at most {bound / memory:.1%} "
        "of in-memory here"
    )


def _fill(db: SqliteStore, customers: int) -> None:
    """`customers` WhatsApp customers, written in bulk as a migration from a CRM would."""
    rows = ((f"c{i}", f"+4477{i:08d}") for i in range(1, customers + 1))
    with db.transaction():
        db.db.executemany("INSERT INTO customers (id, phone) VALUES (?, ?)", rows)
        db.db.executemany(
            "INSERT INTO identities (kind, value, customer_id) VALUES (?, ?, ?)",
            (
                (kind, value, f"c{i}")
                for i in range(1, customers + 1)
                for kind, value in (("whatsapp", f"4477{i:08d}"), ("phone", f"+4477{i:08d}"))
            ),
        )
        db.db.execute("INSERT INTO counters (name, value) VALUES ('customer', ?)", (customers,))


def _per_lookup(
    lookup: Callable[[int], object],
    customers: int,
    rounds: int = 20_000,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    rng = random.Random(11)
    picks = [rng.randrange(1, customers + 1) for _ in range(rounds)]
    start = clock()
    for i in picks:
        lookup(i)
    return (clock() - start) / rounds * 1e6


def _fill_postgres(db: PostgresStore, customers: int) -> None:
    """The same customers as `_fill`, by COPY (Postgres's bulk load)."""
    with db.db.transaction(), db.db.cursor() as cursor:  # COPY cannot run in a pipeline
        with cursor.copy("COPY customers (id, phone) FROM STDIN") as copy:
            for i in range(1, customers + 1):
                copy.write_row((f"c{i}", f"+4477{i:08d}"))
        with cursor.copy("COPY identities (kind, value, customer_id) FROM STDIN") as copy:
            for i in range(1, customers + 1):
                copy.write_row(("whatsapp", f"4477{i:08d}", f"c{i}"))
                copy.write_row(("phone", f"+4477{i:08d}", f"c{i}"))
        cursor.execute("INSERT INTO counters (name, value) VALUES ('customer', %s)", (customers,))
        cursor.execute("ANALYZE customers")
        cursor.execute("ANALYZE identities")


def _lookup(db: SqliteStore | PostgresStore) -> Callable[[int], object]:
    def lookup(i: int) -> object:
        phone = f"4477{i:08d}"
        view = db.resolve_customer("whatsapp", phone, phone, None)
        assert view.id == f"c{i}" and not view.new
        return view

    return lookup


def identity_lookup(
    postgres: str | None, sizes: tuple[int, ...] = (1_000, 1_000_000), rounds: int = 3
) -> None:
    """Each store filled with each size, all open at once; the lookups alternate between the
    sizes, round after round (best round each), so a busy moment hits every size alike."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        stores: dict[tuple[str, int], SqliteStore | PostgresStore] = {}
        for size in sizes:
            path = Path(tmp) / f"customers-{size}.db"
            db = stack.enter_context(SqliteStore(path, mapped=True))  # as the service's engine
            started = time.perf_counter()
            _fill(db, size)
            filled = time.perf_counter() - started
            print(f"  SQLite: {size:>9,} customers stored in {filled:5.1f} s")
            stores[("SQLite", size)] = db
            # the same file on a connection that reads it by read calls (a tool's): the baseline
            stores[("SQLite, not mapped", size)] = stack.enter_context(SqliteStore(path))
            if postgres is not None:
                pg = stack.enter_context(PostgresStore(fresh_schema(postgres)))
                started = time.perf_counter()
                _fill_postgres(pg, size)
                filled = time.perf_counter() - started
                print(f"  PostgreSQL: {size:>9,} customers stored in {filled:5.1f} s")
                stores[("PostgreSQL", size)] = pg
        measured: dict[tuple[str, int], list[float]] = {key: [] for key in stores}
        for _ in range(rounds):
            for key, opened in stores.items():
                micros = _per_lookup(_lookup(opened), key[1], 5_000, time.process_time)
                measured[key].append(micros)
    print(f"  CPU time, {rounds} interleaved rounds, min (median)")
    for store in ("SQLite", "SQLite, not mapped", "PostgreSQL"):
        mine = [(size, times) for (name, size), times in measured.items() if name == store]
        for size, times in mine:
            goal = "  (goal <= 1.2x)" if size == sizes[-1] else ""
            ratio = min(times) / min(mine[0][1])
            medians = statistics.median(times) / statistics.median(mine[0][1])
            print(
                f"  {store:<18} resolve_customer, {size:>9,} customers  {min(times):6.1f} µs "
                f"({statistics.median(times):6.1f})  {ratio:5.2f}x (medians {medians:.2f}x){goal}"
            )


def main() -> None:
    try:
        with postgres_server(durable=True) as postgres:
            _run(postgres)
    except NoPostgres as exc:
        print(f"  (PostgreSQL not measured: {exc})")
        _run(None)


def _run(postgres: str | None) -> None:
    print("inbound messages through flows/messaging.flow, 1,000 customers")
    store_throughput(postgres)
    print("identity lookup (returning WhatsApp customer)")
    identity_lookup(postgres)


if __name__ == "__main__":
    main()
