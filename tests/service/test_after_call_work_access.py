"""An agent in after-call work still sees their own interaction (its history up to where it
left them, the wrap-up), never what the customer wrote after it left them (the flow runs again
and asks before it routes): not in the history, not in the details, not on the live stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.api_helpers import Api, Stream, live_server, make_api
from tests.service.helpers import environment

# Retail Banking asks a wrap-up code and gives 2 minutes of after-call work after it; a
# customer who writes again is asked first, so the conversation goes on without an agent.
FLOW = """\
flow "After-call work"
serve messages on web account "gbank-web"

state start:
    ask "Your name?" into name wait 10m:
        on answer:
            reply "Thanks"
    route to queue "Retail Banking"
"""
NEW = "My new card number is 4000 1234"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    yield from live_server(make_api(tmp_path, FLOW, present=False))  # everyone offline


def texts(api: Api, agent: str, conv: str) -> list[str]:
    answer = api.get(agent, f"/api/agent/interactions/{conv}/history", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    return [m["content"].get("text", "") for m in answer.json()["messages"]]


def after_call_work_then_written_again(api: Api) -> str:
    """kenji answers v-1, completes, and is in after-call work when v-1 writes again (the flow
    asks their name again before it routes); the conversation's id."""
    assert api.put("kenji", "/api/agent/presence", {"state": "available"}).status_code == 200
    api.web("v-1", "Hello, my card is blocked")
    api.web("v-1", "Eve")
    (conv,) = api.work("kenji")  # auto-answer: assigned
    reply = api.post("kenji", f"/api/agent/interactions/{conv}/reply", {"text": "Kenji here"})
    assert reply.status_code == 200, reply.text
    done = api.post("kenji", f"/api/agent/interactions/{conv}/complete", {"wrap_up": "Resolved"})
    assert done.status_code == 200, done.text
    assert api.work("kenji") == {conv: "after_call_work"}
    assert api.put("kenji", "/api/agent/presence", {"state": "away"}).status_code == 200
    api.web("v-1", NEW)
    return conv


def test_after_call_work_reads_its_own_interaction_but_not_the_customers_new_messages(
    api: Api,
) -> None:
    conv = after_call_work_then_written_again(api)
    assert api.work("kenji") == {conv: "after_call_work"}  # still theirs to wrap up
    seen = texts(api, "kenji", conv)
    assert "Hello, my card is blocked" in seen and "Kenji here" in seen
    assert NEW not in seen and seen.count("Your name?") == 1  # nor the flow's new question
    # routed again, it is the next agent's, who reads everything; kenji's work on it is over
    assert api.put("alice", "/api/agent/presence", {"state": "available"}).status_code == 200
    api.web("v-1", "Eve")
    assert api.work("alice") == {conv: "assigned"}
    assert NEW in texts(api, "alice", conv)
    gone = api.get("kenji", f"/api/agent/interactions/{conv}/history")
    assert gone.status_code == 403 and gone.json()["detail"]["code"] == "not_yours"


def test_after_call_work_pages_stop_where_the_interaction_ended(api: Api) -> None:
    conv = after_call_work_then_written_again(api)
    pages: list[list[str]] = []
    before: Any = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"before": before} if before else {})}
        answer = api.get("kenji", f"/api/agent/interactions/{conv}/history", params=params)
        assert answer.status_code == 200, answer.text
        pages.append([m["content"].get("text", "") for m in answer.json()["messages"]])
        before = answer.json()["before"]
        if before is None:
            break
    assert pages[0] == ["Kenji here"]  # the newest page is the last message before the end
    assert [NEW] not in pages


def test_after_call_work_details_show_nothing_of_the_conversation_gone_on(api: Api) -> None:
    conv = after_call_work_then_written_again(api)
    answer = api.get("kenji", f"/api/agent/interactions/{conv}/details")
    assert answer.status_code == 200, answer.text
    details = answer.json()
    assert details["state"] == "after_call_work"
    assert details["participant_data"] == {} and details["conversation_data"] == {}
    assert details["flow_path"] == [] and details["skills"] == []
    assert details["waiting_since"] is None and details["window"]["closes_at"] is None
    assert "Resolved" in details["wrap_up"]["codes"]  # their wrap-up is theirs
    (item,) = api.get("kenji", "/api/agent/interactions").json()
    assert item["state"] == "after_call_work" and item["window_closes_at"] is None


def test_the_customers_new_message_never_reaches_the_stream_in_after_call_work(
    api: Api,
) -> None:
    assert api.put("kenji", "/api/agent/presence", {"state": "available"}).status_code == 200
    with api.client.stream("GET", "/api/agent/stream", headers=api.auth("kenji")) as response:
        stream = Stream(response)
        stream.until("hello")
        conv = after_call_work_then_written_again(api)
        stream.until("after_call_work")
        # a marker after the customer's message: everything before it has been pushed
        marker = {"state": "offline"}
        assert api.put("sam", "/api/supervisor/agents/kenji/presence", marker).status_code == 200
        while True:
            kind, data = stream.next()
            if kind == "presence" and data == marker:
                break
            assert not (kind == "message" and data["conversation_id"] == conv), data
