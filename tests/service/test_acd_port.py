"""The service reads the ACD only through the engine's `Acd` port: with an ACD that is not the
built-in `SkillsAcd` (`PortOnlyAcd`), an agent's presence and work, a conversation's details,
the supervisor's agents and dashboard and the queue gauges show what that ACD holds, and a
presence change it refuses with the port's `AcdError` is a 422."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flowlang.acd import SkillsAcd
from flowlang.assembly import EngineParts
from flowlang.project import Project
from flowlang.runtime.engine import Engine
from flowlang.runtime.ports import AcdError, RoutingNotice
from tests.patience import scaled
from tests.service.api_helpers import Api, make_api, under_test_client
from tests.service.helpers import METRICS_AUTH, environment
from tests.service.port_only_acd import PortOnlyAcd


class RefusingAcd(PortOnlyAcd):
    """An ACD of a host's own that refuses every presence change with the port's `AcdError`."""

    def set_agent_state(self, agent: str, state: str, now: datetime) -> list[RoutingNotice]:
        raise AcdError(f"{agent} may not change their presence here")


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    yield from _served_on(PortOnlyAcd, tmp_path, monkeypatch)


@pytest.fixture
def refusing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    yield from _served_on(RefusingAcd, tmp_path, monkeypatch)


def _served_on(
    kind: type[PortOnlyAcd], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    """The service, its engine's ACD a `kind` over the deployment's `SkillsAcd`."""
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    built = Project.engine

    def engine(self: Project, **parts: Any) -> Engine:
        parts.setdefault("acd", kind(SkillsAcd.from_deployment(self.deployment)))
        given: EngineParts = parts  # type: ignore[assignment]
        return built(self, **given)

    monkeypatch.setattr(Project, "engine", engine)
    service = make_api(tmp_path)
    assert type(service.app.state.service.worker.engine.acd) is kind
    yield from under_test_client(service)


def presences(api: Api) -> dict[str, str]:
    answer = api.get("sam", "/api/supervisor/agents")
    assert answer.status_code == 200, answer.text
    return {a["agent"]: a["state"] for a in answer.json()}


def test_presence_is_the_acds_for_the_agent_and_the_supervisor(api: Api) -> None:
    assert set(presences(api).values()) == {"available"}  # as the deployment starts them
    assert api.put("frank", "/api/agent/presence", {"state": "away"}).json()["state"] == "away"
    assert api.get("frank", "/api/agent/presence").json() == {"agent": "frank", "state": "away"}
    assert presences(api)["frank"] == "away"
    assert presences(api)["alice"] == "available"


def test_a_presence_change_the_acd_refuses_is_a_422(refusing: Api) -> None:
    refused = refusing.put("frank", "/api/agent/presence", {"state": "away"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == {
        "code": "presence_refused",
        "reason": "frank may not change their presence here",
    }
    assert refusing.get("frank", "/api/agent/presence").json()["state"] == "available"


def test_an_offer_is_the_agents_work_with_its_details_and_on_the_dashboard(api: Api) -> None:
    api.web("v-1", "Hello")
    api.web("v-1", "Eve")  # answered the flow's question: routed to Overflow, offered to frank
    (conv,) = api.work("frank")
    assert api.work("frank") == {conv: "offered"}
    (item,) = api.get("frank", "/api/agent/interactions").json()
    assert item["offer_ends_at"] is not None
    details = api.get("frank", f"/api/agent/interactions/{conv}/details")
    assert details.status_code == 200, details.text
    assert details.json()["waiting_since"] is not None
    assert details.json()["offer_ends_at"] is not None

    frank = _agent_on_board(api, "frank")
    (held,) = frank["interactions"]
    assert held["conversation_id"] == conv and held["state"] == "offered"
    assert held["queue"] == "Overflow"
    assert frank["load"]["message"]["held"] == 1

    accepted = api.post("frank", f"/api/agent/interactions/{conv}/accept")
    assert accepted.status_code == 200, accepted.text
    assert api.work("frank") == {conv: "assigned"}
    (active,) = _agent_on_board(api, "frank")["interactions"]
    assert active["state"] == "active"


def test_the_queue_gauge_counts_what_waits_in_the_acd(api: Api) -> None:
    api.put("sam", "/api/supervisor/agents/frank/presence", {"state": "away"})
    api.web("v-1", "Hello")
    api.web("v-1", "Eve")  # routed to Overflow, whose one agent is away: it waits
    wanted = 'flowlang_queue_waiting{queue="Overflow"} 1.0'
    deadline = time.monotonic() + scaled(10)
    while wanted not in (text := api.client.get("/metrics", headers=METRICS_AUTH).text):
        assert time.monotonic() < deadline, text  # the gauges are set twice a second
        time.sleep(0.05)
    assert 'flowlang_queue_waiting{queue="Cards"} 0.0' in text


def _agent_on_board(api: Api, name: str) -> dict[str, Any]:
    answer = api.get("sam", "/api/supervisor/dashboard")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = next(a for a in answer.json()["agents"] if a["agent"] == name)
    return found
