"""The shared inbound log on PostgreSQL (docs/scaling.md, "Several processes on one store"):
numbered by a sequence, so the intakes of several processes commit side by side, and yet a
conversation's events are read in the order they were made durable: an event never overtakes
an earlier one of its conversation that is still committing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from flowlang.store import open_store
from flowlang.store.migrations import MIGRATIONS, migrate
from flowlang.store.postgres import PostgresDialect, PostgresStore


def _event(sender: str, text: str) -> dict[str, Any]:
    return {"sender_id": sender, "text": text}


def _texts(store: PostgresStore) -> list[str]:
    return [payload["text"] for payload in store.next_inbound(100)]


class _Beside:
    """`work` run on a thread of its own, whose server connection `pid` is watched: it ends,
    or it waits for a lock another transaction holds."""

    def __init__(self, store: PostgresStore, work: Callable[[], object]) -> None:
        row = store.db.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        self.pid = int(row[0])
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:  # shown by the test's assertion
            self.error = exc

    def outcome(self, watcher: Watcher) -> str:
        """ "done" when the work ended, "waiting" once its connection waits for a lock."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                assert self.error is None, self.error
                return "done"
            row = watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (self.pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return "waiting"
            time.sleep(0.01)
        raise AssertionError("the work neither ended nor waited for a lock within 60 s")


Stores = tuple[PostgresStore, PostgresStore, PostgresStore]
Watcher = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def three(postgres_url: str) -> Iterator[Stores]:
    """Two processes' stores taking webhooks and one reading the log, on one schema."""
    with (
        PostgresStore(postgres_url) as first,
        PostgresStore(postgres_url) as second,
        PostgresStore(postgres_url) as reader,
    ):
        yield first, second, reader


@contextmanager
def _beside_alices_open_intake(
    three: Stores, postgres_url: str, event_id: str, event: dict[str, Any]
) -> Iterator[tuple[_Beside, Watcher]]:
    """The second store takes `event` on its own thread while the first store's transaction
    that took Alice's first event ("a1") is still open; it commits when the block ends."""
    first, second, _reader = three
    with psycopg.connect(postgres_url, autocommit=True) as watcher, first.transaction():
        assert first.accept_inbound("whatsapp", "a1", _event("alice", "alice 1"))
        beside = _Beside(second, lambda: second.accept_inbound("whatsapp", event_id, event))
        yield beside, watcher


def test_intakes_of_different_conversations_commit_side_by_side(
    three: Stores, postgres_url: str
) -> None:
    reader = three[2]
    bob = _event("bob", "bob 1")
    with _beside_alices_open_intake(three, postgres_url, "b1", bob) as (beside, watcher):
        # Bob's event commits while Alice's transaction is still open: nothing serialises
        # the two intakes (the counter row that numbered the log did).
        assert beside.outcome(watcher) == "done"
        assert _texts(reader) == ["bob 1"]  # Alice's, numbered first, not committed yet
    # Alice's commits: it comes first, by its number, before the event read already.
    assert _texts(reader) == ["alice 1", "bob 1"]


def test_a_conversations_event_waits_for_its_earlier_one_still_committing(
    three: Stores, postgres_url: str
) -> None:
    reader = three[2]
    alice = _event("alice", "alice 2")
    with _beside_alices_open_intake(three, postgres_url, "a2", alice) as (beside, watcher):
        assert beside.outcome(watcher) == "waiting"
        # Never "alice 2" alone: a reader would process it before "alice 1".
        assert _texts(reader) == []
    beside.thread.join(60)
    assert beside.error is None
    assert _texts(reader) == ["alice 1", "alice 2"]
    numbers = reader.db.execute(
        "SELECT event_id FROM inbound WHERE channel = 'whatsapp' ORDER BY seq"
    ).fetchall()
    assert [row[0] for row in numbers] == ["a1", "a2"]


def test_the_same_sender_on_another_channel_is_another_conversation(
    three: tuple[PostgresStore, PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second, reader = three
    with psycopg.connect(postgres_url, autocommit=True) as watcher, first.transaction():
        first.accept_inbound("whatsapp", "w1", _event("+447700900123", "on whatsapp"))
        beside = _Beside(
            second,
            lambda: second.accept_inbound("sms", "s1", _event("+447700900123", "by sms")),
        )
        assert beside.outcome(watcher) == "done"
    assert _texts(reader) == ["on whatsapp", "by sms"]


def test_an_event_sent_to_two_processes_at_once_is_stored_once(
    three: tuple[PostgresStore, PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second, reader = three
    answers: list[bool] = []
    with psycopg.connect(postgres_url, autocommit=True) as watcher:
        with first.transaction():
            answers.append(first.accept_inbound("whatsapp", "a1", _event("alice", "hi")))
            beside = _Beside(
                second,
                lambda: answers.append(
                    second.accept_inbound("whatsapp", "a1", _event("alice", "hi"))
                ),
            )
            assert beside.outcome(watcher) == "waiting"
        beside.thread.join(60)
    assert answers == [True, False]
    assert _texts(reader) == ["hi"]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_batch_is_numbered_in_its_order_and_an_event_twice_in_it_is_stored_once(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    location = (
        str(request.getfixturevalue("postgres_url"))
        if database == "postgres"
        else tmp_path / "s.db"
    )
    with open_store(location) as store:
        assert store.accept_inbound("web", "old", _event("x", "old"))
        events = [
            ("web", "m3", _event("zed", "third")),
            ("web", "old", _event("x", "old again")),
            ("web", "m1", _event("amy", "first")),
            ("web", "m3", _event("zed", "third again")),
            ("sms", "m1", _event("amy", "by sms")),
        ]
        assert store.accept_inbounds(events) == [True, False, True, False, True]
        assert [p["text"] for p in store.next_inbound(10)] == ["old", "third", "first", "by sms"]
        assert store.accept_inbounds([]) == []


def test_a_store_numbered_by_the_counter_goes_on_from_it_after_the_migration(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as db:
        migrate(PostgresDialect(db), MIGRATIONS[:12])
        db.execute(
            "INSERT INTO inbound (channel, event_id, payload, processed, seq) VALUES "
            "('web', 'e40', '{\"text\": \"done\"}', 1, 40), "
            "('web', 'e41', '{\"text\": \"waiting\"}', 0, 41)"
        )
        db.execute("INSERT INTO counters (name, value) VALUES ('inbound', 41)")
    with PostgresStore(postgres_url) as store:
        assert store.accept_inbound("web", "e42", _event("x", "new"))
        assert [p["text"] for p in store.next_inbound(10)] == ["waiting", "new"]
        rows = store.db.execute("SELECT event_id, seq FROM inbound ORDER BY seq").fetchall()
        assert rows == [("e40", 40), ("e41", 41), ("e42", 42)]
        assert store.db.execute("SELECT 1 FROM counters WHERE name = 'inbound'").fetchone() is None
