"""A Messenger or Instagram carousel's own text reaches the customer: Meta's generic template
has no text, so the policy has the reply go as two messages, its text first, then the template.
Each is its own outbox entry and history line: retried in order, given up on alone, its
failure shown on it; the policy refuses the reply whole when either would be refused."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import load_registry
from flowlang.channels.senders import VendorSenders, senders_for
from flowlang.config import load_deployment
from flowlang.events import InboundEvent
from flowlang.project import load_project
from flowlang.runtime.delivery import unsent_id
from flowlang.runtime.engine import Engine
from flowlang.runtime.ports import ConversationView, OutboundMessage
from flowlang.store import SqliteStore
from tests.channels.helpers import (
    DEPLOYMENT,
    GUIDES,
    GUIDES_ELEMENTS,
    generic_template,
    policy_decision,
)
from tests.fake_vendor import FakeVendor, Reply

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PSID = "7654321098765432"
ACCEPTED = Reply(body={"recipient_id": PSID, "message_id": "m_accepted"})
"""The Send API's answer to a message it took."""
FLOW = """flow "Guides"
serve messages on messenger account "GBank"

state start:
    reply template "guides"
"""


def _deployment(tmp_path: Path, vendor: FakeVendor) -> Path:
    """The example deployment with the `guides` carousel, Messenger sent to `vendor`."""
    yaml = YAML()
    data: Any = yaml.load(DEPLOYMENT.read_text("utf-8"))
    data["channels"]["messenger"]["connection"] = {
        "access_token_env": "PAGE_TOKEN",
        "api_base": vendor.base_url,
    }
    data["templates"]["guides"] = GUIDES
    out = io.StringIO()
    yaml.dump(data, out)
    path = tmp_path / "deployment.yaml"
    path.write_text(out.getvalue(), "utf-8")
    return path


@pytest.fixture
def sending(
    tmp_path: Path, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, SqliteStore]]:
    """An engine running FLOW with the Send API at the fake vendor, over a SQLite store."""
    monkeypatch.setenv("PAGE_TOKEN", "page-token")
    fake_vendor.default = ACCEPTED
    path = _deployment(tmp_path, fake_vendor)
    flow = tmp_path / "guides.flow"
    flow.write_text(FLOW, "utf-8")
    project, ws = load_project(flow, path)
    assert project is not None, [d.message for d in ws.diagnostics]
    deployment, problems = load_deployment(path)
    assert deployment is not None, [p.message for p in problems]
    senders: VendorSenders = senders_for(deployment, channels=["messenger"])
    store = SqliteStore(tmp_path / "cc.sqlite")
    yield project.engine(store=store, adapters=[senders]), store
    senders.close()
    store.close()


def _customer_writes(engine: Engine) -> str:
    event = InboundEvent(
        event_id="m-1",
        channel="messenger",
        account="104857362910",
        sender_id=PSID,
        text="Hello",
        timestamp=T0,
    )
    outcome = engine.handle(event)
    assert outcome.conversation_id is not None
    return outcome.conversation_id


def _messages(fake_vendor: FakeVendor) -> list[dict[str, Any]]:
    return [request.json()["message"] for request in fake_vendor.requests]


def _sent_out(store: SqliteStore, conversation: str) -> list[dict[str, Any]]:
    """The conversation's messages out, as the history keeps them (oldest first)."""
    conv = store.get_conversation(conversation)
    assert conv is not None
    messages = store.history(conv.customer_id).messages
    return [m["content"] for m in messages if m["direction"] == "out"]


def test_the_text_goes_first_then_the_generic_template(
    sending: tuple[Engine, SqliteStore], fake_vendor: FakeVendor
) -> None:
    engine, store = sending
    conversation = _customer_writes(engine)
    assert _messages(fake_vendor) == [{"text": "Our guides"}, generic_template(GUIDES_ELEMENTS)]
    assert [r.path for r in fake_vendor.requests] == ["/me/messages", "/me/messages"]
    out = _sent_out(store, conversation)
    assert [m.get("text") for m in out] == ["Our guides", None]
    ids = [m["message_id"] for m in out]
    assert len(set(ids)) == 2  # each with its own delivery status in the workspace
    assert set(store.sent_messages(ids)) == set(ids)


