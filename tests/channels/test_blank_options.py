"""An option whose label is blank (empty or only spaces). On WhatsApp a button's or list row's
id is its label trimmed, so it would be empty, which the Cloud API refuses; on every channel
the customer has nothing to choose it by. It is refused where the content is made: at flow
check time when the label is written in the flow (FL472, tests/cases/check/321_blank_option),
when the deployment is read for a template's item (FL503), and at decision time otherwise (an
agent's reply, a template rendered): the policy blocks the reply naming the option, and the
WhatsApp send body refuses to carry an empty id even if it were asked to."""

from __future__ import annotations

from typing import Any

import pytest

from flowlang.channels.outbound import send_request
from flowlang.channels.outbound.send_bodies import BlankOptionError
from flowlang.config import load_deployment_text
from flowlang.runtime.ports import Delivery, OutboundMessage
from tests.channels.helpers import policy_decision

TOPICS = ["Cards", "Loans", "Mortgages", "Savings", "Insurance", "Fees"]


def decided(channel: str, content: dict[str, Any]) -> Delivery:
    return policy_decision(channel, content, account="+442079460000", sender="agent")


@pytest.mark.parametrize("kind", ["quick_replies", "buttons"])
@pytest.mark.parametrize(
    ("options", "number"),
    [
        (["Yes", "   "], 2),  # reply buttons
        (["", "No"], 1),
        ([*TOPICS[:4], " \t ", *TOPICS[4:]], 5),  # a list's rows
    ],
)
def test_a_blank_option_is_blocked_on_whatsapp_naming_it(
    kind: str, options: list[str], number: int
) -> None:
    delivery = decided("whatsapp", {"kind": kind, "text": "Which?", "options": options})
    assert delivery.status == "blocked", delivery
    assert delivery.reason_code == "content_not_supported"
    assert f"option {number} of" in delivery.reason and "is blank" in delivery.reason
    assert delivery.suggestion


@pytest.mark.parametrize("channel", ["messenger", "instagram", "line", "x_dm", "web"])
def test_a_blank_option_is_blocked_wherever_options_are_shown(channel: str) -> None:
    content = {"kind": "quick_replies", "text": "Which?", "options": ["Yes", "  "]}
    delivery = decided(channel, content)
    assert delivery.status == "blocked", delivery
    assert "is blank" in delivery.reason


def test_options_with_words_still_go() -> None:
    content = {"kind": "buttons", "text": "Which?", "options": [" Yes", "No "]}
    assert decided("whatsapp", content).status == "sent"


def test_the_whatsapp_send_body_never_carries_an_empty_id() -> None:
    """Past the policy (as if it had been skipped), a blank option still never reaches the
    vendor: the error is permanent, so the message is kept as a dead letter, not retried."""
    for options in (["Yes", "  "], [*TOPICS, " "]):
        content = {"kind": "buttons", "text": "Which?", "options": options}
        message = OutboundMessage(
            "c1", "whatsapp", "+442079460000", "447700900123", "agent", content
        )
        with pytest.raises(BlankOptionError, match="empty id") as refused:
            send_request(message)
        assert refused.value.permanent


def test_a_deployment_template_item_with_a_blank_label_is_refused_where_it_is_written() -> None:
    text = (
        "templates:\n"
        "  which:\n"
        "    text: Which one?\n"
        "    kind: buttons\n"
        '    items: ["Cards", "   "]\n'
        "  titled:\n"
        "    text: Which one?\n"
        "    kind: carousel\n"
        '    items: [{title: " "}]\n'
    )
    _, problems = load_deployment_text(text, "d.yaml")
    blank = [p for p in problems if "is blank" in p.message]
    assert [(p.code, p.span.line if p.span else None) for p in blank] == [
        ("FL503", 5),
        ("FL503", 9),
    ]
    assert "template 'which': item 2's label is blank" in blank[0].message
