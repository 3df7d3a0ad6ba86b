"""A service process among several on one PostgreSQL store: the follower forwards the API to
the leader and takes the lead when the leader stops; a leader deposed by another process takes
no decision more (docs/scaling.md)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from flowlang.store.leadership import Leadership
from flowlang.store.postgres import PostgresStore
from flowlang.store.postgres_inbox import PostgresInbox
from tests.ports import free_port
from tests.service.api_helpers import Stream
from tests.service.helpers import (
    environment,
    payload,
    settings_for,
    signed_headers,
    whatsapp_text,
)
from tests.service.threaded_server import threaded_server


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def token(postgres_url: str) -> str:
    token = new_token()
    with PostgresStore(postgres_url) as store:
        store.add_user("alice", "agent", token_hash(token), datetime.now(UTC))
    return token


def _serve(folder: Path, url: str) -> Iterator[str]:
    """The app as a real server on a free port, advertising that port; yields its URL."""
    port = free_port()
    app = create_app(settings_for(folder, store=url, port=port))
    with threaded_server(app, port):
        yield f"http://127.0.0.1:{port}"


def test_a_follower_forwards_the_api_to_the_leader_and_leads_when_it_stops(
    tmp_path: Path, postgres_url: str, token: str
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    leading = _serve(tmp_path / "a", postgres_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    leader = next(leading)
    assert httpx.get(leader + "/ready").json()["role"] == "leader"
    with TestClient(create_app(settings_for(tmp_path / "b", store=postgres_url))) as follower:
        assert follower.get("/ready").json()["role"] == "follower"
        # The leader's ACD answers, through the follower.
        changed = follower.put("/api/agent/presence", json={"state": "away"}, headers=auth)
        assert changed.status_code == 200, changed.text
        seen = httpx.get(leader + "/api/agent/presence", headers=auth).json()
        assert seen["state"] == "away"
        assert follower.get("/api/agent/presence").status_code == 401  # the leader's refusal
        # The browser's sign-in too (the token is checked by the leader's engine worker).
        signed = follower.post(
            "/signin",
            content=f"token={token}",
            headers={
                "Origin": "http://testserver",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            follow_redirects=False,
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/agent"
        assert signed.headers["set-cookie"].startswith("flowlang_session=")
        # A request already forwarded once (by a process: its mark is the store's key) is not
        # forwarded again; a client's own header of that name is dropped, not trusted.
        leadership = Leadership(postgres_url, "")
        try:
            key = leadership.forwarding_key().decode()
        finally:
            leadership.close()
        looped = follower.get("/api/agent/presence", headers={**auth, "X-Flowlang-Forwarded": key})
        assert looped.status_code == 503 and looped.headers["retry-after"] == "1"
        for claimed in ("1", key + "x"):
            mine = follower.get(
                "/api/agent/presence", headers={**auth, "X-Flowlang-Forwarded": claimed}
            )
            assert mine.status_code == 200 and mine.json()["state"] == "away", mine.text
        next(leading, None)  # the leader stops and gives up the lead
        for _ in range(200):
            if follower.get("/ready").json()["role"] == "leader":
                break
            time.sleep(0.05)
        assert follower.get("/ready").json()["role"] == "leader"
        answer = follower.get("/api/agent/presence", headers=auth)
        assert answer.status_code == 200  # answered by its own engine now


def test_an_agents_live_stream_through_a_follower_hears_the_leaders_events(
    tmp_path: Path, postgres_url: str, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    auth = {"Authorization": f"Bearer {token}"}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    leading = _serve(tmp_path / "a", postgres_url)
    leader = next(leading)
    following = _serve(tmp_path / "b", postgres_url)
    follower = next(following)
    try:
        assert httpx.get(follower + "/ready").json()["role"] == "follower"
        with (
            httpx.Client(base_url=follower, timeout=10) as client,
            client.stream("GET", "/api/agent/stream", headers=auth) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = Stream(response)
            assert stream.until("hello")["presence"] == "available"
            # Set on the leader directly: the stream opened on the follower hears it.
            away = httpx.put(leader + "/api/agent/presence", json={"state": "away"}, headers=auth)
            assert away.status_code == 200
            assert stream.until("presence")["state"] == "away"
        # The forwarded requests' URLs (a browser's stream ticket is in the query) are not logged.
        assert not [r for r in caplog.records if "/api/agent/stream" in r.getMessage()]
    finally:
        next(following, None)
        next(leading, None)


def test_a_follower_with_no_leader_to_forward_to_answers_503(
    tmp_path: Path, postgres_url: str, token: str
) -> None:
    sent_by = {"first": RecordingAdapter(), "second": RecordingAdapter()}
    # The leader advertises a free port that nothing listens on (not 8080, which may be taken).
    settings = settings_for(tmp_path, store=postgres_url, port=free_port())
    with TestClient(create_app(settings, adapters=[sent_by["first"]])) as first:
        assert first.get("/ready").json()["role"] == "leader"
        with TestClient(create_app(settings, adapters=[sent_by["second"]])) as second:
            # The leader's advertised address has no server behind it (TestClient only).
            answer = second.get("/api/agent/presence", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
            assert "did not answer" in answer.json()["detail"]
            body = payload("whatsapp")  # webhooks are still taken, for the leader to process
            taken = second.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert taken.status_code == 200 and taken.json()["accepted"] == 1
            for _ in range(200):
                if first.get("/ready").json()["unprocessed"] == 0:
                    break
                time.sleep(0.05)
            assert first.get("/ready").json()["unprocessed"] == 0  # the leader processed it
            for _ in range(200):
                if sent_by["first"].sent:
                    break
                time.sleep(0.05)
    # The leader's outbox delivered the flow's replies; the follower's delivered nothing.
    assert sent_by["first"].sent and sent_by["second"].sent == []


def test_a_leader_deposed_by_another_process_decides_nothing_more(
    tmp_path: Path, postgres_url: str
) -> None:
    deposed: list[bool] = []
    app = create_app(
        settings_for(tmp_path, store=postgres_url), on_deposed=lambda: deposed.append(True)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/ready").json()["role"] == "leader"
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("UPDATE leader SET epoch = epoch + 1")  # as a process taking the lead
        body = payload("whatsapp")
        answer = client.post(
            "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
        )
        # Taking a webhook decides nothing: the event is durable in the shared log, for
        # whichever process leads now; the deposed one's engine finds out at its next turn.
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
        ready = client.get("/ready")
        for _ in range(100):
            if ready.status_code == 503 and ready.json()["role"] == "deposed":
                break
            time.sleep(0.05)
            ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["role"] == "deposed"
        assert deposed == [True]
    with psycopg.connect(postgres_url) as db:
        unprocessed = "SELECT count(*) FROM inbound WHERE processed = 0"
        (inbound,) = db.execute(unprocessed).fetchone() or (0,)
        (messages,) = db.execute("SELECT count(*) FROM messages").fetchone() or (0,)
    assert (inbound, messages) == (1, 0)  # kept for the new leader, processed by no one here


def test_a_follower_that_took_webhooks_waits_for_work_instead_of_spinning(
    tmp_path: Path, postgres_url: str
) -> None:
    PostgresStore(postgres_url).close()  # the schema, made
    other = Leadership(postgres_url, "http://127.0.0.1:9")  # another process leads
    assert other.try_lead() is not None
    try:
        with TestClient(create_app(settings_for(tmp_path, store=postgres_url))) as client:
            worker = client.app.state.service.worker  # type: ignore[attr-defined]
            assert worker.role == "follower"
            cycles: list[bool] = []  # whether each turn of the worker's loop waited for work
            cycle = worker._cycle

            def recorded(block: bool) -> object:
                cycles.append(block)
                return cycle(block)

            worker._cycle = recorded
            body = payload("whatsapp")
            answer = client.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert answer.json()["accepted"] == 1
            taken = len(cycles)
            while len(cycles) < taken + 3:  # each waits up to the next bid (half a second)
                time.sleep(0.05)
            # The event is the leader's to process: the follower's loop goes back to waiting
            # (it spun without pause before, taking a core from the leader and the server).
            assert cycles[taken:] == [True] * (len(cycles) - taken)
    finally:
        other.close()


def test_the_leader_acknowledges_webhooks_while_its_engine_is_busy_and_processes_them_after(
    tmp_path: Path, postgres_url: str
) -> None:
    """The intake makes webhooks durable on a connection of its own: the vendor's answer never
    waits for the engine's turn (a long one, or one held by a lock), on the leader as on a
    follower."""
    with TestClient(create_app(settings_for(tmp_path, store=postgres_url))) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        assert worker.role == "leader"
        portal = client.portal
        assert portal is not None
        busy, release = threading.Event(), threading.Event()

        def long_job(_engine: object) -> None:
            busy.set()
            release.wait(30)

        held = portal.start_task_soon(worker.call, long_job)
        assert busy.wait(10)
        try:
            body = payload("whatsapp")
            answer = client.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert answer.status_code == 200 and answer.json()["accepted"] == 1
            assert not held.done()  # answered while the engine was still held
            with psycopg.connect(postgres_url) as db:
                row = db.execute("SELECT processed FROM inbound").fetchall()
            assert row == [(0,)]  # durable, not processed yet: the engine is still busy
        finally:
            release.set()
        held.result(10)
        for _ in range(200):
            with psycopg.connect(postgres_url) as db:
                processed = db.execute("SELECT processed FROM inbound").fetchall()
            if processed == [(1,)]:
                break
            time.sleep(0.05)
        assert processed == [(1,)]


def test_the_leaders_turn_takes_the_calls_waiting_into_its_commit(
    tmp_path: Path, postgres_url: str
) -> None:
    """Events of the shared log and the API's calls that wait together commit once (a disk
    sync), each still its own unit: a call that fails is undone alone."""
    with TestClient(create_app(settings_for(tmp_path, store=postgres_url))) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        busy, release = threading.Event(), threading.Event()

        def long_job(_engine: object) -> None:
            busy.set()
            release.wait(30)

        def writing(reason: str, fail: bool = False) -> object:
            def call(engine: object) -> str:
                store = worker.store
                store.dead_letter("test", {}, reason, datetime.now(UTC))
                if fail:
                    store.dialect.execute("INSERT INTO no_such_table VALUES (1)")
                return reason

            return call

        held = portal.start_task_soon(worker.call, long_job)
        assert busy.wait(10)
        commits: list[int] = []
        dialect = worker.store.dialect
        begin = dialect.transaction

        @contextmanager
        def counted() -> Iterator[None]:
            with begin():
                yield
            commits.append(1)

        dialect.transaction = counted
        queued: list[object] = []
        put = worker._put

        def counting_calls(item: object) -> None:
            queued.append(item)
            put(item)

        worker._put = counting_calls
        try:
            # sent now: its flow's timers are not due at once
            body = json.dumps(whatsapp_text("447700900123", "wamid.busy.1", "hello")).encode()
            answer = client.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert answer.status_code == 200  # its wake-up waits in the worker's queue
            calls = [
                portal.start_task_soon(worker.call, writing(*call))
                for call in (("kept",), ("undone", True), ("after",))
            ]
            while len(queued) < len(calls):
                time.sleep(0.01)
        finally:
            release.set()
        held.result(10)
        assert calls[0].result(10) == "kept" and calls[2].result(10) == "after"
        with pytest.raises(psycopg.errors.UndefinedTable):
            calls[1].result(10)
        dialect.transaction = begin
        assert commits == [1]  # the event processed and three calls: one commit
    with psycopg.connect(postgres_url) as db:
        reasons = [
            r[0]
            for r in db.execute("SELECT reason FROM dead_letters WHERE source = 'test' ORDER BY id")
        ]
        processed = db.execute("SELECT processed FROM inbound").fetchall()
    assert reasons == ["kept", "after"] and processed == [(1,)]


def test_only_a_followers_webhooks_notify_the_leaders_own_wake_its_engine_directly(
    tmp_path: Path, postgres_url: str
) -> None:
    """A commit that NOTIFYs holds PostgreSQL's one notification lock until it is durable:
    the leader's intake, whose engine is woken in the process, sends none; a follower's does,
    for the leader to hear."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with psycopg.connect(postgres_url, autocommit=True) as listening:
        listening.execute("LISTEN flowlang_inbound")

        def heard(within: float) -> int:
            return sum(1 for _ in listening.notifies(timeout=within))

        with TestClient(create_app(settings_for(tmp_path / "a", store=postgres_url))) as first:
            assert first.get("/ready").json()["role"] == "leader"
            heard(0.2)  # (nothing is pending: the store was just made)
            body = payload("whatsapp")
            answer = first.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert answer.json()["accepted"] == 1
            for _ in range(200):  # processed: its own engine was woken without a NOTIFY
                if first.get("/ready").json()["unprocessed"] == 0:
                    break
                time.sleep(0.05)
            assert first.get("/ready").json()["unprocessed"] == 0
            assert heard(0.5) == 0
            with TestClient(create_app(settings_for(tmp_path / "b", store=postgres_url))) as second:
                assert second.get("/ready").json()["role"] == "follower"
                other = json.dumps(
                    whatsapp_text("447700900999", "wamid.follower.1", "via the follower")
                ).encode()
                taken = second.post(
                    "/webhooks/whatsapp", content=other, headers=signed_headers("whatsapp", other)
                )
                assert taken.json()["accepted"] == 1
                assert heard(2.0) == 1