def test_a_failed_text_holds_the_template_behind_it_until_it_goes(
    sending: tuple[Engine, SqliteStore], fake_vendor: FakeVendor
) -> None:
    engine, store = sending
    fake_vendor.script(Reply.error(500))
    _customer_writes(engine)
    assert _messages(fake_vendor) == [{"text": "Our guides"}]  # the template waits behind it
    assert len(store.pending_outbound()) == 2
    engine.deliver_pending(T0 + timedelta(minutes=5))
    assert _messages(fake_vendor)[1:] == [{"text": "Our guides"}, generic_template(GUIDES_ELEMENTS)]
    assert store.pending_outbound() == []


def test_a_template_the_vendor_refuses_is_kept_and_shown_failed_its_text_delivered(
    sending: tuple[Engine, SqliteStore], fake_vendor: FakeVendor
) -> None:
    engine, store = sending
    refusal = {"error": {"message": "(#100) Invalid parameter", "code": 100}}
    fake_vendor.script(ACCEPTED, Reply.error(400, refusal))
    conversation = _customer_writes(engine)
    engine.deliver_pending(None)  # a permanent refusal: nothing is tried again
    assert len(fake_vendor.requests) == 2
    (letter,) = store.dead_letters()
    assert letter["source"] == "outbound:messenger"
    assert letter["payload"]["content"]["elements"] == GUIDES_ELEMENTS
    assert "text" not in letter["payload"]["content"]
    text, template = [m["message_id"] for m in _sent_out(store, conversation)]
    sent = store.sent_messages([text, template])
    assert sent[text].status != "failed" and sent[text].vendor_id == "m_accepted"
    assert sent[template].status == "failed"
    assert sent[template].vendor_id == unsent_id(template)
    assert "Invalid parameter" in sent[template].error


@pytest.mark.parametrize(
    ("channel", "content", "code"),
    [
        ("instagram", {**GUIDES, "text": "x" * 1001}, "text_too_long"),  # Instagram takes 1,000
        ("messenger", {**GUIDES, "options": [f"Guide {n}" for n in range(11)]}, None),
    ],
)
def test_a_reply_is_refused_whole_when_the_vendor_would_refuse_a_part(
    channel: str, content: dict[str, Any], code: str | None
) -> None:
    content = {k: v for k, v in content.items() if code or k != "items"}
    delivery = policy_decision(channel, content)
    assert delivery.status == "blocked"
    assert delivery.reason_code == (code or "content_not_supported")
    assert delivery.parts == ()


def _conversation(channel: str) -> ConversationView:
    return ConversationView(
        id="c1",
        customer_id="cu1",
        channel=channel,
        account="a",
        started_at=T0,
        last_activity_at=T0,
        last_inbound_at=T0,
    )


def test_each_part_counts_as_a_reply_where_the_channel_limits_them() -> None:
    policy = ChannelPolicy(load_registry({"messenger": {"replies_per_inbound": 3}}))
    conv = _conversation("messenger")
    message = OutboundMessage("c1", "messenger", "a", PSID, "agent", GUIDES)
    first = policy.decide(message, conv, T0)
    assert [sorted(p.content) for p in first.parts] == [
        ["kind", "text"],
        ["elements", "items", "kind"],
    ]
    assert "its text goes first, as a message of its own" in first.reason
    assert conv.channel_state["replies_since_inbound"] == 2
    second = policy.decide(message, conv, T0)  # two more would be four: one goes, no text
    assert second.status == "degraded" and second.parts == ()
    assert "allows 3 replies per customer message: its items are shown, its text is not" in (
        second.reason
    )
    assert conv.channel_state["replies_since_inbound"] == 3


def test_a_private_reply_is_one_message_the_template_and_the_reason_says_so() -> None:
    conv = _conversation("facebook_page")
    conv.channel_state["private_reply_target"] = {
        "kind": "comment",
        "id": "9",
        "at": T0.isoformat(),
    }
    message = OutboundMessage("c1", "facebook_page", "a", PSID, "agent", GUIDES, "privately")
    delivery = ChannelPolicy().decide(message, conv, T0)
    assert delivery.status == "degraded" and delivery.parts == ()
    assert delivery.message.private_reply_to == {"comment_id": "9"}
    assert "a Private Reply is one message: its items are shown, its text is not" in (
        delivery.reason
    )
