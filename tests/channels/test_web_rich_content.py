"""What the web widget receives for rich content: flowlang's own format carries the content
as the flow or agent gave it — a carousel's or card's items with their titles, subtitles,
links and images, the options whole — since the widget, not a vendor, draws it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flowlang.channels.outbound import send_request
from flowlang.channels.policy import ChannelPolicy
from flowlang.events import InboundEvent
from flowlang.runtime.ports import ConversationView, OutboundMessage
from tests.channels.helpers import DEPLOYMENT, engine_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TEMPLATE = """  guides:
    kind: carousel
    text: "Our guides"
    items:
      - {title: Fees, subtitle: "Every fee we charge", url: "https://gbank.example/fees", image: "https://gbank.example/fees.png"}
      - {title: "Everything about cards and their limits", subtitle: "Lost, stolen, limits"}
"""
FLOW = """flow "Guides"
serve messages on web account "gbank-web"

state start:
    reply template "guides"
"""


def test_a_carousel_reaches_the_widget_with_every_item_whole(tmp_path: Path) -> None:
    deployment = DEPLOYMENT.read_text("utf-8").replace("templates:\n", "templates:\n" + TEMPLATE, 1)
    (tmp_path / "deployment.yaml").write_text(deployment, "utf-8")
    engine, sent = engine_for(tmp_path, FLOW, tmp_path / "deployment.yaml")
    engine.handle(
        InboundEvent(
            event_id="w-1",
            channel="web",
            account="widget-7f3a",
            sender_id="web-visitor-81f2",
            text="Hello",
            timestamp=T0,
        )
    )
    (message,) = sent.sent
    request = send_request(message)
    assert (request.method, request.path) == ("POST", "/messages")
    content = request.body["content"]
    assert content["kind"] == "carousel" and content["text"] == "Our guides"
    assert content["items"] == [
        {
            "title": "Fees",
            "subtitle": "Every fee we charge",
            "url": "https://gbank.example/fees",
            "image": "https://gbank.example/fees.png",
        },
        {"title": "Everything about cards and their limits", "subtitle": "Lost, stolen, limits"},
    ]
    assert content["options"] == ["Fees", "Everything about cards and their limits"]
    assert "elements" not in content and "columns" not in content  # no vendor's shape


def test_the_widget_has_no_label_limit_so_a_long_option_goes_whole() -> None:
    conversation = ConversationView(
        id="c1",
        customer_id="cu1",
        channel="web",
        account="gbank-web",
        started_at=T0,
        last_activity_at=T0,
        last_inbound_at=T0,
    )
    option = "Do not cancel my subscription"
    content = {"kind": "quick_replies", "text": "Sure?", "options": ["Yes", option]}
    message = OutboundMessage("c1", "web", "gbank-web", "web-visitor-81f2", "agent", content)
    delivery = ChannelPolicy().decide(message, conversation, T0)
    assert delivery.status == "sent", delivery.reason
    assert send_request(delivery.message).body["content"]["options"] == ["Yes", option]
