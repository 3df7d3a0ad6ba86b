"""Inbound normalisers on each channel's documented webhook payloads (examples/payloads/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.inbound import PayloadError, normalise
from flowlang.events import EventKind
from tests.channels.helpers import FIXTURES

PAYLOADS = Path(__file__).resolve().parents[2] / "examples" / "payloads"
RECEIVED = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)


def _events(channel: str, name: str) -> list[Any]:
    return normalise(channel, (PAYLOADS / name).read_bytes(), received_at=RECEIVED)


def _summary(channel: str, name: str) -> list[tuple[Any, ...]]:
    return [
        (e.channel, e.kind.value, e.sender_id, e.text, e.postback, [a.type for a in e.attachments])
        for e in _events(channel, name)
    ]


def test_whatsapp_text_names_the_customer_and_their_e164_number() -> None:
    (event,) = _events("whatsapp", "whatsapp/text.json")
    assert event.event_id == "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggQTFCMkMzRDRFNUY2"
    assert event.account == "+442079460000"
    assert (event.sender_id, event.sender_phone, event.sender_name) == (
        "447700900123",
        "+447700900123",
        "Ben Carter",
    )
    assert event.timestamp == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def test_whatsapp_image_caption_button_reply_and_status() -> None:
    assert _summary("whatsapp", "whatsapp/image_and_button.json") == [
        ("whatsapp", "message", "447700900123", "This is the statement line", None, ["image"]),
        ("whatsapp", "postback", "447700900123", "Talk to an agent", "talk_to_agent", []),
    ]
    image = _events("whatsapp", "whatsapp/image_and_button.json")[0].attachments[0]
    assert image.url == "whatsapp-media:1479537139650973" and image.mime == "image/jpeg"
    (status,) = _events("whatsapp", "whatsapp/status.json")
    assert status.kind is EventKind.RECEIPT and status.text == "read"


def test_messenger_quick_reply_postback_read_and_no_echo() -> None:
    assert _summary("messenger", "messenger/quick_reply_and_postback.json") == [
        ("messenger", "postback", "7654321098765432", "Cards", "TOPIC_CARDS", []),
        ("messenger", "postback", "7654321098765432", "Talk to a person", "HUMAN", []),
        ("messenger", "receipt", "7654321098765432", "read", None, []),
    ]
    (message,) = _events("messenger", "messenger/message.json")
    assert message.account == "104857362910"
    assert message.timestamp == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("mid", ["", None])
def test_a_messenger_postback_without_its_mid_gets_an_id_of_its_own(mid: str | None) -> None:
    payload = json.loads((PAYLOADS / "messenger/quick_reply_and_postback.json").read_text())
    postback = payload["entry"][0]["messaging"][1]["postback"]
    if mid is None:
        del postback["mid"]
    else:
        postback["mid"] = mid
    event = normalise("messenger", payload, received_at=RECEIVED)[1]
    assert event.event_id.startswith("postback:7654321098765432:")


def test_instagram_uses_the_messenger_shape_under_its_own_channel() -> None:
    assert _summary("instagram", "instagram/message.json") == [
        (
            "instagram",
            "message",
            "6285613998186716",
            "Do you have a branch in Leeds?",
            None,
            ["image"],
        )
    ]


def test_facebook_page_comment_skips_the_pages_own_reply_and_reactions() -> None:
    (comment,) = _events("facebook_page", "facebook_page/comment.json")
    assert comment.kind is EventKind.COMMENT and comment.sender_name == "Chris Doe"
    assert comment.post_id == "104857362910_987654321"
    (removed,) = _events("facebook_page", "facebook_page/delete.json")
    assert removed.kind is EventKind.DELETE and removed.post_id == comment.post_id


def test_x_dm_mention_and_delete_name_the_business_by_its_handle() -> None:
    (dm,) = _events("x_dm", "x/dm.json")
    assert (dm.channel, dm.account, dm.sender_id, dm.sender_name) == (
        "x_dm",
        "@GbankSocial",
        "4470011",
        "Dana Reyes",
    )
    (tweet,) = _events("x_public", "x/mention.json")
    assert tweet.kind is EventKind.POST and tweet.account == "@GbankSocial"
    assert tweet.post_id == "1877000000000000201" and "#nothappy" in tweet.text
    (deleted,) = _events("x_public", "x/delete.json")
    assert deleted.kind is EventKind.DELETE and deleted.post_id == tweet.post_id


def test_line_keeps_the_reply_token_and_skips_follow_events() -> None:
    text, sticker = _events("line", "line/message.json")
    assert text.text == "ローンについて教えてください" and text.reply_token
    assert text.event_id == "01H810YECXQQZ37VAXPF6H9E6T"  # webhookEventId: stable on redelivery
    assert sticker.attachments[0].sticker_id == "11537/52002734"


def test_twilio_sms_form_post_uses_the_time_it_was_received() -> None:
    (sms,) = _events("sms", "sms/incoming.txt")
    assert (sms.sender_id, sms.sender_phone, sms.account) == (
        "+447700900456",
        "+447700900456",
        "+447480000000",
    )
    assert sms.text == "Is my loan application approved?" and sms.timestamp == RECEIVED
    status = normalise("sms", "MessageSid=SM1&MessageStatus=delivered&To=%2B447700900456")
    assert status[0].kind is EventKind.RECEIPT and status[0].text == "delivered"


def test_web_widget_format() -> None:
    assert _summary("web", "web/message.json") == [
        ("web", "message", "web-visitor-5c1d", "Hello, I'd like to open an account", None, [])
    ]


def test_web_visitor_closing_the_chat_is_a_close_event() -> None:
    payload = {
        "type": "close",
        "id": "w-9",
        "widget": "widget-7f3a",
        "visitor": {"id": "web-visitor-5c1d"},
        "timestamp": "2026-01-05T09:10:00Z",
    }
    (event,) = normalise("web", json.dumps(payload).encode(), received_at=RECEIVED)
    assert (event.kind, event.sender_id, event.text) == (EventKind.CLOSE, "web-visitor-5c1d", "")
    assert event.timestamp == datetime(2026, 1, 5, 9, 10, tzinfo=UTC)


def _whatsapp_without(key: str) -> dict[str, Any]:
    data = json.loads((PAYLOADS / "whatsapp/text.json").read_text())
    del data["entry"][0]["changes"][0]["value"]["messages"][0][key]
    return data


@pytest.mark.parametrize(
    ("channel", "body", "message"),
    [
        (
            "whatsapp",
            _whatsapp_without("from"),
            "whatsapp payload: entry[0].changes[0].value.messages[0].from: missing",
        ),
        ("whatsapp", b"{not json", "whatsapp payload: (body): not JSON: Expecting property name"),
        ("whatsapp", b"\xff\xfe", "whatsapp payload: (body): not UTF-8 (byte 0)"),
        ("whatsapp", {"object": "page"}, "object: expected 'whatsapp_business_account'"),
        (
            "messenger",
            {"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"}}]}]},
            "messenger payload: entry[0].messaging[0].timestamp: missing",
        ),
        (
            "line",
            {"destination": "U1", "events": "none"},
            "line payload: events: expected a list, got text",
        ),
        (
            "web",
            {"type": "typing"},
            "web payload: type: expected one of message, postback, close, read",
        ),
        ("telegram", {}, "telegram payload: (channel): no normaliser for this channel"),
    ],
)
def test_a_payload_that_cannot_be_read_names_the_field(
    channel: str, body: Any, message: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        normalise(channel, body)
    assert message in str(caught.value)


_JUNK = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just({})
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(FIXTURES), st.data())
def test_a_damaged_payload_gives_events_or_a_payload_error_never_a_crash(
    fixture: tuple[str, str], data: st.DataObject
) -> None:
    channel, name = fixture
    payload = json.loads((PAYLOADS / name).read_text())
    path = data.draw(st.sampled_from(_paths(payload)))
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_JUNK)
    try:
        events = normalise(channel, payload, received_at=RECEIVED)
    except PayloadError as exc:
        assert exc.field and str(exc).startswith(f"{channel} payload: ")
    else:
        assert all(e.event_id and e.sender_id is not None for e in events)
