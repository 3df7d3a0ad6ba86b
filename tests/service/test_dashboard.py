"""The supervisor dashboard's data: the snapshot (queues, longest active interactions, agents'
presence and load), its live stream against a real uvicorn server, and who may read them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowlang.service.dashboard import STREAMS_PER_USER
from flowlang.service.stream import CLOSED
from tests.service.api_helpers import Api, Stream, live_server, make_api, revoke
from tests.service.helpers import environment


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    service = make_api(tmp_path)
    service.app.state.board.recheck = 0.2
    yield from live_server(service)


def board(api: Api, user: str = "sam") -> dict[str, Any]:
    answer = api.get(user, "/api/supervisor/dashboard")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def queue(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in snapshot["queues"] if q["queue"] == name)


def agent(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in snapshot["agents"] if a["agent"] == name)


@contextmanager
def dashboard_stream(api: Api, user: str = "sam") -> Iterator[Stream]:
    with api.client.stream("GET", "/api/supervisor/stream", headers=api.auth(user)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def test_the_snapshot_follows_a_wait_an_offer_and_an_answer(api: Api) -> None:
    first = board(api)
    assert {q["queue"] for q in first["queues"]} >= {"Overflow", "Cards", "Social Public"}
    assert queue(first, "Overflow")["waiting"] == 0
    assert queue(first, "Social Public")["answer_within"] == 30 * 60
    assert agent(first, "frank")["name"] == "Frank Mills"

    api.put("frank", "/api/agent/presence", {"state": "away"})
    api.web("v-1", "Hello")
    api.web("v-1", "Eve")  # answered the flow's question: routed to Overflow, nobody free
    waiting = board(api)
    overflow = queue(waiting, "Overflow")
    assert overflow["waiting"] == 1 and overflow["in_progress"] == 0
    since = datetime.fromisoformat(overflow["longest_waiting_since"])
    assert timedelta(0) <= datetime.now(UTC) - since < timedelta(minutes=1)
    assert overflow["routed_today"] == 1 and overflow["service_level_today"] is None
    messages = next(m for m in waiting["media"] if m["media"] == "message")
    assert messages["active"] == 1 and messages["channel"] == "web"
    assert agent(waiting, "frank")["presence"] == "away"

    api.put("sam", "/api/supervisor/agents/frank/presence", {"state": "available"})
    offered = agent(board(api), "frank")
    assert offered["presence"] == "available"
    (held,) = offered["interactions"]
    assert held["state"] == "offered" and held["channel"] == "web" and held["queue"] == "Overflow"
    assert offered["load"]["message"] == {"held": 1, "capacity": 5}

    api.post("frank", f"/api/agent/interactions/{held['conversation_id']}/accept")
    answered = board(api)
    overflow = queue(answered, "Overflow")
    assert overflow["waiting"] == 0 and overflow["longest_waiting"] is None
    assert overflow["in_progress"] == 1 and overflow["answered_today"] == 1
    assert overflow["service_level_today"] == 1.0  # answered within Overflow's 5 minutes
    (active,) = agent(answered, "frank")["interactions"]
    assert active["state"] == "active" and active["since"] is not None
    assert agent(answered, "alice")["load"]["social_dm"] == {"held": 0, "capacity": 2}


def test_the_longest_social_conversation_is_the_oldest_active_one(api: Api) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    api.whatsapp("447700900123", "my card is blocked", long_ago)
    api.whatsapp("447700900456", "and mine", datetime.now(UTC))
    messages = next(m for m in board(api)["media"] if m["media"] == "message")
    assert messages["active"] == 2 and messages["channel"] == "whatsapp"
    assert messages["customer_name"] == "Ben" and messages["customer"]
    assert messages["longest"] >= 3 * 3600
    public = next(m for m in board(api)["media"] if m["media"] == "social_public")
    assert public["active"] == 0 and public["longest_conversation"] is None


def test_agents_and_strangers_cannot_read_the_dashboard(api: Api) -> None:
    for path in ("/api/supervisor/dashboard", "/api/supervisor/stream"):
        refused = api.get("frank", path)
        assert refused.status_code == 403, path
        assert refused.json()["detail"]["code"] == "wrong_role"
        assert api.client.get(path).status_code == 401
    assert board(api, "ada")["agents"]  # admins may


def test_the_stream_pushes_a_snapshot_when_a_customer_writes(api: Api) -> None:
    api.put("frank", "/api/agent/presence", {"state": "away"})
    with dashboard_stream(api) as stream:
        first = stream.until("snapshot")
        assert queue(first, "Overflow")["waiting"] == 0
        api.web("v-2", "Hello")
        api.web("v-2", "Eve")
        while queue(now := stream.until("snapshot"), "Overflow")["waiting"] == 0:
            pass
        assert now["version"] > first["version"]
        assert queue(now, "Overflow")["longest_waiting_since"] is not None


def test_a_revoked_token_closes_the_dashboard_stream(api: Api) -> None:
    with dashboard_stream(api) as stream:
        stream.until("snapshot")
        revoke(api, "sam")
        assert stream.until("closed") == {"reason": CLOSED}


def test_a_supervisor_pulls_an_interaction_back_to_its_queue(api: Api) -> None:
    api.put("frank", "/api/agent/presence", {"state": "available"})
    api.web("v-3", "Hello")
    api.web("v-3", "Eve")
    (conv,) = api.work("frank")
    with api.client.stream("GET", "/api/agent/stream", headers=api.auth("frank")) as response:
        frank = Stream(response)
        frank.until("hello")
        refused = api.post("sam", f"/api/supervisor/interactions/{conv}/pull-back")
        assert refused.status_code == 409  # offered, not accepted: nobody has it yet
        assert refused.json()["detail"]["code"] == "not_with_agent"
        api.post("frank", f"/api/agent/interactions/{conv}/accept")
        assert (
            api.post("frank", f"/api/supervisor/interactions/{conv}/pull-back").status_code == 403
        )
        pulled = api.post("sam", f"/api/supervisor/interactions/{conv}/pull-back")
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["status"] == "queued" and "waiting" in pulled.json()["notices"]
        assert frank.until("withdrawn") == {"conversation_id": conv, "reason": "requeued"}
    assert api.work("frank") == {}  # never offered back to the agent it was taken from
    now = board(api)
    assert queue(now, "Overflow")["waiting"] == 1 and queue(now, "Overflow")["in_progress"] == 0
    assert agent(now, "frank")["interactions"] == []
    reports = api.get("sam", "/api/supervisor/reports/all").json()["reports"]
    by_kind = {r["report"]: r for r in reports}
    (row,) = [r for r in by_kind["interactions"]["rows"] if r["conversation"] == conv]
    assert row["transfers"] == 0 and row["agents"] == ["frank"]  # a requeue, not a transfer
    (frank_row,) = [r for r in by_kind["agents"]["rows"] if r["agent"] == "frank"]
    assert frank_row["handled"] == 1 and frank_row["transferred"] == 0
    again = api.post("sam", f"/api/supervisor/interactions/{conv}/pull-back")
    assert again.status_code == 409
    unknown = api.post("sam", "/api/supervisor/interactions/nope/pull-back")
    assert unknown.status_code == 409


def test_a_supervisor_holds_at_most_so_many_streams_and_others_are_not_concerned(
    api: Api,
) -> None:
    """As the agents' live stream: beyond STREAMS_PER_USER, the dashboard stream is 429."""
    with ExitStack() as stack:
        held = [stack.enter_context(dashboard_stream(api)) for _ in range(STREAMS_PER_USER)]
        for stream in held:  # (kept: a Stream let go of closes its response)
            stream.until("snapshot")
        refused = api.client.get("/api/supervisor/stream", headers=api.auth("sam"))
        assert refused.status_code == 429, refused.text
        assert refused.json()["detail"]["code"] == "too_many_streams"
        with dashboard_stream(api, "ada") as other:
            other.until("snapshot")
    with dashboard_stream(api) as again:  # closed ones count no more
        again.until("snapshot")