def test_a_leader_looks_at_the_log_before_a_call_when_its_fronts_wake_up_is_on_its_way(
    tmp_path: Path, postgres_url: str
) -> None:
    """In `flowlang serve` the front wakes its engine process through a pipe before it answers
    a webhook; a call made after that answer can reach the worker before the wake-up does.
    The leader looks at the log before such a call when a wake-up is on its way
    (`Worker.wake_pending`), and only then: not before every call (an empty look is a commit)."""
    with TestClient(create_app(settings_for(tmp_path, store=postgres_url))) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        assert client.get("/ready").json()["role"] == "leader"
        worker.cluster.poll_interval = 60.0  # no look at the log on its own meanwhile...
        worker.wake()  # ... once this one has looked
        portal = client.portal
        assert portal is not None
        portal.call(worker.call, lambda _engine: None)
        front = PostgresInbox(postgres_url, announce=lambda: False)  # a front that wakes none
        event = {
            "event_id": "wamid.front.1",
            "channel": "whatsapp",
            "sender_id": "447700900002",
            "text": "hello",
            "timestamp": datetime.now(UTC).isoformat(),
        }
        try:
            assert front.append([[Entry("whatsapp", "wamid.front.1", event)]])[0].seqs[0]
        finally:
            front.close()

        def processed(engine: Any) -> int:
            rows = engine.store.db.execute(
                "SELECT processed FROM inbound WHERE event_id = 'wamid.front.1'"
            ).fetchall()
            return int(rows[0][0])

        assert portal.call(worker.call, processed) == 0  # no wake-up: no look
        on_its_way = [True]  # the second call finds a write the pipe's thread has not taken
        worker.wake_pending = lambda: bool(on_its_way and on_its_way.pop())
        assert portal.call(worker.call, processed) == 1
        assert on_its_way == []
