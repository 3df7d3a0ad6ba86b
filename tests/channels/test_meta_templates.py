"""Cards and carousels on Messenger and Instagram go as Meta's generic template (Send API
`attachment.type: template`, `template_type: generic`), within the registry's
`generic_template:` and `labels:`; what Meta would refuse whole is blocked with the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.outbound import send_request
from flowlang.channels.registry import GenericTemplateRules, builtin_registry
from flowlang.channels.senders import Credentials, VendorSender
from flowlang.channels.text_length import text_length
from flowlang.events import InboundEvent
from flowlang.runtime.ports import Delivery
from tests.channels.helpers import (
    DEPLOYMENT,
    GUIDES_ELEMENTS,
    engine_for,
    generic_template,
    policy_decision,
)
from tests.channels.helpers import GUIDES as HELPERS_GUIDES
from tests.fake_vendor import FakeVendor

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MESSENGER = builtin_registry()["messenger"]
assert MESSENGER.generic_template is not None and MESSENGER.labels.button is not None
GENERIC: GenericTemplateRules = MESSENGER.generic_template
LABEL: int = MESSENGER.labels.button

GUIDES = {**HELPERS_GUIDES, "options": ["Fees", "Cards"]}  # as a deployment's template gives it


def decided(content: dict[str, Any], channel: str = "messenger") -> Delivery:
    return policy_decision(channel, content, recipient="7654321098765432")


def body_of(content: dict[str, Any], channel: str = "messenger") -> dict[str, Any]:
    delivery = decided(content, channel)
    assert delivery.status != "blocked", delivery.reason
    return send_request(delivery.message).body


def test_a_deployment_carousel_is_its_text_then_the_send_apis_generic_template() -> None:
    delivery = decided(GUIDES)
    assert delivery.status == "sent", delivery.reason
    assert "its text goes first, as a message of its own" in delivery.reason
    bodies = [send_request(part).body for part in delivery.parts]
    recipient = {"recipient": {"id": "7654321098765432"}, "messaging_type": "RESPONSE"}
    assert bodies == [
        {**recipient, "message": {"text": "Our guides"}},
        {**recipient, "message": generic_template(GUIDES_ELEMENTS)},
    ]


def test_a_card_is_one_element_with_its_items_as_buttons() -> None:
    card = {
        "kind": "card",
        "text": "Our new card: no fees abroad",
        "image": "https://gbank.example/platinum.png",
        "items": [{"title": "Apply", "url": "https://gbank.example/apply"}, {"title": "Ask us"}],
    }
    delivery = decided(card)
    assert delivery.status == "sent", delivery.reason
    assert send_request(delivery.message).body["message"]["attachment"]["payload"] == {
        "template_type": "generic",
        "elements": [
            {
                "title": "Our new card: no fees abroad",
                "image_url": "https://gbank.example/platinum.png",
                "buttons": [
                    {"type": "web_url", "url": "https://gbank.example/apply", "title": "Apply"},
                    {"type": "postback", "title": "Ask us", "payload": "Ask us"},
                ],
            }
        ],
    }


def test_a_card_of_one_item_shows_that_items_subtitle_and_link() -> None:
    card = {  # as a deployment's `kind: card` template with one item gives it
        "kind": "card",
        "text": "Our fees, explained",
        "options": ["Fees and charges"],
        "items": [
            {
                "title": "Fees and charges",
                "url": "https://gbank.example/fees",
                "subtitle": "Every fee we charge",
            }
        ],
    }
    delivery = decided(card)
    assert delivery.status == "sent", delivery.reason  # nothing of it left unshown
    (element,) = send_request(delivery.message).body["message"]["attachment"]["payload"]["elements"]
    assert element == {
        "title": "Our fees, explained",
        "subtitle": "Every fee we charge",
        "default_action": {"type": "web_url", "url": "https://gbank.example/fees"},
        "buttons": [
            {"type": "web_url", "url": "https://gbank.example/fees", "title": "Fees and charges"}
        ],
    }


def test_a_card_says_which_of_its_items_parts_it_does_not_show() -> None:
    card = {
        "kind": "card",
        "text": "Our accounts",
        "items": [
            {"title": "Current", "subtitle": "Everyday banking"},
            {"title": "Savings", "image": "https://gbank.example/savings.png"},
        ],
    }
    delivery = decided(card)
    assert delivery.status == "degraded"
    assert "their subtitles and images are not shown" in delivery.reason
    (element,) = send_request(delivery.message).body["message"]["attachment"]["payload"]["elements"]
    assert [b["title"] for b in element["buttons"]] == ["Current", "Savings"]


def test_an_instagram_carousel_is_the_same_generic_template() -> None:
    body = body_of(GUIDES, "instagram")
    assert body["message"] == body_of(GUIDES)["message"]


def test_without_items_or_anything_to_show_a_card_goes_as_its_text() -> None:
    assert body_of({"kind": "card", "text": "Just words"})["message"] == {"text": "Just words"}
    assert body_of({"kind": "carousel", "text": "Nothing"})["message"] == {"text": "Nothing"}


def test_what_meta_would_refuse_is_blocked_with_the_reason() -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"kind": "carousel", "options": [f"o{i}" for i in range(GENERIC.max_elements + 1)]},
            "content_not_supported",
            f"at most {GENERIC.max_elements} elements",
        ),
        (
            {"kind": "carousel", "items": [{"title": "T" * (GENERIC.title + 1)}]},
            "text_too_long",
            "element 1's title",
        ),
        (
            {
                "kind": "carousel",
                "items": [{"title": "A", "subtitle": "s" * (GENERIC.subtitle + 1)}],
            },
            "text_too_long",
            "element 1's subtitle",
        ),
        (
            {"kind": "carousel", "items": [{"title": "A"}, {"title": "Everything about fees"}]},
            "text_too_long",
            "item 2, 'Everything about fees', is 21 characters",
        ),
        (
            {"kind": "card", "text": "Pick", "options": ["a", "b", "c", "d"]},
            "content_not_supported",
            f"at most {GENERIC.max_element_buttons} buttons",
        ),
        (
            {"kind": "card", "text": "x" * (GENERIC.title + 1), "options": ["a"]},
            "text_too_long",
            "title",
        ),
    ]
    for content, code, why in cases:
        delivery = decided(content)
        assert delivery.status == "blocked", content
        assert delivery.reason_code == code, delivery.reason
        assert why in delivery.reason, (why, delivery.reason)


def test_the_fake_send_api_receives_the_generic_template(fake_vendor: FakeVendor) -> None:
    delivery = decided(GUIDES)
    sender = VendorSender(
        MESSENGER,
        Credentials("page-token", None),
        api_base=fake_vendor.base_url,
        client=httpx.Client(),
    )
    sender.send(delivery.message)
    (request,) = fake_vendor.requests
    assert (request.method, request.path) == ("POST", "/me/messages")
    payload = request.json()["message"]["attachment"]["payload"]
    assert payload["template_type"] == "generic"
    assert [e["title"] for e in payload["elements"]] == ["Fees", "Cards"]


FLOW = """flow "Guides"
serve messages on messenger account "GBank"

