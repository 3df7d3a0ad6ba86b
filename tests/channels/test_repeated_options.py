"""Two options with the same label. WhatsApp refuses them (a reply button's title and id must
each be unique in the message, and the id we send is the label; a list's rows are told apart
by their ids the same way): the policy blocks such a reply at decision time with the option it
repeats, rather than the sender meeting the Cloud API's 400. Where the vendor takes repeated
labels (Messenger, Instagram, LINE, X DMs: nothing documented refuses them) both options send
the same answer, so the reply goes out as written. Which channels refuse is registry data
(`distinct_options`), with its source."""

from __future__ import annotations

from typing import Any

import pytest

from flowlang.channels.outbound import send_request
from flowlang.channels.registry import builtin_registry
from flowlang.runtime.ports import Delivery
from tests.channels.helpers import policy_decision

REGISTRY = builtin_registry()
TOPICS = ["Cards", "Loans", "Mortgages", "Savings", "Insurance", "Fees"]


def decided(channel: str, content: dict[str, Any]) -> Delivery:
    return policy_decision(channel, content, account="+442079460000", sender="flow")


def test_which_channels_refuse_repeated_options_is_registry_data_with_a_source() -> None:
    refusing = sorted(key for key, rules in REGISTRY.items() if rules.distinct_options)
    assert refusing == ["whatsapp"]
    assert REGISTRY["whatsapp"].sources["distinct_options"].startswith("https://")


@pytest.mark.parametrize("kind", ["quick_replies", "buttons"])
@pytest.mark.parametrize(
    ("options", "repeated"),
    [
        (["Yes", "No", "Yes"], "Yes"),  # reply buttons
        (["Yes", "No", " Yes "], "Yes"),  # the same as the customer sees it
        ([*TOPICS, "Loans"], "Loans"),  # a list's rows
    ],
)
def test_repeated_options_are_blocked_on_whatsapp_naming_the_option(
    kind: str, options: list[str], repeated: str
) -> None:
    delivery = decided("whatsapp", {"kind": kind, "text": "Which?", "options": options})
    assert delivery.status == "blocked"
    assert delivery.reason_code == "content_not_supported"
    assert f"{repeated!r}" in delivery.reason and "WhatsApp" in delivery.reason
    assert delivery.suggestion


def test_distinct_options_still_go_on_whatsapp_as_buttons_and_as_a_list() -> None:
    for options in (["Yes", "No", "yes please"], TOPICS):
        delivery = decided("whatsapp", {"kind": "buttons", "text": "Which?", "options": options})
        assert delivery.status == "sent", delivery.reason
        interactive = send_request(delivery.message).body["interactive"]
        action = interactive["action"]
        ids = [b["reply"]["id"] for b in action.get("buttons", [])] or [
            row["id"] for section in action["sections"] for row in section["rows"]
        ]
        assert ids == options and len(set(ids)) == len(ids)


def test_only_the_options_shown_count_on_whatsapp() -> None:
    """Beyond a list's ten rows the options are not sent: a repeat there blocks nothing."""
    options = [f"Topic {n}" for n in range(10)] + ["Topic 0"]
    delivery = decided("whatsapp", {"kind": "buttons", "text": "Which?", "options": options})
    assert delivery.status != "blocked", delivery.reason


@pytest.mark.parametrize("channel", ["messenger", "instagram", "line", "x_dm", "web"])
def test_repeated_options_go_where_the_vendor_takes_them(channel: str) -> None:
    content = {"kind": "quick_replies", "text": "Which?", "options": ["Yes", "No", "Yes"]}
    delivery = decided(channel, content)
    assert delivery.status in ("sent", "degraded"), delivery.reason


@pytest.mark.parametrize("options", [[" Yes", "No "], [f" {topic} " for topic in TOPICS]])
def test_a_whatsapp_option_id_is_its_label_without_the_surrounding_spaces_the_vendor_refuses(
    options: list[str],
) -> None:
    """The Cloud API refuses a button id that starts or ends with a space; the id is the flow's
    option label, so it goes without them, and the title as written (the customer's choice
    comes back with that title as its text, the trimmed id as its postback)."""
    delivery = decided("whatsapp", {"kind": "buttons", "text": "Which?", "options": options})
    assert delivery.status == "sent", delivery.reason
    action = send_request(delivery.message).body["interactive"]["action"]
    sent = [b["reply"] for b in action.get("buttons", [])] or [
        row for section in action["sections"] for row in section["rows"]
    ]
    assert [each["id"] for each in sent] == [option.strip() for option in options]
    assert [each["title"] for each in sent] == options
