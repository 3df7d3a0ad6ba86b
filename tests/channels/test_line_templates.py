"""LINE's buttons and carousels go out as LINE template messages (buttons and carousel
templates), shaped within the limits of the channel registry (`templates:`); what LINE would
refuse whole is blocked by the policy with the reason, never sent as something else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.outbound import send_request
from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import builtin_registry
from flowlang.channels.senders import Credentials, VendorSender
from flowlang.channels.text_length import text_length
from flowlang.events import InboundEvent
from flowlang.runtime.ports import ConversationView, OutboundMessage
from tests.channels.helpers import DEPLOYMENT, engine_for
from tests.fake_vendor import FakeVendor

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINE = builtin_registry()["line"]
assert LINE.templates is not None
LIMITS = LINE.templates
assert LINE.labels.button is not None
LABEL = LINE.labels.button


def conversation() -> ConversationView:
    return ConversationView(
        id="c1",
        customer_id="cu1",
        channel="line",
        account="a",
        started_at=T0,
        last_activity_at=T0,
        last_inbound_at=T0,
    )


def decided(content: dict[str, Any]) -> Any:
    message = OutboundMessage("c1", "line", "a", "U1", "flow", content)
    return ChannelPolicy().decide(message, conversation(), T0)


def template_of(content: dict[str, Any]) -> dict[str, Any]:
    """The LINE message the policy lets through for `content` (it must not be blocked)."""
    delivery = decided(content)
    assert delivery.status != "blocked", delivery.reason
    (item,) = send_request(delivery.message).body["messages"]
    assert isinstance(item, dict)
    return item


def test_buttons_go_as_a_buttons_template_whose_taps_send_the_option_back() -> None:
    content = {"kind": "buttons", "text": "What is it about?", "options": ["Cards", "Loans"]}
    assert template_of(content) == {
        "type": "template",
        "altText": "What is it about?",
        "template": {
            "type": "buttons",
            "text": "What is it about?",
            "actions": [
                {"type": "message", "label": "Cards", "text": "Cards"},
                {"type": "message", "label": "Loans", "text": "Loans"},
            ],
        },
    }


def test_an_option_longer_than_a_label_is_blocked_never_cut() -> None:
    option = "Do not cancel my subscription"
    delivery = decided({"kind": "buttons", "text": "Anything else?", "options": ["Yes", option]})
    assert delivery.status == "blocked" and delivery.reason_code == "text_too_long"
    assert f"option 2, {option!r}, is 29 characters" in delivery.reason
    assert f"at most {LINE.labels.button} show" in delivery.reason
    assert (
        delivery.suggestion
        == f"shorten it to {LINE.labels.button} characters, or ask the question in the text"
    )


def test_a_carousel_item_whose_title_cannot_label_its_button_is_blocked() -> None:
    title = "Everything about our fees"  # a column's title takes it, its button's label not
    delivery = decided({"kind": "carousel", "items": [{"title": "Cards"}, {"title": title}]})
    assert delivery.status == "blocked" and delivery.reason_code == "text_too_long"
    assert f"item 2, {title!r}, is 25 characters" in delivery.reason


def test_a_deployment_carousel_has_a_column_per_item_with_its_image_title_and_link() -> None:
    items = [
        {
            "title": "Fees",
            "subtitle": "Every fee we charge",
            "url": "https://gbank.example/fees",
            "image": "https://gbank.example/fees.png",
        },
        {"title": "Cards", "image": "https://gbank.example/cards.png"},
    ]
    content = {
        "kind": "carousel",
        "text": "Our guides",
        "options": ["Fees", "Cards"],
        "items": items,
    }
    item = template_of(content)
    assert item["altText"] == "Our guides"
    assert item["template"] == {
        "type": "carousel",
        "columns": [
            {
                "thumbnailImageUrl": "https://gbank.example/fees.png",
                "title": "Fees",
                "text": "Every fee we charge",
                "actions": [{"type": "uri", "label": "Fees", "uri": "https://gbank.example/fees"}],
            },
            {
                "thumbnailImageUrl": "https://gbank.example/cards.png",
                "title": "Cards",
                "text": "Cards",
                "actions": [{"type": "message", "label": "Cards", "text": "Cards"}],
            },
        ],
    }


def test_what_line_would_refuse_is_blocked_with_the_reason() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "buttons", "text": "x" * (LIMITS.buttons_text + 1), "options": ["A"]}, "text"),
        ({"kind": "buttons", "text": "", "options": ["A"]}, "needs a text"),
        (
            {"kind": "carousel", "text": "Pick", "options": [f"o{i}" for i in range(11)]},
            f"at most {LIMITS.max_columns} columns",
        ),
        (
            {
                "kind": "carousel",
                "items": [{"title": "A", "image": "https://x.example/a.png"}, {"title": "B"}],
            },
            "an image on every column",
        ),
        ({"kind": "carousel", "items": [{"title": "T" * (LIMITS.title + 1)}]}, "title"),
        (
            {"kind": "carousel", "items": [{"title": "A", "subtitle": "s" * 61}]},
            f"at most {LIMITS.text_with_image_or_title}",
        ),
    ]
    for content, why in cases:
        delivery = decided(content)
        assert delivery.status == "blocked", content
        assert delivery.reason_code in ("text_too_long", "content_not_supported")
        assert why in delivery.reason, (why, delivery.reason)


def test_the_fake_line_api_receives_the_template(fake_vendor: FakeVendor) -> None:
    delivery = decided({"kind": "buttons", "text": "Which?", "options": ["Cards", "Loans"]})
    sender = VendorSender(
        LINE, Credentials("t", None), api_base=fake_vendor.base_url, client=httpx.Client()
    )
    sender.send(delivery.message)
    (request,) = fake_vendor.requests
    assert request.path == "/v2/bot/message/push"
    (sent,) = request.json()["messages"]
    assert sent["type"] == "template" and sent["template"]["type"] == "buttons"
    assert [a["text"] for a in sent["template"]["actions"]] == ["Cards", "Loans"]


# ---------------------------------------------------------------- any content
texts = st.text(st.characters(codec="utf-8"), max_size=180)
titles = st.text(st.characters(codec="utf-8"), min_size=1, max_size=45)
items = st.fixed_dictionaries(
    {"title": titles},
    optional={
        "subtitle": texts,
        "url": st.just("https://gbank.example/x"),
        "image": st.just("https://gbank.example/x.png"),
    },
)
contents = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("buttons"),
            "text": texts,
            "options": st.lists(titles, min_size=1, max_size=6),
        }
    ),
    st.fixed_dictionaries(
        {"kind": st.just("carousel"), "text": texts, "items": st.lists(items, max_size=12)}
    ),
    st.fixed_dictionaries(
        {"kind": st.just("carousel"), "options": st.lists(titles, min_size=1, max_size=12)}
    ),
)


def length(text: str) -> int:
    return text_length(text, LINE)


def fits(template: dict[str, Any], titles: set[str]) -> None:
    """Every part of a LINE template message within LINE's limits (the registry's)."""
    if template["type"] == "buttons":
        assert 1 <= len(template["actions"]) <= LINE.max_buttons
        parts = [template]
    else:
        columns = template["columns"]
        assert 1 <= len(columns) <= LIMITS.max_columns
        assert len({len(c["actions"]) for c in columns}) == 1  # the same number in each
        assert 1 <= len(columns[0]["actions"]) <= LIMITS.max_column_actions
        assert len({"title" in c for c in columns}) == 1  # a title on all or none
        assert len({"thumbnailImageUrl" in c for c in columns}) == 1  # an image on all or none
        parts = columns
    for part in parts:
        shown = "title" in part or "thumbnailImageUrl" in part
        plain = LIMITS.buttons_text if template["type"] == "buttons" else LIMITS.carousel_text
        assert 1 <= length(part["text"]) <= (LIMITS.text_with_image_or_title if shown else plain)
        assert length(part.get("title", "")) <= LIMITS.title
        for action in part["actions"]:
            assert action["label"] in titles  # whole, never cut
            assert 1 <= length(action["label"]) <= LABEL
            assert action.get("text") or action.get("uri")


@settings(max_examples=300, deadline=None)
@given(contents)
def test_any_buttons_or_carousel_goes_within_lines_limits_or_is_blocked(
    content: dict[str, Any],
) -> None:
    delivery = decided(content)
    if delivery.status == "blocked":
        assert delivery.reason_code in ("text_too_long", "content_not_supported")
        return
    (item,) = send_request(delivery.message).body["messages"]
    if item["type"] == "text":  # nothing to tap: no template
        assert not [c for c in content.get("items") or content.get("options") or []]
        return
    assert item["type"] == "template"
    assert 1 <= length(item["altText"]) <= LIMITS.alt_text
    titles = {str(c["title"]) for c in content.get("items") or []}
    fits(item["template"], titles | {str(o) for o in content.get("options") or []})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(st.characters(codec="ascii"), min_size=1, max_size=LABEL), min_size=1, max_size=10
    ),
)
def test_a_carousel_within_the_limits_is_never_blocked(column_texts: list[str]) -> None:
    delivery = decided({"kind": "carousel", "options": column_texts})
    assert delivery.status != "blocked", delivery.reason


GUIDES = """  guides:
    kind: carousel
    text: "Our guides"
    items:
      - {title: Fees, subtitle: "Every fee we charge", url: "https://gbank.example/fees"}
      - {title: Cards, subtitle: "Lost, stolen, limits"}