state start:
    reply template "guides"
"""
TEMPLATE = """  guides:
    kind: carousel
    text: "Our guides"
    items:
      - {title: Fees, subtitle: "Every fee we charge", url: "https://gbank.example/fees"}
      - {title: Cards, subtitle: "Lost, stolen, limits"}
"""


def test_a_flows_carousel_template_reaches_messenger_as_elements(tmp_path: Path) -> None:
    deployment = DEPLOYMENT.read_text("utf-8").replace("templates:\n", "templates:\n" + TEMPLATE, 1)
    (tmp_path / "deployment.yaml").write_text(deployment, "utf-8")
    engine, sent = engine_for(tmp_path, FLOW, tmp_path / "deployment.yaml")
    event = InboundEvent(
        event_id="m-1",
        channel="messenger",
        account="104857362910",
        sender_id="7654321098765432",
        text="Hello",
        timestamp=T0,
    )
    engine.handle(event)
    text, template = sent.sent
    assert send_request(text).body["message"] == {"text": "Our guides"}
    elements = send_request(template).body["message"]["attachment"]["payload"]["elements"]
    assert [(e["title"], e["subtitle"]) for e in elements] == [
        ("Fees", "Every fee we charge"),
        ("Cards", "Lost, stolen, limits"),
    ]
    assert elements[0]["default_action"] == {"type": "web_url", "url": "https://gbank.example/fees"}


# ---------------------------------------------------------------- any content
texts = st.text(st.characters(codec="utf-8"), max_size=100)
titles = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)
items = st.fixed_dictionaries(
    {"title": titles},
    optional={
        "subtitle": texts,
        "url": st.just("https://gbank.example/x"),
        "image": st.just("https://gbank.example/x.png"),
    },
)
contents = st.fixed_dictionaries(
    {"kind": st.sampled_from(["card", "carousel"]), "text": texts},
    optional={
        "items": st.lists(items, max_size=12),
        "options": st.lists(titles, max_size=12),
        "image": st.just("https://gbank.example/c.png"),
    },
)


def fits(elements: list[dict[str, Any]], offered: set[str]) -> None:
    """Every element within Meta's limits (the registry's), every label whole."""
    assert 1 <= len(elements) <= GENERIC.max_elements
    for element in elements:
        assert 1 <= text_length(element["title"], MESSENGER) <= GENERIC.title
        assert text_length(element.get("subtitle", ""), MESSENGER) <= GENERIC.subtitle
        assert len(element) > 1  # Meta wants something besides the title
        assert len(element.get("buttons", [])) <= GENERIC.max_element_buttons
        for button in element.get("buttons", []):
            assert button["title"] in offered  # whole, never cut
            assert 1 <= text_length(button["title"], MESSENGER) <= LABEL
            assert button.get("url") or button.get("payload") == button["title"]


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
@settings(max_examples=200, deadline=None)
@given(content=contents)
def test_any_card_or_carousel_goes_within_metas_limits_or_is_blocked(
    channel: str, content: dict[str, Any]
) -> None:
    delivery = decided(content, channel)
    if delivery.status == "blocked":
        assert delivery.reason_code in ("text_too_long", "content_not_supported")
        return
    message = send_request(delivery.message).body["message"]
    if "attachment" not in message:  # nothing to tap or show: its text (or not carried)
        assert set(message) <= {"text", "quick_replies"}
        return
    assert message["attachment"]["type"] == "template"
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "generic"
    offered = {str(i["title"]) for i in content.get("items") or []}
    fits(payload["elements"], offered | set(content.get("options") or []))
