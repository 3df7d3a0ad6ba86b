"""More options than a channel's buttons show: WhatsApp's interactive list (rows a button opens,
limits in the registry's `option_list:`); a text required above options where the vendor
refuses them without one (`options_text.required`); a carousel or card on a channel without
them sent as its text and its items, numbered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.outbound import send_request
from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import builtin_registry, load_registry
from flowlang.channels.senders import Credentials, VendorSender
from flowlang.channels.text_length import text_length
from flowlang.runtime.ports import Delivery
from tests.channels.helpers import policy_decision
from tests.fake_vendor import FakeVendor

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REGISTRY = builtin_registry()
WHATSAPP = REGISTRY["whatsapp"]
RECIPIENT = {"whatsapp": "447700900123", "sms": "+447700900123", "line": "U" + "a" * 32}
TOPICS = ["Cards", "Loans", "Mortgages", "Savings", "Insurance", "Fees", "Fraud", "Travel"]


def decided(channel: str, content: dict[str, Any], policy: ChannelPolicy | None = None) -> Delivery:
    return policy_decision(channel, content, policy, account="+442079460000", sender="flow")


def whatsapp_body(delivery: Delivery) -> dict[str, Any]:
    return send_request(delivery.message).body


def rows(options: list[str]) -> list[dict[str, str]]:
    return [{"id": o, "title": o} for o in options]


# ---------------------------------------------------------------- WhatsApp's interactive list
def test_the_list_limits_are_registry_data_with_a_source() -> None:
    form = WHATSAPP.option_list
    assert form is not None
    assert (form.max_rows, form.row_title, form.button, form.section_title) == (10, 24, 20, 24)
    assert form.text == 4096 and form.button_text == "Choose"
    assert WHATSAPP.sources["option_list"].startswith("https://developers.facebook.com/")


def test_four_options_on_whatsapp_go_as_an_interactive_list_golden() -> None:
    content = {"kind": "quick_replies", "text": "What is it about?", "options": TOPICS[:4]}
    delivery = decided("whatsapp", content)
    assert (delivery.status, delivery.reason) == ("sent", "")  # nothing trimmed: all 4 shown
    assert whatsapp_body(delivery) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "447700900123",
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "What is it about?"},
            "action": {"button": "Choose", "sections": [{"rows": rows(TOPICS[:4])}]},
        },
    }


def test_ten_options_with_their_own_button_and_title_golden() -> None:
    options = [*TOPICS, "Pensions", "Business"]
    content = {
        "kind": "buttons",
        "text": "What is it about?",
        "options": options,
        "list_button": "See topics",
        "list_title": "Topics",
    }
    delivery = decided("whatsapp", content)
    assert delivery.status == "sent", delivery.reason
    assert whatsapp_body(delivery)["interactive"] == {
        "type": "list",
        "body": {"text": "What is it about?"},
        "action": {
            "button": "See topics",
            "sections": [{"title": "Topics", "rows": rows(options)}],
        },
    }


def test_three_options_stay_reply_buttons() -> None:
    content = {"kind": "quick_replies", "text": "Sure?", "options": ["Yes", "No", "Later"]}
    interactive = whatsapp_body(decided("whatsapp", content))["interactive"]
    assert interactive["type"] == "button"
    assert [b["reply"]["title"] for b in interactive["action"]["buttons"]] == ["Yes", "No", "Later"]


def test_beyond_the_lists_rows_the_first_are_kept_with_the_reason() -> None:
    options = [f"Branch {i}" for i in range(1, 13)]
    delivery = decided("whatsapp", {"kind": "quick_replies", "text": "Which?", "options": options})
    assert delivery.status == "degraded"
    assert "a WhatsApp Business (Cloud API) list shows at most 10 options" in delivery.reason
    sent = whatsapp_body(delivery)["interactive"]["action"]["sections"][0]["rows"]
    assert [r["title"] for r in sent] == options[:10]
    assert "Branch 11" not in str(whatsapp_body(delivery))


def test_a_row_label_within_24_goes_whole_and_one_longer_is_blocked_never_cut() -> None:
    fits = "Mortgage overpayment now"  # 24: more than a reply button's 20, a row's 24
    content = {"kind": "quick_replies", "text": "Which?", "options": [*TOPICS[:3], fits]}
    delivery = decided("whatsapp", content)
    assert delivery.status == "sent", delivery.reason
    assert fits in str(whatsapp_body(delivery))
    longer = fits + "!"
    content["options"] = [*TOPICS[:3], longer]
    blocked = decided("whatsapp", content)
    assert (blocked.status, blocked.reason_code) == ("blocked", "text_too_long")
    assert f"option 4, {longer!r}, is 25 characters" in blocked.reason
    assert "list row at most 24 show" in blocked.reason


def test_the_lists_button_and_title_are_measured_and_a_deployment_may_reword_the_button() -> None:
    content: dict[str, Any] = {"kind": "quick_replies", "text": "Which?", "options": TOPICS}
    long_button = decided("whatsapp", content | {"list_button": "Choose one of our topics"})
    assert (long_button.status, long_button.reason_code) == ("blocked", "text_too_long")
    assert "the list's button, 'Choose one of our topics', is 24 characters" in long_button.reason
    long_title = decided("whatsapp", content | {"list_title": "All the topics we can help"})
    assert long_title.status == "blocked" and "the list's title" in long_title.reason
    reworded = ChannelPolicy(
        load_registry({"whatsapp": {"option_list": {"button_text": "Elegir"}}})
    )
    delivery = decided("whatsapp", content, reworded)
    assert delivery.status == "sent"
    assert delivery.message.content["list_button"] == "Elegir"
    assert whatsapp_body(delivery)["interactive"]["action"]["button"] == "Elegir"


def test_a_lists_text_may_be_longer_than_reply_buttons_take_within_its_own_limit() -> None:
    content = {"kind": "quick_replies", "text": "x" * 2000, "options": TOPICS}
    assert decided("whatsapp", content).status == "sent"  # reply buttons: 1,024; a list: 4,096
    content["text"] = "x" * 4097
    blocked = decided("whatsapp", content)
    assert blocked.reason_code == "text_too_long"
    assert "the text above the list is 4,097 characters" in blocked.reason


labels = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["quick_replies", "buttons"]), st.lists(labels, min_size=4, max_size=14))
def test_any_options_beyond_the_buttons_go_whole_in_the_list_or_are_blocked_or_trimmed_saying_so(
    kind: str, offered: list[str]
) -> None:
    form = WHATSAPP.option_list
    assert form is not None
    delivery = decided("whatsapp", {"kind": kind, "text": "Which one?", "options": offered})
    kept = offered[: form.max_rows]
    too_long = [o for o in kept if text_length(o, WHATSAPP) > form.row_title]
    repeated = len({o.strip() for o in kept}) < len(kept)
    blank = any(not o.strip() for o in kept)  # (tests/channels/test_blank_options.py)
    if delivery.status == "blocked" and not too_long and (repeated or blank):
        assert delivery.reason_code == "content_not_supported", delivery.reason
        return
    if delivery.status == "blocked":
        assert delivery.reason_code == "text_too_long" and too_long
        assert f"{too_long[0]!r}" in delivery.reason and "list row" in delivery.reason
        return
    assert not too_long
    if len(offered) > form.max_rows:
        assert delivery.status == "degraded"
        assert f"at most {form.max_rows} options: the first {form.max_rows}" in delivery.reason
    else:
        assert delivery.status == "sent"
    interactive = whatsapp_body(delivery)["interactive"]
    assert interactive["type"] == "list"
    sent = [r["title"] for section in interactive["action"]["sections"] for r in section["rows"]]
    assert sent == kept  # each whole, in order
    assert len(interactive["action"]["button"]) <= form.button


def test_the_list_reaches_the_cloud_api_as_decided(fake_vendor: FakeVendor) -> None:
    content = {"kind": "quick_replies", "text": "What is it about?", "options": TOPICS[:5]}
    delivery = decided("whatsapp", content)
    sender = VendorSender(
        WHATSAPP,
        Credentials("token", None),
        api_base=fake_vendor.base_url,
        phone_number_ids={"+442079460000": "106540352242922"},
        client=httpx.Client(timeout=5.0),
        clock=lambda: 1_800_000_000.0,
    )
    sender.send(delivery.message)
    (request,) = fake_vendor.requests
    assert request.path == "/106540352242922/messages"
    assert request.json()["interactive"]["action"] == {
        "button": "Choose",
        "sections": [{"rows": rows(TOPICS[:5])}],
    }


# ---------------------------------------------------------------- a text above the options
REQUIRED = sorted(k for k, r in REGISTRY.items() if r.options_text.required)


def test_the_channels_that_refuse_options_without_a_text_are_registry_data() -> None:
    assert {"whatsapp", "messenger", "instagram", "line"} <= set(REQUIRED)
    assert not REGISTRY["web"].options_text.required
    for key in REQUIRED:
        assert REGISTRY[key].sources["options_text"].startswith("https://"), key


@pytest.mark.parametrize("channel", REQUIRED)
@pytest.mark.parametrize("text", ["", "  \n"])
def test_options_without_a_text_are_blocked_where_the_vendor_refuses_them(
    channel: str, text: str
) -> None:
    delivery = decided(channel, {"kind": "quick_replies", "text": text, "options": ["Yes", "No"]})
    assert (delivery.status, delivery.reason_code) == ("blocked", "content_not_supported")
    assert "needs a text above them" in delivery.reason
    assert delivery.suggestion == "give the question a text"


def test_options_without_a_text_go_where_the_channel_takes_them() -> None:
    assert decided("web", {"kind": "quick_replies", "options": ["Yes", "No"]}).status == "sent"
    allowing = ChannelPolicy(load_registry({"messenger": {"options_text": {"required": False}}}))
    content = {"kind": "quick_replies", "text": "", "options": ["Yes", "No"]}
    assert decided("messenger", content, allowing).status == "sent"
    # SMS has no quick replies: the options are the text, a numbered list
    sms = decided("sms", content)
    assert sms.status == "degraded" and sms.message.content["text"] == "1. Yes\n2. No"


# ---------------------------------------------------------------- carousels and cards as text
PLANS = {
    "kind": "carousel",
    "text": "Here are our plans:",
    "items": [
        {
            "title": "Gold",
            "subtitle": "For frequent travellers",
            "url": "https://gbank.example/gold",
        },
        {"title": "Silver", "image": "https://gbank.example/silver.png"},
    ],
}


@pytest.mark.parametrize("channel", ["whatsapp", "sms"])
@pytest.mark.parametrize("kind", ["carousel", "card"])
def test_a_carousel_or_card_where_it_cannot_go_is_its_text_and_its_items_numbered(
    channel: str, kind: str
) -> None:
    delivery = decided(channel, PLANS | {"kind": kind})
    assert delivery.status == "degraded"
    assert delivery.message.content["text"] == (
        "Here are our plans:\n1. Gold: https://gbank.example/gold\n2. Silver"
    )
    assert f"cannot carry {kind}: sent as its text and its 2 items, numbered" in delivery.reason


def test_an_options_carousel_as_text_lists_its_options_and_an_authors_fallback_stands() -> None:
    content = {"kind": "carousel", "text": "Pick", "options": ["Cards", "Loans"]}
    assert decided("whatsapp", content).message.content["text"] == "Pick\n1. Cards\n2. Loans"
    own = decided("whatsapp", PLANS | {"fallback": "See gbank.example/plans"})
    assert own.message.content["text"] == "See gbank.example/plans"


def test_items_without_a_link_channel_show_their_titles_alone() -> None:
    rules = load_registry({"sms": {"content": ["text"]}})
    delivery = decided("sms", PLANS, ChannelPolicy(rules))
    assert delivery.message.content["text"] == "Here are our plans:\n1. Gold\n2. Silver"


def test_a_carousel_too_long_as_text_is_blocked_saying_so() -> None:
    items = [{"title": f"Plan {i} " + "x" * 150} for i in range(10)]
    delivery = decided("sms", {"kind": "carousel", "text": "Our plans", "items": items})
    assert (delivery.status, delivery.reason_code) == ("blocked", "text_too_long")
    assert "the carousel as text (its text and its items) is" in delivery.reason
    assert "SMS takes at most 1,600" in delivery.reason
