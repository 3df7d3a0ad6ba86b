"""Option labels (quick replies, buttons) on every channel: the longest each channel shows is
registry data (`labels:`), and a label never goes out cut — a message whose option would not
show whole is blocked `text_too_long`, naming the option, rather than offering the customer a
choice nobody wrote ("Do not cancel" as "Do not canc")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.outbound import send_request
from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import ChannelRules, builtin_registry, load_registry
from flowlang.channels.text_length import text_length
from flowlang.runtime.ports import Delivery
from tests.channels.helpers import policy_decision

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REGISTRY = builtin_registry()
PRIVATE = sorted(key for key, rules in REGISTRY.items() if not rules.public)
RECIPIENT = {"whatsapp": "447700900123", "sms": "+447700900123", "line": "U" + "a" * 32}


def decided(channel: str, content: dict[str, Any], policy: ChannelPolicy | None = None) -> Delivery:
    return policy_decision(channel, content, policy)


def labels_sent(body: dict[str, Any]) -> list[str]:
    """Every option label in a vendor request body, where each vendor's format puts it."""
    if "interactive" in body:  # WhatsApp: reply buttons, or a list's rows
        action = body["interactive"]["action"]
        if "buttons" in action:
            return [b["reply"]["title"] for b in action["buttons"]]
        return [r["title"] for section in action["sections"] for r in section["rows"]]
    if "message" in body:  # Messenger, Instagram: quick replies, or a template's buttons
        message = body["message"]
        if "quick_replies" in message:
            return [q["title"] for q in message["quick_replies"]]
        payload = message.get("attachment", {}).get("payload", {})
        return [b["title"] for b in payload.get("buttons", [])]
    if "messages" in body:  # LINE: quick reply items, or a buttons template's actions
        (item,) = body["messages"]
        if "quickReply" in item:
            return [i["action"]["label"] for i in item["quickReply"]["items"]]
        return [a["label"] for a in item.get("template", {}).get("actions", [])]
    return []


def text_sent(body: dict[str, Any]) -> str:
    """The text of a vendor request body, where each vendor's format puts it."""
    if "messages" in body:  # LINE
        return str(body["messages"][0].get("text", ""))
    if "message" in body:  # Messenger, Instagram: a text, or a button template's
        message = body["message"]
        return str(message.get("text") or message["attachment"]["payload"].get("text", ""))
    if "interactive" in body:  # WhatsApp reply buttons or list: its body
        return str(body["interactive"]["body"]["text"])
    text = body.get("text") or body.get("Body") or ""
    return str(text["body"] if isinstance(text, dict) else text)  # WhatsApp: text.body


def limit_for(rules: ChannelRules, kind: str) -> int | None:
    return rules.labels.quick_reply if kind == "quick_replies" else rules.labels.button


def test_the_label_limits_are_registry_data_with_a_source() -> None:
    limited = {key for key, rules in REGISTRY.items() if rules.labels != type(rules.labels)()}
    assert {"whatsapp", "messenger", "instagram", "line"} <= limited
    for key in limited:
        assert REGISTRY[key].sources.get("labels", "").startswith("https://"), key


@pytest.mark.parametrize(
    ("channel", "kind"),
    [
        (channel, kind)
        for channel in ("whatsapp", "messenger", "instagram", "line")
        for kind in ("quick_replies", "buttons")
        if kind in REGISTRY[channel].content  # (Instagram has no buttons template)
    ],
)
def test_an_option_too_long_to_show_whole_is_blocked_naming_it(channel: str, kind: str) -> None:
    rules = REGISTRY[channel]
    option = "Do not cancel my subscription"
    delivery = decided(channel, {"kind": kind, "text": "Sure?", "options": ["Yes", option]})
    assert delivery.status == "blocked"
    assert delivery.reason_code == "text_too_long"
    assert f"option 2, {option!r}, is 29 characters" in delivery.reason
    shown_as = "quick reply" if kind == "quick_replies" else "button"
    limit = limit_for(rules, kind)
    assert f"on a {rules.name} {shown_as} at most {limit} show" in delivery.reason
    assert "a label is never cut" in delivery.reason


