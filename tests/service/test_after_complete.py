"""A customer who writes again after the agent completed the conversation is heard: the flow
starts again from its first state (docs/language.md), as `flowlang test` shows it does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.service.api_helpers import Api, make_api, under_test_client
from tests.service.helpers import environment


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    yield from under_test_client(make_api(tmp_path))


def test_a_web_message_after_the_agent_completed_runs_the_flow_again(api: Api) -> None:
    assert api.put("frank", "/api/agent/presence", {"state": "available"}).status_code == 200
    api.web("v-9", "Hello")
    api.web("v-9", "Eve")
    (conv,) = [c for c, state in api.work("frank").items() if state == "offered"]
    assert api.post("frank", f"/api/agent/interactions/{conv}/accept").status_code == 200
    done = api.post("frank", f"/api/agent/interactions/{conv}/complete", {"wrap_up": "Resolved"})
    assert done.status_code == 200, done.text
    before = len(api.sent.sent)
    api.web("v-9", "Hello again")
    api.settled()
    assert [m.content.get("text") for m in api.sent.sent[before:]] == ["Version one: your name?"]


@pytest.mark.parametrize(
    "first", [None, datetime(2026, 1, 5, 9, 0, tzinfo=UTC)], ids=["now", "vendor-time-in-the-past"]
)
def test_a_whatsapp_message_after_the_agent_completed_is_routed_again(
    api: Api, first: datetime | None
) -> None:
    start = first or datetime.now(UTC).replace(microsecond=0)
    for agent in ("alice", "kenji"):
        assert api.put(agent, "/api/agent/presence", {"state": "available"}).status_code == 200
    api.whatsapp("447700900123", "Hello", start)
    ((agent, work),) = [(a, w) for a in ("alice", "kenji") if (w := api.work(a))]
    (conv,) = work
    done = api.post(agent, f"/api/agent/interactions/{conv}/complete", {"wrap_up": "Resolved"})
    assert done.status_code == 200, done.text
    api.whatsapp("447700900123", "Hello again", start + timedelta(minutes=1))
    assert any(api.work(a).get(conv) == "assigned" for a in ("alice", "kenji"))
