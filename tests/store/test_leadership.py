"""The engine's lead among processes sharing a PostgreSQL store: one holder at a time, the
lead free again when its connection ends, and fencing: a process that lost the lead commits
nothing more (flowlang/store/leadership.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest

from flowlang.store.leadership import Leadership, LeadershipLost
from flowlang.store.postgres import PostgresStore

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_one_process_leads_at_a_time_and_the_lead_is_free_when_its_connection_ends(
    postgres_url: str, postgres_store: PostgresStore
) -> None:
    first = Leadership(postgres_url, "http://first:8080")
    second = Leadership(postgres_url, "http://second:8080")
    try:
        assert first.try_lead() == 1
        assert second.try_lead() is None  # taken
        assert second.leader_url() == "http://first:8080"
        first.close()  # as when its process is killed: the server releases the lock
        assert _bid(second) == 2
        assert second.leader_url() == "http://second:8080" and second.holds()
    finally:
        second.close()


def test_a_process_that_lost_the_lead_commits_nothing_more(postgres_url: str) -> None:
    old = Leadership(postgres_url, "http://old:8080")
    new = Leadership(postgres_url, "http://new:8080")
    with PostgresStore(postgres_url) as store:
        store.fence = old.try_lead()
        with store.transaction():
            store.dead_letter("test", {"n": 1}, "while leading", NOW)
        old.close()  # its lock connection is gone; its store connection still works
        assert _bid(new) == 2
        lost = pytest.raises(LeadershipLost, match="another process has taken the lead")
        with lost, store.transaction():
            store.dead_letter("test", {"n": 2}, "after losing the lead", NOW)
        store.fence = None
        assert [d["reason"] for d in store.dead_letters()] == ["while leading"]
    new.close()


def test_a_process_that_read_before_losing_the_lead_commits_nothing_it_writes_after(
    postgres_url: str,
) -> None:
    """The fence is taken at a unit's first write: reads before it decide nothing, and a lead
    taken while they ran makes the write fail (nothing committed)."""
    old = Leadership(postgres_url, "http://old:8080")
    new = Leadership(postgres_url, "http://new:8080")
    with PostgresStore(postgres_url) as store:
        store.fence = old.try_lead()
        lost = pytest.raises(LeadershipLost)
        with lost, store.transaction():
            assert store.dead_letters() == []
            old.close()
            assert _bid(new) == 2  # no lock of the old leader's is in the way
            store.dead_letter("test", {"n": 1}, "after losing the lead", NOW)
        store.fence = None
        assert store.dead_letters() == []
    new.close()


def test_the_old_leaders_transaction_in_flight_commits_before_the_new_one_leads_or_not_at_all(
    postgres_url: str,
) -> None:
    """The old leader's transaction holds the leader row from its first write, once the server
    has it; its BEGIN, fence and write go down the pipeline, so the new leader may bump the
    epoch first. Either way one leader's work counts: the new one waited and the old one's
    write is kept, or the old one's commit is refused and nothing of it is kept."""
    old = Leadership(postgres_url, "http://old:8080")
    new = Leadership(postgres_url, "http://new:8080")
    taken: list[int | None] = []
    with PostgresStore(postgres_url) as store:
        store.fence = old.try_lead()
        refused = False
        try:
            with store.transaction():
                store.dead_letter("test", {"n": 1}, "decided while leading", NOW)
                old.close()
                bid = threading.Thread(target=lambda: taken.append(_bid(new)))
                bid.start()
                if _waits_on_a_lock(store, new.db.info.backend_pid, tries=50):
                    assert taken == []  # the lead is taken; the bump of the epoch waits for us
        except LeadershipLost:
            refused = True
        bid.join(10)
        assert taken == [2]
        store.fence = None
        kept = [d["reason"] for d in store.dead_letters()]
        assert kept == ([] if refused else ["decided while leading"])
    new.close()


def _bid(leadership: Leadership) -> int:
    """Bid until the lead is had (the server frees a closed connection's lock soon after)."""
    while (epoch := leadership.try_lead()) is None:
        time.sleep(0.02)
    return epoch


def _waits_on_a_lock(store: PostgresStore, pid: int, tries: int = 500) -> bool:
    with psycopg.connect(store.path, autocommit=True) as db:
        for _ in range(tries):
            row = db.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row and row[0] == "Lock":
                return True
            time.sleep(0.02)
    return False
