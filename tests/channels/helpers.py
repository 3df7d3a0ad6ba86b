"""What the channel tests share: the vendor fixtures and an engine for a flow over the example
deployment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowlang.channels.policy import ChannelPolicy
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.ports import ConversationView, Delivery, OutboundMessage

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
DEPLOYMENT = ROOT / "examples" / "deployment.yaml"

FIXTURES = [
    ("whatsapp", "whatsapp/image_and_button.json"),
    ("whatsapp", "whatsapp/status.json"),
    ("instagram", "instagram/message.json"),
    ("messenger", "messenger/quick_reply_and_postback.json"),
    ("facebook_page", "facebook_page/comment.json"),
    ("x_dm", "x/dm.json"),
    ("x_public", "x/mention.json"),
    ("line", "line/message.json"),
    ("web", "web/message.json"),
]
"""One real payload per channel, (channel, path under examples/payloads)."""


def engine_for(
    tmp_path: Path, flow: str, deployment: Path = DEPLOYMENT, store: Any = None
) -> tuple[Engine, RecordingAdapter]:
    """An engine running `flow` (text) on `deployment`, recording what it sends."""
    path = tmp_path / "test.flow"
    path.write_text(flow, "utf-8")
    project, ws = load_project(path, deployment)
    assert project is not None, [d.message for d in ws.diagnostics]
    sent = RecordingAdapter()
    parts = {"store": store} if store is not None else {}
    return project.engine(adapters=[sent], **parts), sent


DECIDED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RECIPIENTS = {"whatsapp": "447700900123", "sms": "+447700900123", "line": "U" + "a" * 32}
"""A recipient each channel's sender takes (others: "u1")."""


def policy_decision(
    channel: str,
    content: dict[str, Any],
    policy: ChannelPolicy | None = None,
    *,
    recipient: str | None = None,
    account: str = "a",
    sender: str = "agent",
) -> Delivery:
    """The channel policy's decision on `content` sent by `sender` in a conversation whose
    customer wrote last just now (inside every reply window)."""
    conversation = ConversationView(
        id="c1",
        customer_id="cu1",
        channel=channel,
        account=account,
        started_at=DECIDED_AT,
        last_activity_at=DECIDED_AT,
        last_inbound_at=DECIDED_AT,
    )
    to = recipient or RECIPIENTS.get(channel, "u1")
    message = OutboundMessage("c1", channel, account, to, sender, content)
    return (policy or ChannelPolicy()).decide(message, conversation, DECIDED_AT)


GUIDES: dict[str, Any] = {
    "kind": "carousel",
    "text": "Our guides",
    "items": [
        {
            "title": "Fees",
            "subtitle": "Every fee we charge",
            "url": "https://gbank.example/fees",
            "image": "https://gbank.example/fees.png",
        },
        {"title": "Cards", "subtitle": "Lost, stolen, limits"},
    ],
}
"""A carousel as a deployment's template gives it: a text and two items."""

GUIDES_ELEMENTS: list[dict[str, Any]] = [
    {
        "title": "Fees",
        "subtitle": "Every fee we charge",
        "image_url": "https://gbank.example/fees.png",
        "default_action": {"type": "web_url", "url": "https://gbank.example/fees"},
        "buttons": [{"type": "web_url", "url": "https://gbank.example/fees", "title": "Fees"}],
    },
    {
        "title": "Cards",
        "subtitle": "Lost, stolen, limits",
        "buttons": [{"type": "postback", "title": "Cards", "payload": "Cards"}],
    },
]
"""GUIDES's items as the elements of Meta's generic template (Messenger, Instagram)."""


def generic_template(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """The Send API's `message` carrying `elements` as Meta's generic template."""
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "generic", "elements": elements},
        }
    }
