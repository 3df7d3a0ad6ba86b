"""Each PostgreSQL connection of a service process is opened again after the server dropped it
(docs/scaling.md, "When a connection is lost"): each test ends one connection, by its
application name, from another session (`pg_terminate_backend`, as a server restart, an idle
timeout or a proxy would) and shows the service carries on, with nothing lost or doubled.

Each test has a database of its own, so that ending the connections of a name ends this test's
and no other's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.users import new_token, token_hash
from flowlang.service import create_app
from flowlang.store.inbox import Entry
from flowlang.store.postgres import PostgresStore
from flowlang.store.postgres_inbox import PostgresInbox
from tests.postgres_server import fresh_database, terminate
from tests.service.helpers import environment, settings_for, signed_headers, whatsapp_text

WORK = "/api/agent/interactions"  # an agent's API: signed in by the token


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def database(postgres_server_url: str) -> str:
    return fresh_database(postgres_server_url)


def wait_for(what: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.02)
    return what()


def post(client: TestClient | httpx.Client, event_id: str, sender: str = "447700900001") -> Any:
    body = json.dumps(whatsapp_text(sender, event_id, f"hello {event_id}")).encode()
    return client.post("/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body))


def inbound(url: str) -> dict[str, int]:
    """Each inbound event id in the store, with whether it was processed."""
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT event_id, processed FROM inbound").fetchall()
    return {str(event_id): int(processed) for event_id, processed in rows}


def processed(url: str, *event_ids: str) -> Callable[[], bool]:
    return lambda: all(inbound(url).get(event_id) == 1 for event_id in event_ids)


@pytest.fixture
def client(tmp_path: Path, database: str) -> Iterator[TestClient]:
    """One service process on the test's database (no `on_deposed`: as `flowlang serve`)."""
    sent = RecordingAdapter()
    app = create_app(settings_for(tmp_path, store=database), adapters=[sent])
    app.state.sent = sent
    with TestClient(app) as client:
        assert wait_for(lambda: client.app.state.service.worker.role == "leader")  # type: ignore[attr-defined]
        yield client


def test_the_next_webhook_after_the_intakes_connection_is_lost_is_stored_and_processed(
    client: TestClient, database: str
) -> None:
    assert post(client, "wamid.1").status_code == 200
    assert terminate(database, "flowlang-intake") == 1
    lost = post(client, "wamid.2")  # the one that finds the connection lost: nothing kept
    assert lost.status_code == 503 and lost.headers["Retry-After"] == "1", lost.text
    assert "wamid.2" not in inbound(database)
    again = post(client, "wamid.2")  # the vendor's retry
    assert again.status_code == 200 and again.json()["accepted"] == 1, again.text
    assert post(client, "wamid.3").json()["accepted"] == 1
    assert wait_for(processed(database, "wamid.1", "wamid.2", "wamid.3"))
    assert sorted(inbound(database)) == ["wamid.1", "wamid.2", "wamid.3"]  # none twice


def test_a_queued_delivery_goes_out_after_the_outbox_connection_is_lost(
    client: TestClient, database: str
) -> None:
    sent: RecordingAdapter = client.app.state.sent  # type: ignore[attr-defined]
    assert post(client, "wamid.1").status_code == 200
    assert wait_for(lambda: len(sent.sent) >= 1), "the flow's first reply was not sent"
    before = len(sent.sent)
    assert terminate(database, "flowlang-outbox") == 1
    assert post(client, "wamid.2").status_code == 200
    assert wait_for(lambda: len(sent.sent) > before), "nothing delivered after the loss"
    keys = [message.message_id for message in sent.sent]
    assert len(keys) == len(set(keys))  # nothing sent twice
    assert wait_for(lambda: _outbox(database) == 0), "messages left in the outbox"