def test_a_deployment_that_raises_a_label_limit_gets_it_whole() -> None:
    option = "Do not cancel my subscription"
    rules = load_registry({"messenger": {"labels": {"quick_reply": 40}}})
    assert rules["messenger"].labels.button == REGISTRY["messenger"].labels.button  # merged
    content = {"kind": "quick_replies", "text": "Sure?", "options": ["Yes", option]}
    delivery = decided("messenger", content, ChannelPolicy(rules))
    assert delivery.status == "sent", delivery.reason
    assert labels_sent(send_request(delivery.message).body) == ["Yes", option]


def test_a_label_at_the_limit_goes_whole_on_each_channel() -> None:
    for channel in ("whatsapp", "messenger", "instagram", "line"):
        limit = REGISTRY[channel].labels.quick_reply
        assert limit is not None
        option = "x" * limit
        delivery = decided(channel, {"kind": "quick_replies", "text": "Hi", "options": [option]})
        assert delivery.status == "sent", (channel, delivery.reason)
        assert labels_sent(send_request(delivery.message).body) == [option], channel


options = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30),
    min_size=1,
    max_size=15,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(PRIVATE),
    st.sampled_from(["quick_replies", "buttons"]),
    options,
)
def test_any_options_go_whole_within_the_channels_labels_or_are_blocked(
    channel: str, kind: str, offered: list[str]
) -> None:
    rules = REGISTRY[channel]
    content = {"kind": kind, "text": "Which one?", "options": offered}
    delivery = decided(channel, content)
    shown = rules.max_quick_replies if kind == "quick_replies" else rules.max_buttons
    carried = kind in rules.content and shown
    limit = limit_for(rules, kind) if carried else None
    kept = offered[:shown]
    if carried and len(offered) > shown and rules.option_list is not None:
        # more than the channel's buttons: its list message's rows
        kept, limit = offered[: rules.option_list.max_rows], rules.option_list.row_title
    too_long = [o for o in kept if limit is not None and text_length(o, rules) > limit]
    repeated = carried and rules.distinct_options and len({o.strip() for o in kept}) < len(kept)
    if delivery.status == "blocked" and not too_long and repeated:  # (test_repeated_options)
        assert delivery.reason_code == "content_not_supported", delivery.reason
        return
    if delivery.status == "blocked":
        assert delivery.reason_code == "text_too_long", delivery.reason
        assert too_long, delivery.reason  # blocked only for a label that would not show whole
        assert f"{too_long[0]!r}" in delivery.reason
        return
    assert not too_long
    body = send_request(delivery.message).body
    if rules.send is None:  # the web widget: the content as it is
        assert body["content"]["options"] == (kept if carried else None) or not carried
        return
    sent = labels_sent(body)
    if sent:
        assert carried and sent == kept  # each whole, in order: never cut, never reworded
        assert all(limit is None or text_length(label, rules) <= limit for label in sent)
    else:  # no such form on the channel (or X DMs): every option whole in the text sent
        text = text_sent(body)
        listed = kept if carried else offered  # (the text's outer spaces are trimmed)
        assert all(option.strip() in text for option in listed), (channel, text)


# ---------------------------------------------------------------- the text above the options
def test_the_text_above_options_is_registry_data_with_a_source() -> None:
    assert REGISTRY["whatsapp"].options_text.quick_replies == 1024
    assert REGISTRY["messenger"].options_text.buttons == 640
    for key in ("whatsapp", "messenger"):
        assert REGISTRY[key].sources["options_text"].startswith("https://")


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(
        [
            ("whatsapp", "quick_replies"),
            ("whatsapp", "buttons"),
            ("messenger", "buttons"),
            ("messenger", "quick_replies"),
        ]
    ),
    st.integers(min_value=1, max_value=1100),
)
def test_a_text_longer_than_the_options_form_takes_is_blocked(
    channel_kind: tuple[str, str], size: int
) -> None:
    channel, kind = channel_kind
    rules = REGISTRY[channel]
    text = "é" * size
    delivery = decided(channel, {"kind": kind, "text": text, "options": ["Yes", "No"]})
    limit = (
        rules.options_text.quick_replies if kind == "quick_replies" else rules.options_text.buttons
    )
    if limit is not None and size > limit:
        assert delivery.status == "blocked" and delivery.reason_code == "text_too_long"
        assert f"is {size:,} characters; a {rules.name} message with" in delivery.reason
        assert f"at most {limit:,}" in delivery.reason
    else:  # within the form (Messenger's quick replies ride on a text message: max_text)
        assert delivery.status == "sent", delivery.reason
        assert text_sent(send_request(delivery.message).body) == text
