"""An agent who lets an offer time out is not responding (docs/acd.md, "Nobody waits while an
agent is free"): the ACD offers them nothing until they are available again, and nobody is
left to guess it. Their stream and presence say so, the supervisor's dashboard says so in their
row and under their queue, and choosing available brings the waiting work at once.

The example deployment's Overflow (frank alone, no auto-answer) with a 1 s offer timeout, on a
real server: the timeout is the service's own, fired by its worker."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from flowlang.service import create_app
from tests.service.api_helpers import Api, Stream, live_server, make_api
from tests.service.helpers import environment


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The service (not started), its Overflow's offers timing out after 1 s."""
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    made = make_api(tmp_path)
    _offer_timeout(made.settings.deployment, "Overflow", "1s")
    return _again(made)


@pytest.fixture
def api(service: Api) -> Iterator[Api]:
    yield from live_server(service)


def _again(api: Api) -> Api:
    """The service of `api`'s settings and store, made anew (as a restart makes it)."""
    return Api(api.settings, api.tokens, api.sent, create_app(api.settings, adapters=[api.sent]))


def _offer_timeout(deployment: Path, queue: str, timeout: str) -> None:
    yaml = YAML()
    data: Any = yaml.load(deployment.read_text("utf-8"))
    data["queues"][queue]["offer_timeout"] = timeout
    out = io.StringIO()
    yaml.dump(data, out)
    deployment.write_text(out.getvalue(), "utf-8")


@contextmanager
def stream_of(api: Api, agent: str) -> Iterator[Stream]:
    with api.client.stream("GET", "/api/agent/stream", headers=api.auth(agent)) as response:
        assert response.status_code == 200, response.read()
        yield Stream(response)


def _overflow(api: Api) -> dict[str, Any]:
    answer = api.get("sam", "/api/supervisor/dashboard")
    assert answer.status_code == 200, answer.text
    (row,) = [q for q in answer.json()["queues"] if q["queue"] == "Overflow"]
    return dict(row)


def _presence(api: Api, agent: str) -> tuple[str, str | None]:
    answer = api.get("sam", "/api/supervisor/dashboard")
    (row,) = [a for a in answer.json()["agents"] if a["agent"] == agent]
    return row["presence"], row["since"]


def test_an_offer_left_to_time_out_is_shown_to_the_agent_and_the_supervisor(api: Api) -> None:
    api.put("frank", "/api/agent/presence", {"state": "available"})
    with stream_of(api, "frank") as stream:
        assert stream.until("hello")["presence"] == "available"
        api.web("v-1", "Hello")
        api.web("v-1", "Eve")  # answered: routed to Overflow, offered to frank
        conv = stream.until("offer")["conversation_id"]
        # frank does not answer: the offer times out and the ACD says he is not responding
        withdrawn = stream.until("withdrawn")
        assert withdrawn == {"conversation_id": conv, "reason": "not_responding"}
        assert stream.next() == ("presence", {"state": "not_responding"})
        assert api.get("frank", "/api/agent/presence").json()["state"] == "not_responding"
        overflow = _overflow(api)
        assert (overflow["waiting"], overflow["not_responding"]) == (1, ["frank"])
        presence, since = _presence(api, "frank")
        assert presence == "not_responding" and since is not None
        assert api.work("frank") == {}  # nothing is offered meanwhile
        # Nobody may choose it: it is the ACD's.
        refused = api.put("frank", "/api/agent/presence", {"state": "not_responding"})
        assert refused.status_code == 422, refused.text
        # Back to available: the waiting work is offered at once.
        api.put("frank", "/api/agent/presence", {"state": "available"})
        assert stream.until("presence") == {"state": "available"}
        assert stream.until("offer")["conversation_id"] == conv
        assert _overflow(api)["not_responding"] == []


def test_after_a_restart_an_agent_not_responding_has_the_presence_they_last_set(
    service: Api,
) -> None:
    with contextmanager(live_server)(service) as api:
        api.put("frank", "/api/agent/presence", {"state": "available"})
        with stream_of(api, "frank") as stream:
            stream.until("hello")
            api.web("v-2", "Hello")
            api.web("v-2", "Eve")
            conv = stream.until("offer")["conversation_id"]
            assert stream.until("presence") == {"state": "not_responding"}
    again = _again(service)
    with TestClient(again.app) as client:
        again.client = client
        assert again.get("frank", "/api/agent/presence").json()["state"] == "available"
        assert again.work("frank") == {conv: "offered"}  # offered again, not left waiting
