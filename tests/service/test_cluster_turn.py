"""`kill -9` of the leader in the middle of a batched turn (docs/scaling.md, "Batched turns"):
the leader processes several events in one transaction, so a leader killed before that
transaction commits has processed them in vain. Whoever leads next processes each of them once:
nothing lost, nothing doubled."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psycopg

from tests.service.cluster import Cluster, whatsapp
from tests.service.helpers import signed_headers
from tests.service.process import ServiceProcess

CUSTOMERS = [f"4477009{n:05d}" for n in range(6)]


def _send(process: ServiceProcess, wa_id: str, event_id: str, text: str) -> None:
    body = whatsapp(wa_id, event_id, text)
    answer = httpx.post(
        f"{process.url}/webhooks/whatsapp",
        content=body,
        headers=signed_headers("whatsapp", body),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def _wait(check: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _unprocessed(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM inbound WHERE processed = 0").fetchone()
        return int(row[0]) if row else -1


def _blocked_on_our_lock(db: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND pg_blocking_pids(pid) @> ARRAY[pg_backend_pid()]"
    ).fetchone()
    return bool(row and row[0])


def test_a_leader_killed_in_the_middle_of_a_batched_turn_loses_and_doubles_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    cluster = Cluster(tmp_path, postgres_url, 2).start()
    try:
        leader, follower = cluster.processes  # the first started leads
        for wa_id in CUSTOMERS:  # each customer's conversation exists
            _send(follower, wa_id, f"wamid.{wa_id}.0", f"{wa_id} first")
        _wait(lambda: _unprocessed(postgres_url) == 0, "the first messages to be processed")
        last = CUSTOMERS[-1]
        with psycopg.connect(postgres_url) as lock:
            # The last customer's conversation is locked: the leader's turn stops when it
            # saves it, with the events before it processed and not committed.
            lock.execute(
                "SELECT c.id FROM conversations c JOIN identities i "
                "ON i.customer_id = c.customer_id WHERE i.kind = 'whatsapp' AND i.value = %s "
                "FOR UPDATE OF c",
                (last,),
            )
            for wa_id in CUSTOMERS:
                _send(follower, wa_id, f"wamid.{wa_id}.1", f"{wa_id} second")
            _wait(lambda: _blocked_on_our_lock(lock), "the leader to wait in its turn")
            leader.kill()
            lock.rollback()
        _wait(lambda: _unprocessed(postgres_url) == 0, "the new leader to process the turn again")
        with psycopg.connect(postgres_url) as db:
            rows = db.execute(
                "SELECT content FROM messages WHERE direction = 'in' ORDER BY seq"
            ).fetchall()
            taken = db.execute("SELECT count(*) FROM events WHERE kind = 'lead_taken'").fetchone()
        texts = [json.loads(r[0])["text"] for r in rows]
        expected = [f"{w} {n}" for n in ("first", "second") for w in CUSTOMERS]
        assert sorted(texts) == sorted(expected)  # each once: nothing lost, nothing doubled
        assert texts[len(CUSTOMERS) :] == [f"{w} second" for w in CUSTOMERS]  # in their order
        assert taken == (2,)  # the follower took the lead
    finally:
        cluster.stop()
