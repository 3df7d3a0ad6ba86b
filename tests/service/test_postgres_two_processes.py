"""`flowlang serve` on a PostgreSQL store runs as two processes, as on SQLite (docs/service.md,
"Two processes"; docs/scaling.md): the front takes the webhooks into the shared inbound log and
answers them, the engine process it starts leads or follows. The leader's front wakes its own
engine through its pipe and sends no NOTIFY; a follower's front does. `kill -9` of a leader's
engine process or of its front alone: another engine leads, nothing lost or doubled, and no
engine process outlives its front."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from flowlang.service.front import ENGINE_DOWN
from tests.service.cluster import Cluster, whatsapp
from tests.service.helpers import METRICS_AUTH, signed_headers
from tests.service.process import ServiceProcess
from tests.service.test_two_processes import gone


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def post(process: ServiceProcess, number: int) -> httpx.Response:
    body = whatsapp(f"4477009{number % 7:05d}", f"wamid.split.{number}", f"message {number}")
    return httpx.post(
        f"{process.url}/webhooks/whatsapp",
        content=body,
        headers=signed_headers("whatsapp", body),
        timeout=30,
    )


def inbound(url: str) -> dict[str, int]:
    """Each inbound event id, with whether it was processed."""
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT event_id, processed FROM inbound").fetchall()
    return {str(event_id): int(done) for event_id, done in rows}


def role(process: ServiceProcess) -> str:
    try:
        return str(httpx.get(process.url + "/ready", timeout=5).json()["role"])
    except httpx.HTTPError:
        return "unreachable"


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    """Two `flowlang serve` processes on one store; the first started leads."""
    cluster = Cluster(tmp_path, postgres_url, 2).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_each_serve_is_a_front_and_an_engine_and_only_a_followers_front_notifies(
    cluster: Cluster, postgres_url: str
) -> None:
    leader, follower = cluster.processes
    assert (role(leader), role(follower)) == ("leader", "follower")
    assert leader.engine_pid() != leader.process.pid if leader.process else False
    assert follower.engine_pid() != follower.process.pid if follower.process else False
    with psycopg.connect(postgres_url, autocommit=True) as listening:
        row = listening.execute("SELECT current_schema()").fetchone()
        assert row is not None
        schema = str(row[0])
        listening.execute("LISTEN flowlang_inbound")

        def heard(within: float) -> int:  # this store's notifications (others share the server)
            return sum(1 for n in listening.notifies(timeout=within) if n.payload == schema)

        heard(0.2)
        assert post(leader, 1).json()["accepted"] == 1
        # processed: the leader's front woke its own engine, through its pipe
        wait_for(lambda: inbound(postgres_url).get("wamid.split.1") == 1)
        assert heard(0.5) == 0
        assert post(follower, 2).json()["accepted"] == 1
        assert heard(5.0) == 1  # the follower's front tells the leader's engine
        wait_for(lambda: inbound(postgres_url).get("wamid.split.2") == 1)
    # The API through the follower: its front, the leader's front and the leader's engine; a
    # client's own forwarding header is dropped, never trusted.
    auth = {"Authorization": f"Bearer {cluster.tokens['alice']}"}
    for headers in (auth, {**auth, "x-flowlang-forwarded": "1"}):
        answer = httpx.get(f"{follower.url}/api/agent/interactions", headers=headers)
        assert answer.status_code == 200, answer.text
    metrics = httpx.get(f"{leader.url}/metrics", headers=METRICS_AUTH).text
    assert 'flowlang_inbound_events_total{channel="whatsapp"} 1.0' in metrics  # the front's
    assert "flowlang_processing_seconds_count" in metrics  # the engine's


def test_a_followers_front_passes_the_api_straight_to_the_leaders_front(cluster: Cluster) -> None:
    """Its own engine process takes no part: the API answers through the follower while that
    engine process is stopped (SIGSTOP), where before the call waited on it."""
    leader, follower = cluster.processes
    assert (role(leader), role(follower)) == ("leader", "follower")
    auth = {"Authorization": f"Bearer {cluster.tokens['alice']}"}
    engine = follower.engine_pid()
    os.kill(engine, signal.SIGSTOP)
    try:
        answer = httpx.get(f"{follower.url}/api/agent/interactions", headers=auth, timeout=10)
        assert answer.status_code == 200, answer.text
        unknown = httpx.get(f"{follower.url}/api/agent/interactions", timeout=10)
        assert unknown.status_code == 401  # the leader's engine checked the token
    finally:
        os.kill(engine, signal.SIGCONT)


def test_kill_9_of_the_leaders_engine_process_its_front_takes_webhooks_and_another_leads(
    cluster: Cluster, postgres_url: str
) -> None:
    leader, follower = cluster.processes
    engine = leader.kill_engine()
    wait_for(lambda: gone(engine))
    # The front answers alone: webhooks durable, the lead elsewhere or back in a new engine.
    for number in range(20):
        assert post(leader, number).json()["accepted"] == 1
    ready = httpx.get(f"{leader.url}/ready", timeout=10).json()
    if ENGINE_DOWN in ready["problems"]:  # unless its engine is back already
        assert ready["role"] == "follower" and not ready["ready"]
    wait_for(lambda: "leader" in (role(leader), role(follower)))
    wait_for(lambda: leader.engine_pid() != engine and role(leader) != "unreachable")
    for number in range(20, 30):
        assert post(follower, number).json()["accepted"] == 1
    wait_for(lambda: sorted(inbound(postgres_url).values()) == [1] * 30)
    assert sorted(inbound(postgres_url)) == sorted(f"wamid.split.{n}" for n in range(30))


def test_kill_9_of_the_leaders_front_stops_its_engine_and_the_other_process_leads(
    cluster: Cluster, postgres_url: str
) -> None:
    leader, follower = cluster.processes
    engine = leader.engine_pid()
    assert post(leader, 1).json()["accepted"] == 1
    leader.kill_front()
    wait_for(lambda: gone(engine), timeout=30)  # no engine left running without its front
    wait_for(lambda: role(follower) == "leader")
    assert post(follower, 2).json()["accepted"] == 1
    wait_for(lambda: inbound(postgres_url) == {"wamid.split.1": 1, "wamid.split.2": 1})
