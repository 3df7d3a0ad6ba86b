"""Channel rules as a customer and an agent would meet them: reply windows at their boundaries,
anti-spam and opt-out rules, and messages the channel cannot carry as sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.outbound import send_request
from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import RegistryError, builtin_registry, load_registry
from flowlang.channels.sms_segments import segments
from flowlang.events import InboundEvent
from flowlang.runtime.ports import ConversationView, Delivery, OutboundMessage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def conversation(channel: str, last_inbound: datetime | None = T0) -> ConversationView:
    return ConversationView(
        id="c1",
        customer_id="cu1",
        channel=channel,
        account="acct",
        started_at=T0,
        last_activity_at=T0,
        last_inbound_at=last_inbound,
    )


def text(
    channel: str, body: str = "Hello", sender: str = "agent", to: str = "cu1"
) -> OutboundMessage:
    return OutboundMessage("c1", channel, "acct", to, sender, {"kind": "text", "text": body})


APPROVED = {"whatsapp_followup": "APPROVED"}  # the deployment's templates and their status


def template(channel: str = "whatsapp", to: str = "cu1") -> OutboundMessage:
    content: dict[str, Any] = {"kind": "template", "name": "whatsapp_followup", "parameters": {}}
    return OutboundMessage("c1", channel, "acct", to, "flow", content)


# ---------------------------------------------------------------- reply windows


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["whatsapp", "messenger", "instagram", "x_dm"]), st.integers(1, 3600))
def test_24_hour_windows_are_open_just_before_and_closed_just_after(
    channel: str, seconds: int
) -> None:
    policy = ChannelPolicy()
    conv = conversation(channel)
    before = T0 + timedelta(hours=24) - timedelta(seconds=seconds)
    after = T0 + timedelta(hours=24) + timedelta(seconds=seconds)
    assert policy.window_open(conv, before)[0] is True
    assert policy.decide(text(channel, sender="flow"), conv, before).status == "sent"
    assert policy.window_open(conv, after)[0] is False
    assert policy.decide(text(channel, sender="flow"), conversation(channel), after).status == (
        "blocked"
    )


def test_the_window_closes_exactly_24_hours_after_the_customers_last_message() -> None:
    policy = ChannelPolicy()
    conv = conversation("whatsapp")
    assert policy.window_open(conv, T0 + timedelta(hours=24) - SECOND) == (True, SECOND)
    assert policy.window_open(conv, T0 + timedelta(hours=24))[0] is False
    assert policy.window_closes_at(conv) == T0 + timedelta(hours=24)


def test_whatsapp_outside_the_window_allows_only_approved_templates() -> None:
    policy = ChannelPolicy(templates=APPROVED)
    late = T0 + timedelta(hours=24) + SECOND
    blocked = policy.decide(text("whatsapp"), conversation("whatsapp"), late)
    assert (blocked.status, blocked.reason_code) == ("blocked", "window_closed_template_required")
    assert "template" in blocked.suggestion
    sent = policy.decide(template(), conversation("whatsapp"), late)
    assert (sent.status, sent.reason_code) == ("sent", "business_initiated")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 86_400))
def test_messenger_human_agent_tag_lasts_7_days_for_agents_only(seconds: int) -> None:
    policy = ChannelPolicy()
    inside = T0 + timedelta(days=7) - timedelta(seconds=seconds)
    outside = T0 + timedelta(days=7) + timedelta(seconds=seconds)
    if inside > T0 + timedelta(hours=24):
        tagged = policy.decide(text("messenger"), conversation("messenger"), inside)
        assert (tagged.status, tagged.reason_code) == ("sent", "human_agent_tag")
        assert tagged.message.content["tag"] == "HUMAN_AGENT"
        bot = policy.decide(text("messenger", sender="bot"), conversation("messenger"), inside)
        assert bot.status == "blocked"
    assert policy.decide(text("messenger"), conversation("messenger"), outside).status == (
        "blocked"
    )


def test_messenger_24_plus_1_allows_one_message_after_the_window_not_two() -> None:
    rules = load_registry({"messenger": {"window": {"outside": "one_more"}}})
    policy = ChannelPolicy(rules)
    conv = conversation("messenger")
    late = T0 + timedelta(hours=24) + SECOND
    first = policy.decide(text("messenger", "Are you still there?", sender="bot"), conv, late)
    second = policy.decide(text("messenger", "Hello?", sender="bot"), conv, late + SECOND)
    assert (first.status, first.reason_code) == ("sent", "one_more")
    assert (second.status, second.reason_code) == ("blocked", "window_closed")
    policy.observe_inbound(conv, inbound("messenger", "yes"), late + 2 * SECOND)
    conv.last_inbound_at = late + 2 * SECOND
    assert policy.decide(
        text("messenger", "Great", sender="bot"), conv, late + 3 * SECOND
    ).status == ("sent")


def test_line_sends_after_the_reply_token_as_a_push_message() -> None:
    policy = ChannelPolicy()
    later = T0 + timedelta(days=3)
    delivery = policy.decide(text("line"), conversation("line"), later)
    assert delivery.status == "sent"
    assert policy.window_open(conversation("line"), later) == (True, None)


@pytest.mark.parametrize("channel", ["web", "sms", "facebook_page", "x_public", "line"])
def test_channels_without_a_window_stay_open_after_72_hours(channel: str) -> None:
    policy = ChannelPolicy()
    late = T0 + timedelta(hours=72) + SECOND
    assert policy.decide(text(channel, sender="agent"), conversation(channel), late).status in (
        "sent",
        "degraded",
    )


# ---------------------------------------------------------------- anti-spam and opt-out


@pytest.mark.parametrize("channel", list(builtin_registry()))
def test_no_unsolicited_messages_on_any_channel(channel: str) -> None:
    delivery = ChannelPolicy().decide(text(channel), conversation(channel, None), T0)
    assert (delivery.status, delivery.reason_code) == ("blocked", "unsolicited")


def test_x_dm_forbids_the_same_message_twice_in_a_row() -> None:
    policy = ChannelPolicy()
    conv = conversation("x_dm")
    assert policy.decide(text("x_dm", "Thanks!"), conv, T0).status == "sent"
    repeat = policy.decide(text("x_dm", "Thanks!"), conv, T0 + SECOND)
    assert (repeat.status, repeat.reason_code) == ("blocked", "identical_message")
    assert policy.decide(text("x_dm", "Anything else?"), conv, T0 + 2 * SECOND).status == "sent"


def test_x_dm_allows_five_replies_per_customer_message() -> None:
    policy = ChannelPolicy()
    conv = conversation("x_dm")
    results = [policy.decide(text("x_dm", f"part {i}"), conv, T0).status for i in range(6)]
    assert results == ["sent"] * 5 + ["blocked"]
    policy.observe_inbound(conv, inbound("x_dm", "ok"), T0 + SECOND)
    assert policy.decide(text("x_dm", "part 7"), conv, T0 + SECOND).status == "sent"


def test_x_public_allows_one_automated_reply_per_post() -> None:
    policy = ChannelPolicy()
    conv = conversation("x_public")
    ack = text("x_public", "Sorry to hear that!", sender="flow")
    assert policy.decide(ack, conv, T0).status == "sent"
    again = policy.decide(text("x_public", "Please DM us", sender="flow"), conv, T0 + SECOND)
    assert again.reason_code == "automated_reply_limit"


def test_the_same_automated_text_to_many_customers_is_a_bulk_send() -> None:
    policy = ChannelPolicy()
    limit = builtin_registry()["line"].bulk_limit
    results = []
    for n in range(limit + 1):
        conv = conversation("line")
        conv.id = f"c{n}"
        message = text("line", "Big offer today!", sender="flow", to=f"customer-{n}")
        results.append(policy.decide(message, conv, T0 + n * SECOND).reason_code)
    assert results[-1] == "bulk_send" and "bulk_send" not in results[:-1]
    later = conversation("line")
    message = text("line", "Big offer today!", sender="flow", to="customer-late")
    assert policy.decide(message, later, T0 + timedelta(minutes=5)).status == "sent"


@pytest.mark.parametrize("word", ["STOP", "stop", " Unsubscribe ", "QUIT", "optout"])
def test_sms_opt_out_words_stop_everything(word: str) -> None:
    policy = ChannelPolicy()
    conv = conversation("sms")
    assert policy.observe_inbound(conv, inbound("sms", word), T0) == ("opted_out", "")
    blocked = policy.decide(text("sms", "We miss you"), conv, T0 + SECOND)
    assert (blocked.status, blocked.reason_code) == ("blocked", "opted_out")
    assert policy.observe_inbound(conv, inbound("sms", "START"), T0 + 2 * SECOND) == (
        "opted_in",
        "",
    )
    assert policy.decide(text("sms", "Welcome back"), conv, T0 + 3 * SECOND).status == "sent"


def test_sms_help_gets_the_help_text_and_a_word_inside_a_sentence_is_not_a_keyword() -> None:
    policy = ChannelPolicy()
    conv = conversation("sms")
    what, reply = policy.observe_inbound(conv, inbound("sms", "help"), T0) or ("", "")
    assert what == "help" and "STOP" in reply
    assert policy.observe_inbound(conv, inbound("sms", "please stop the card"), T0) is None


def test_whatsapp_business_initiated_conversations_are_capped_by_the_tier() -> None:
    policy = ChannelPolicy(load_registry({"whatsapp": {"tier": 2}}), templates=APPROVED)
    late = T0 + timedelta(days=2)
    codes = [
        policy.decide(template(to=f"customer-{n}"), conversation("whatsapp"), late).reason_code
        for n in range(3)
    ]
    assert codes == ["business_initiated", "business_initiated", "tier_limit_reached"]
    again = policy.decide(template(to="customer-0"), conversation("whatsapp"), late)
    assert again.status == "sent"  # the same customer again is not a new conversation


# ---------------------------------------------------------------- content


def test_a_sticker_where_stickers_are_not_carried_becomes_its_text() -> None:
    message = OutboundMessage(
        "c1",
        "sms",
        "acct",
        "cu1",
        "agent",
        {"kind": "sticker", "url": "https://cdn/x.webp", "fallback": "(thumbs up)"},
    )
    delivery = ChannelPolicy().decide(message, conversation("sms"), T0)
    assert delivery.status == "degraded"
    assert delivery.message.content == {"kind": "text", "text": "(thumbs up)"}
    assert "cannot carry sticker" in delivery.reason


def test_too_many_quick_replies_are_trimmed_listed_or_numbered_as_the_channel_shows_them() -> None:
    options = [f"Option {i}" for i in range(15)]
    content = {"kind": "quick_replies", "text": "Pick one", "options": options}

    def decided(channel: str) -> Delivery:
        message = OutboundMessage("c1", channel, "a", "cu1", "flow", content)
        return ChannelPolicy().decide(message, conversation(channel), T0)

    messenger = decided("messenger")
    assert messenger.status == "degraded" and messenger.message.content["options"] == options[:13]
    assert "shows at most 13: the first 13 were kept" in messenger.reason
    wa = decided("whatsapp")  # more than 3 reply buttons: a list message, of 10 rows at most
    assert wa.status == "degraded" and wa.message.content["options"] == options[:10]
    assert wa.message.content["form"] == "list"
    assert "list shows at most 10 options: the first 10 were kept" in wa.reason
    sms = decided("sms")
    assert sms.message.content["text"].splitlines()[1:] == [
        f"{i}. Option {i - 1}" for i in range(1, 16)
    ]


def test_text_over_the_channels_limit_is_blocked_with_the_numbers() -> None:
    delivery = ChannelPolicy().decide(text("x_public", "a" * 281), conversation("x_public"), T0)
    assert delivery.reason_code == "text_too_long"
    assert "281" in delivery.reason and "280" in delivery.reason


@pytest.mark.parametrize("field", ["caption", "fallback"])
def test_a_text_in_another_field_is_measured_as_the_text_it_is_sent_as(field: str) -> None:
    """The senders send text, else caption, else fallback: the limit holds for whichever one
    goes out, so a long text cannot pass as a caption."""
    message = OutboundMessage("c1", "x_public", "acct", "cu1", "agent", {"kind": "text"})
    message.content[field] = "a" * 281
    delivery = ChannelPolicy().decide(message, conversation("x_public"), T0)
    assert (delivery.status, delivery.reason_code) == ("blocked", "text_too_long")


def test_x_dm_forbids_the_same_text_twice_in_a_row_whichever_field_carries_it() -> None:
    policy, conv = ChannelPolicy(), conversation("x_dm")
    first = OutboundMessage("c1", "x_dm", "acct", "cu1", "agent", {"kind": "text", "text": "Hi"})
    again = OutboundMessage("c1", "x_dm", "acct", "cu1", "agent", {"kind": "text", "caption": "Hi"})
    assert policy.decide(first, conv, T0).status == "sent"
    assert policy.decide(again, conv, T0 + SECOND).reason_code == "identical_message"


def test_a_template_that_would_go_out_under_another_whatsapp_name_is_blocked() -> None:
    """The policy checks the template name that is sent, not only the deployment name the
    content claims: a declared template cannot carry another WhatsApp template out."""
    policy = ChannelPolicy(templates=APPROVED, template_names={"whatsapp_followup": "followup_v2"})
    late = T0 + timedelta(hours=24) + SECOND
    declared = template()
    declared.content["whatsapp_name"] = "followup_v2"
    assert policy.decide(declared, conversation("whatsapp"), late).status == "sent"
    forged = template()
    forged.content["whatsapp_name"] = "black_friday_marketing_promo"
    blocked = policy.decide(forged, conversation("whatsapp"), late)
    assert (blocked.status, blocked.reason_code) == ("blocked", "unknown_template")
    assert "black_friday_marketing_promo" in blocked.reason


def test_x_public_counts_cjk_as_two_and_urls_as_23() -> None:
    policy = ChannelPolicy()
    assert (
        policy.decide(text("x_public", "日" * 140), conversation("x_public"), T0).status == "sent"
    )
    too_long = policy.decide(text("x_public", "日" * 141), conversation("x_public"), T0)
    assert too_long.reason_code == "text_too_long"
    url = "https://gbank.com/" + "x" * 300
    assert policy.decide(text("x_public", url), conversation("x_public"), T0).status == "sent"


def test_a_long_sms_is_sent_in_segments() -> None:
    delivery = ChannelPolicy().decide(text("sms", "a" * 161), conversation("sms"), T0)
    assert delivery.status == "degraded"
    assert delivery.message.content["segments"] == 2 and "GSM-7" in delivery.reason


@pytest.mark.parametrize(
    ("body", "encoding", "count"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two slots
        ("€" * 81, "GSM-7", 2),
        ("ç" + "a" * 69, "UCS-2", 1),  # one character outside GSM-7 switches the message
        ("ç" + "a" * 70, "UCS-2", 2),
        ("😀" * 35, "UCS-2", 1),  # emoji are two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_sms_segment_boundaries(body: str, encoding: str, count: int) -> None:
    parts = segments(body)
    assert (parts.encoding, parts.count) == (encoding, count)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_segments_always_hold_the_whole_text(body: str) -> None:
    parts = segments(body)
    capacity = parts.per_segment * parts.count
    assert parts.units <= max(capacity, 0) or (parts.count == 0 and body == "")


# ---------------------------------------------------------------- registry


def test_every_channel_of_the_language_has_rules_with_sources() -> None:
    from flowlang.language.context import KNOWN_CHANNELS

    registry = builtin_registry()
    assert set(registry) == set(KNOWN_CHANNELS)
    for rules in registry.values():
        assert rules.sources, f"{rules.key} has no sources"


def test_a_bad_override_is_a_clear_error() -> None:
    with pytest.raises(RegistryError, match=r"whatsapp.*max_text"):
        load_registry({"whatsapp": {"max_text": "long"}})
    with pytest.raises(RegistryError, match="unknown_rule"):
        load_registry({"sms": {"unknown_rule": 1}})


def inbound(channel: str, body: str) -> InboundEvent:
    return InboundEvent(
        event_id=f"in-{body}", channel=channel, sender_id="cu1", text=body, timestamp=T0
    )


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["messenger", "instagram"]),
    st.sampled_from(["ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "HUMAN_AGENT", "anything"]),
    st.integers(0, 6 * 24 * 3600),
)
def test_a_message_tag_is_the_policys_never_the_messages(
    channel: str, tag: str, seconds: int
) -> None:
    """An agent's reply content naming a Meta message tag of its own: inside the window it goes
    out as a plain response, outside it with the HUMAN_AGENT tag the policy gives, never with
    the tag the content claimed."""
    policy = ChannelPolicy()
    now = T0 + timedelta(seconds=seconds)
    message = OutboundMessage(
        "c1", channel, "acct", "cu1", "agent", {"kind": "text", "text": "Hi", "tag": tag}
    )
    verdict = policy.decide(message, conversation(channel), now)
    assert verdict.status == "sent"
    body = send_request(verdict.message).body
    if seconds < 24 * 3600:
        assert "tag" not in verdict.message.content and body["messaging_type"] == "RESPONSE"
    else:
        assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


# ---------------------------------------------------------------- media sent as a link


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([("x_dm", "image"), ("x_dm", "video"), ("line", "audio")]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip),
    st.integers(0, 12_000),
)
def test_media_a_sender_sends_as_its_link_is_measured_as_sent(
    case: tuple[str, str], caption: str, padding: int
) -> None:
    """X DMs (an upload first) and LINE audio (its duration) are sent as text with the URL:
    what the policy measures is that text, caption and URL, and the vendor gets both; over
    the channel's limit it is held back (text_too_long), never cut or sent without its link."""
    channel, kind = case
    policy = ChannelPolicy()
    rules = policy.rules[channel]
    url = "https://cdn.example.com/" + "a" * padding + ".bin"
    content: dict[str, Any] = {"kind": kind, "url": url}
    if caption:
        content["caption"] = caption
    message = OutboundMessage("c1", channel, "acct", "cu1", "agent", content)
    delivery = policy.decide(message, conversation(channel), T0 + SECOND)
    sent = f"{caption}\n{url}" if caption else url
    if len(sent) > rules.max_text:
        assert delivery.status == "blocked" and delivery.reason_code == "text_too_long"
        return
    assert delivery.status in ("sent", "degraded"), delivery
    assert delivery.message.content["kind"] == "text"
    assert delivery.message.content["text"] == sent
    body = send_request(delivery.message).body
    assert sent in [body.get("text"), *(item.get("text") for item in body.get("messages", []))]
