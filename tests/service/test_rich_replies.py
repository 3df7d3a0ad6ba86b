"""An agent's rich reply through the running service (a real uvicorn server): a deployment's
carousel template, answered to a Messenger customer, reaches the (fake) Send API as its text,
then Meta's generic template, and the agent sees each part's delivery; one whose option label
Messenger would not show whole is refused (409) with the reason, and nothing reaches the
vendor."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.users import new_token, token_hash
from flowlang.service import create_app
from flowlang.store import SqliteStore
from tests.channels.helpers import GUIDES, GUIDES_ELEMENTS, generic_template
from tests.fake_vendor import FakeVendor, Reply
from tests.service.api_helpers import Api, live_server
from tests.service.helpers import environment, payload, settings_for, write_deployment

FLOW = """\
flow "Messenger to an agent"
serve messages on messenger account "GBank"

state start:
    route to queue "Overflow"
"""
TOKEN_ENV = "TEST_MESSENGER_PAGE_TOKEN"


def _deployment(folder: Path, vendor: str) -> Path:
    """The example deployment, Messenger sending to `vendor`, with the `guides` carousel."""
    path = write_deployment(folder)
    yaml = YAML()
    data: Any = yaml.load(path.read_text("utf-8"))
    data["channels"]["messenger"]["connection"] |= {
        "access_token_env": TOKEN_ENV,
        "api_base": vendor,
    }
    data["templates"]["guides"] = GUIDES
    out = io.StringIO()
    yaml.dump(data, out)
    path.write_text(out.getvalue(), "utf-8")
    return path


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_vendor: FakeVendor) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(TOKEN_ENV, "page-access-token")
    flow = tmp_path / "messenger.flow"
    flow.write_text(FLOW, "utf-8")
    settings = settings_for(
        tmp_path, flows=(flow,), deployment=_deployment(tmp_path, fake_vendor.base_url)
    )
    tokens = {"frank": new_token()}
    with SqliteStore(settings.store) as store:
        store.add_user("frank", "agent", token_hash(tokens["frank"]), datetime.now(UTC))
    yield from live_server(Api(settings, tokens, RecordingAdapter(), create_app(settings)))


def _customer_writes(api: Api) -> str:
    """The example Messenger message, written now; the conversation frank is offered."""
    data = json.loads(payload("messenger"))
    now = int(time.time() * 1000)
    data["entry"][0]["time"] = data["entry"][0]["messaging"][0]["timestamp"] = now
    api._webhook("messenger", data)
    (conversation,) = api.work("frank")
    answer = api.post("frank", f"/api/agent/interactions/{conversation}/accept")
    assert answer.status_code == 200, answer.text
    return conversation


def _outbound(api: Api, conversation: str) -> list[dict[str, Any]]:
    """The conversation's messages out, as the agent's history shows them."""
    page = api.get("frank", f"/api/agent/interactions/{conversation}/history")
    assert page.status_code == 200, page.text
    return [m for m in page.json()["messages"] if m["direction"] == "out"]


def _until_sent(vendor: FakeVendor, count: int) -> None:
    for _ in range(1000):
        if len(vendor.requests) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"the vendor got {len(vendor.requests)} requests, not {count}")


def test_an_agents_carousel_reaches_the_send_api_as_its_text_then_a_generic_template(
    api: Api, fake_vendor: FakeVendor
) -> None:
    conversation = _customer_writes(api)
    answer = api.post(
        "frank", f"/api/agent/interactions/{conversation}/reply", {"template": "guides"}
    )
    assert answer.status_code == 200, answer.text
    assert [d["message_id"] for d in answer.json()["deliveries"]] == [
        m["message_id"] for m in _outbound(api, conversation)
    ]
    _until_sent(fake_vendor, 2)
    for request in fake_vendor.requests:
        assert (request.method, request.path) == ("POST", "/me/messages")
        assert request.headers["authorization"] == "Bearer page-access-token"
        assert request.json()["recipient"] == {"id": "7654321098765432"}
    # what the bodies hold is tests/channels/test_meta_templates.py's: here, that they arrive
    assert [r.json()["message"] for r in fake_vendor.requests] == [
        {"text": GUIDES["text"]},
        generic_template(GUIDES_ELEMENTS),
    ]


def test_the_agent_sees_which_part_of_the_carousel_the_vendor_refused(
    api: Api, fake_vendor: FakeVendor
) -> None:
    refusal = {"error": {"message": "(#100) Invalid parameter", "code": 100}}
    fake_vendor.script(Reply(body={"message_id": "m_text"}), Reply.error(400, refusal))
    conversation = _customer_writes(api)
    answer = api.post(
        "frank", f"/api/agent/interactions/{conversation}/reply", {"template": "guides"}
    )
    assert answer.status_code == 200, answer.text
    _until_sent(fake_vendor, 2)
    for _ in range(500):  # the refusal is recorded after the send, on the engine's worker
        text, template = _outbound(api, conversation)
        if template["delivery"]:
            break
        time.sleep(0.01)
    assert text["content"]["text"] == GUIDES["text"]
    assert text["delivery"]["vendor_id"] == "m_text"
    assert text["delivery"]["status"] != "failed"
    assert "text" not in template["content"]
    assert template["delivery"]["status"] == "failed"
    assert "Invalid parameter" in template["delivery"]["error"]


def test_an_option_messenger_would_cut_is_refused_and_never_sent(
    api: Api, fake_vendor: FakeVendor
) -> None:
    conversation = _customer_writes(api)
    content = {
        "kind": "quick_replies",
        "text": "Shall we go ahead?",
        "options": ["Yes, cancel it", "Do not cancel my subscription"],
    }
    answer = api.post(
        "frank", f"/api/agent/interactions/{conversation}/reply", {"content": content}
    )
    assert answer.status_code == 409, answer.text
    refusal = json.dumps(answer.json())
    assert "text_too_long" in refusal
    assert "option 2, 'Do not cancel my subscription', is 29 characters" in refusal
    api.settled()
    assert fake_vendor.requests == []
