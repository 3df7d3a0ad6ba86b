"""What an agent's reply `content` may carry: content for the channel's policy to judge, never
what the service puts in a message itself (the policy's shaping of cards and carousels, a
private reply's route, the message's id, LINE's reply token, Meta's message tag), and nothing
nested so deep that the history could no longer be shown. A refused reply is a 422 that says
what and where; nothing is queued, sent or kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowlang.service.agent_api import MAX_CONTENT_DEPTH
from tests.service.api_helpers import Api, make_api, under_test_client
from tests.service.helpers import environment

FLOW = """\
flow "Reply content"
serve messages on whatsapp number "+442079460000"

state start:
    route to queue "Cards"
"""


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    yield from under_test_client(make_api(tmp_path, flow=FLOW))


def alices_conversation(api: Api) -> str:
    assert api.put("kenji", "/api/agent/presence", {"state": "away"}).status_code == 200
    api.whatsapp("447700900123", "I lost my card", datetime.now(UTC))
    (conv,) = api.work("alice")
    return conv


def kept_texts(api: Api, conv: str) -> list[str]:
    """The texts of the customer's history, as the agent reads it."""
    page = api.get("alice", f"/api/agent/interactions/{conv}/history")
    assert page.status_code == 200, page.text
    return [str(m["content"].get("text", "")) for m in page.json()["messages"]]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def test_content_nested_past_the_limit_is_refused_and_the_history_still_reads(api: Api) -> None:
    """Before, a reply nested 400 deep was queued, then answered 500 (the agent would send it
    again), and every page of the customer's history answered 500 from then on."""
    conv = alices_conversation(api)
    sent = len(api.sent.sent)
    for depth in (MAX_CONTENT_DEPTH, 400):
        content = {"kind": "text", "text": f"depth {depth}", "extra": nested(depth)}
        answer = api.post("alice", f"/api/agent/interactions/{conv}/reply", {"content": content})
        assert answer.status_code == 422, answer.text
        message = answer.json()["detail"][0]["msg"]
        assert f"nested deeper than {MAX_CONTENT_DEPTH} levels" in message
        assert "the reply.content.extra[0]" in message
    api.settled()
    assert len(api.sent.sent) == sent
    assert not [t for t in kept_texts(api, conv) if t.startswith("depth")]


def test_content_within_the_limit_goes(api: Api) -> None:
    conv = alices_conversation(api)
    content = {"kind": "text", "text": "just deep enough", "extra": nested(MAX_CONTENT_DEPTH - 1)}
    answer = api.post("alice", f"/api/agent/interactions/{conv}/reply", {"content": content})
    assert answer.status_code == 200, answer.text
    api.settled()
    assert [m.content["text"] for m in api.sent.sent][-1] == "just deep enough"
    assert kept_texts(api, conv)[-1] == "just deep enough"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        # Meta's generic template, which the policy shapes from a card's or carousel's items
        # and checks; given by an agent it went out unchecked, under any kind (text too).
        ("elements", [{"title": "Log in", "buttons": [{"type": "web_url", "url": "https://x"}]}]),
        ("columns", [{"text": "LINE carousel column", "actions": []}]),
        ("actions", [{"type": "uri", "label": "Log in", "uri": "https://x"}]),
        ("alt_text", "LINE template's alternative text"),
        # The record that a reply went privately: forged, a public post reads as private.
        ("privately_by", "x_dm"),
        ("message_id", "someone-elses-message"),
        ("reply_token", "a LINE reply token"),
        ("tag", "ACCOUNT_UPDATE"),
    ],
)
def test_content_the_service_sets_itself_is_refused(api: Api, key: str, value: Any) -> None:
    conv = alices_conversation(api)
    sent = len(api.sent.sent)
    content = {"kind": "text", "text": f"forged {key}", key: value}
    answer = api.post("alice", f"/api/agent/interactions/{conv}/reply", {"content": content})
    assert answer.status_code == 422, answer.text
    assert f'"{key}"' in answer.json()["detail"][0]["msg"]
    api.settled()
    assert len(api.sent.sent) == sent
    assert f"forged {key}" not in kept_texts(api, conv)
