"""Conversation store: durable throughput, and identity lookup among 1,000,000 customers.

1. The same stream of inbound web messages (1,000 customers, a few messages each, the real
   flows/messaging.flow) through an Engine on the in-memory store (baseline) and on the SQLite
   store (one file, WAL, synchronous=FULL: every message committed durably before the next).
   Reported: messages per second each and the ratio.
2. `resolve_customer` for a returning WhatsApp customer, with 1,000 and with 1,000,000 customers
   stored: microseconds per lookup and the ratio (an index lookup: it should barely grow).
"""

from __future__ import annotations

import random
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


def _throughput(store: ConversationStore, events: list[InboundEvent]) -> float:
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    crm = ScriptedDataActions({"CRM Lookup": DataResult("not_found")})
    engine = project.engine(store=store, data_actions=crm)
    start = time.perf_counter()
    for event in events:
        engine.handle(event)
    return len(events) / (time.perf_counter() - start)


def store_throughput(count: int = 2000) -> None:
    events = _stream(count, customers=1000)
    memory = _throughput(MemoryStore(), events)
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "bench.db") as db:
        durable = _throughput(db, events)
    print(f"  in-memory store (baseline)  {memory:10,.0f} messages/s")
    print(f"  SQLite store, durable       {durable:10,.0f} messages/s")
    print(f"  ratio                       {memory / durable:10.2f}x slower (durable commits)")


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


def _per_lookup(lookup: Callable[[int], object], customers: int, rounds: int = 20_000) -> float:
    rng = random.Random(11)
    picks = [rng.randrange(1, customers + 1) for _ in range(rounds)]
    start = time.perf_counter()
    for i in picks:
        lookup(i)
    return (time.perf_counter() - start) / rounds * 1e6


def identity_lookup(sizes: tuple[int, ...] = (1_000, 1_000_000)) -> None:
    results: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            with SqliteStore(Path(tmp) / f"customers-{size}.db") as db:
                started = time.perf_counter()
                _fill(db, size)
                filled = time.perf_counter() - started

                def lookup(i: int, db: SqliteStore = db) -> object:
                    phone = f"4477{i:08d}"
                    view = db.resolve_customer("whatsapp", phone, phone, None)
                    assert view.id == f"c{i}" and not view.new
                    return view

                results.append((size, _per_lookup(lookup, size)))
                print(f"  {size:>9,} customers stored in {filled:5.1f} s")
    base = results[0][1]
    for size, micros in results:
        print(f"  resolve_customer, {size:>9,} customers  {micros:7.1f} µs  {micros / base:5.2f}x")


def main() -> None:
    print("inbound messages through flows/messaging.flow, 1,000 customers")
    store_throughput()
    print("identity lookup (returning WhatsApp customer)")
    identity_lookup()


if __name__ == "__main__":
    main()
