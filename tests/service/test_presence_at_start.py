"""In the service an agent is offline until they say they are available: no work is offered,
nor auto-answered, for someone who has not come. A deployment's explicit `state:` is kept, and
what an agent set before a restart comes back after it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flowlang.service import create_app
from tests.service.api_helpers import Api, make_api
from tests.service.helpers import environment


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


def test_agents_start_offline_and_get_work_once_they_are_available(tmp_path: Path) -> None:
    api = make_api(tmp_path, present=False)
    with TestClient(api.app) as client:
        api.client = client
        for agent in ("alice", "frank", "kenji"):
            assert api.get(agent, "/api/agent/presence").json()["state"] == "offline"
        api.whatsapp("447700900123", "My card is blocked", datetime.now(UTC))
        assert api.work("alice") == {} and api.work("kenji") == {}  # nobody is there
        listed = {a["agent"]: a["state"] for a in api.get("sam", "/api/supervisor/agents").json()}
        assert set(listed.values()) == {"offline"}
        api.put("alice", "/api/agent/presence", {"state": "available"})
        assert list(api.work("alice").values()) == ["assigned"]  # Cards auto-answers
    # After a restart, each agent is as they last set themselves.
    again = Api(api.settings, api.tokens, api.sent, create_app(api.settings, adapters=[api.sent]))
    with TestClient(again.app) as client:
        again.client = client
        assert again.get("alice", "/api/agent/presence").json()["state"] == "available"
        assert again.get("frank", "/api/agent/presence").json()["state"] == "offline"


def test_a_state_the_deployment_sets_is_where_the_agent_starts(tmp_path: Path) -> None:
    api = make_api(tmp_path)  # the tests' deployment says `state: available` for each
    with TestClient(api.app) as client:
        api.client = client
        assert api.get("frank", "/api/agent/presence").json()["state"] == "available"