"""

FLOW = """flow "Guides"
serve messages on line account "GBank LINE"

state start:
    reply template "guides"
"""


def test_a_flows_carousel_template_reaches_line_as_columns(tmp_path: Path) -> None:
    deployment = DEPLOYMENT.read_text("utf-8").replace("templates:\n", "templates:\n" + GUIDES, 1)
    (tmp_path / "deployment.yaml").write_text(deployment, "utf-8")
    engine, sent = engine_for(tmp_path, FLOW, tmp_path / "deployment.yaml")
    event = InboundEvent(
        event_id="line-1",
        channel="line",
        account="U4af4980629",
        sender_id="U" + "a" * 32,
        text="Hello",
        timestamp=T0,
    )
    engine.handle(event)
    (message,) = sent.sent
    (item,) = send_request(message).body["messages"]
    assert item["altText"] == "Our guides"
    columns = item["template"]["columns"]
    assert [(c["title"], c["text"]) for c in columns] == [
        ("Fees", "Every fee we charge"),
        ("Cards", "Lost, stolen, limits"),
    ]
    assert columns[0]["actions"] == [
        {"type": "uri", "label": "Fees", "uri": "https://gbank.example/fees"}
    ]
    assert columns[1]["actions"] == [{"type": "message", "label": "Cards", "text": "Cards"}]