def _outbox(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM outbox").fetchone()
    return int(row[0]) if row else 0


def test_sign_in_works_after_the_token_readers_connection_is_lost_and_is_503_while_it_cannot(
    client: TestClient, database: str
) -> None:
    token = new_token()
    with PostgresStore(database) as store:
        store.add_user("alice", "agent", token_hash(token), datetime.now(UTC))
    signed = {"Authorization": f"Bearer {token}"}
    assert client.get(WORK, headers=signed).status_code == 200
    assert terminate(database, "flowlang-tokens") == 1
    assert client.get(WORK, headers=signed).status_code == 200
    # The store cannot be reached: refused at once with 503, never taken for a bad token (401).
    reader = client.app.state.service.tokens  # type: ignore[attr-defined]
    reader.close()
    reader.url = "postgresql://flowlang@127.0.0.1:1/none?connect_timeout=1"
    down = client.get(WORK, headers=signed)
    assert (down.status_code, down.headers.get("Retry-After")) == (503, "1"), down.text
    assert client.get(WORK, headers=signed).status_code == 503  # until it can be reached
    reader.url = database
    assert wait_for(lambda: client.get(WORK, headers=signed).status_code == 200)


def test_the_leader_is_woken_by_other_processes_webhooks_after_its_listen_connection_is_lost(
    client: TestClient, database: str
) -> None:
    """The leader looks at the shared log every `poll_interval` (made long here) or when a
    follower's NOTIFY wakes it: after its LISTEN connection is lost it listens again, and wakes
    once then for what was announced while it did not."""
    worker = client.app.state.service.worker  # type: ignore[attr-defined]
    assert worker.cluster is not None
    listener = worker.cluster.listener
    assert wait_for(listener.listening.is_set)
    worker.cluster.poll_interval = 60.0
    follower = PostgresInbox(database)  # another process's intake: it notifies the leader
    try:
        assert post(client, "wamid.0").status_code == 200  # the leader's own: its turn now
        assert wait_for(processed(database, "wamid.0"))
        _append(follower, "wamid.1")
        assert wait_for(processed(database, "wamid.1"), timeout=10)
        woken = listener.wake
        wakes: list[float] = []

        def counted() -> None:
            wakes.append(time.monotonic())
            woken()

        listener.wake = counted
        assert terminate(database, "flowlang-listen") == 1
        assert wait_for(lambda: bool(wakes)), "not woken once it listened again"
        assert listener.listening.is_set()
        _append(follower, "wamid.2")
        assert wait_for(processed(database, "wamid.2"), timeout=10), "the NOTIFY went unheard"
    finally:
        follower.close()


def _append(inbox: PostgresInbox, event_id: str) -> None:
    event = {
        "event_id": event_id,
        "channel": "whatsapp",
        "sender_id": "447700900002",
        "text": f"hello {event_id}",
        "timestamp": datetime.now(UTC).isoformat(),
    }
    appended = inbox.append([[Entry("whatsapp", event_id, event)]])
    assert appended[0].seqs[0] is not None


@pytest.mark.parametrize("name", ["flowlang-engine", "flowlang-lead"])
def test_a_single_process_takes_the_lead_again_after_its_engine_or_lock_connection_is_lost(
    client: TestClient, database: str, name: str
) -> None:
    """It gives up the lead (it could not write, or the lock went with the connection) and,
    with no other process to take it, takes it again on new connections: the events that came
    meanwhile are processed, once."""
    service = client.app.state.service  # type: ignore[attr-defined]
    first = service.worker.cluster.leadership.epoch
    assert post(client, "wamid.1").status_code == 200
    assert wait_for(processed(database, "wamid.1"))
    assert terminate(database, name) == 1
    assert post(client, "wamid.2").status_code == 200  # the intake's connection is its own
    assert wait_for(lambda: service.worker.cluster.leadership.epoch not in (None, first))
    assert wait_for(lambda: service.worker.role == "leader")
    assert wait_for(processed(database, "wamid.1", "wamid.2"))
    assert post(client, "wamid.3").status_code == 200
    assert wait_for(processed(database, "wamid.3"))
    assert client.get("/ready").json()["role"] == "leader"
    with psycopg.connect(database) as db:
        taken = db.execute("SELECT count(*) FROM events WHERE kind = 'lead_taken'").fetchone()
    assert taken == (2,)


def test_a_follower_whose_lock_connection_was_lost_still_takes_the_lead(
    tmp_path: Path, database: str
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    leader_app = create_app(settings_for(tmp_path / "a", store=database))
    follower_app = create_app(settings_for(tmp_path / "b", store=database))
    with ExitStack() as leading:
        leader = leading.enter_context(TestClient(leader_app))
        service = leader.app.state.service  # type: ignore[attr-defined]
        assert wait_for(lambda: service.worker.role == "leader")
        with TestClient(follower_app) as follower:
            other = follower.app.state.service  # type: ignore[attr-defined]
            assert other.worker.role == "follower"
            pid = other.worker.cluster.leadership.db.info.backend_pid
            with psycopg.connect(database, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            leading.close()  # the leader stops: its lock is released
            assert wait_for(lambda: other.worker.role == "leader"), "the follower never led"
            assert post(follower, "wamid.1").status_code == 200
            assert wait_for(processed(database, "wamid.1"))
