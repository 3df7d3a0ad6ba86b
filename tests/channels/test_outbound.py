"""Outbound adapters and each channel's send-API request body."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.channels.outbound import (
    ConsoleAdapter,
    DeliveryError,
    HttpAdapter,
    JsonLinesAdapter,
    send_request,
)
from flowlang.runtime.ports import OutboundMessage


def _message(channel: str, content: dict[str, Any], **extra: Any) -> OutboundMessage:
    recipients = {"whatsapp": "447700900123", "sms": "+447700900456", "line": "U" + "a" * 32}
    return OutboundMessage(
        conversation_id="conv1",
        channel=channel,
        account=extra.pop("account", "+447480000000"),
        recipient=recipients.get(channel, "7654321098765432"),
        sender="agent",
        content=content,
        **extra,
    )


def test_whatsapp_text_template_media_and_buttons() -> None:
    text = send_request(_message("whatsapp", {"kind": "text", "text": "See https://gbank.example"}))
    assert text.path == "/{phone_number_id}/messages"
    assert text.body["text"] == {"body": "See https://gbank.example", "preview_url": True}
    assert text.body["to"] == "447700900123" and text.body["messaging_product"] == "whatsapp"
    template = send_request(
        _message(
            "whatsapp",
            {
                "kind": "template",
                "name": "follow_up",
                "whatsapp_name": "gbank_follow_up_v2",
                "language": "en_GB",
                "parameters": {"name": "Ben"},
            },
        )
    ).body["template"]
    assert template == {
        "name": "gbank_follow_up_v2",
        "language": {"code": "en_GB"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ben"}]}],
    }
    image = send_request(
        _message("whatsapp", {"kind": "file", "url": "https://x/a.pdf", "caption": "Terms"})
    )
    assert image.body["type"] == "document"
    assert image.body["document"] == {"link": "https://x/a.pdf", "caption": "Terms"}
    buttons = send_request(
        _message("whatsapp", {"kind": "buttons", "text": "Which?", "options": ["Cards", "Loans"]})
    ).body["interactive"]
    assert buttons["type"] == "button"
    assert [b["reply"]["title"] for b in buttons["action"]["buttons"]] == ["Cards", "Loans"]
    many = [f"Option {i}" for i in range(5)]
    listed = send_request(
        _message("whatsapp", {"kind": "buttons", "text": "Pick", "options": many})
    )
    assert listed.body["interactive"]["type"] == "list"


def test_messenger_response_and_the_human_agent_tag() -> None:
    plain = send_request(
        _message("messenger", {"kind": "quick_replies", "text": "Topic?", "options": ["Cards"]})
    )
    assert plain.path == "/me/messages" and plain.body["messaging_type"] == "RESPONSE"
    assert plain.body["message"]["quick_replies"] == [
        {"content_type": "text", "title": "Cards", "payload": "Cards"}
    ]
    tagged = send_request(
        _message("messenger", {"kind": "text", "text": "Hi", "tag": "HUMAN_AGENT"})
    )
    assert tagged.body["messaging_type"] == "MESSAGE_TAG" and tagged.body["tag"] == "HUMAN_AGENT"
    image = send_request(_message("instagram", {"kind": "image", "url": "https://x/i.png"}))
    assert image.channel == "instagram"
    assert image.body["message"]["attachment"]["payload"]["url"] == "https://x/i.png"


def test_line_reply_with_a_token_push_without() -> None:
    message = _message("line", {"kind": "text", "text": "こんにちは"})
    reply = send_request(message, reply_token="38ef843bde154d9b91c21320ffd17a0f")
    assert reply.path == "/v2/bot/message/reply"
    assert reply.body == {
        "replyToken": "38ef843bde154d9b91c21320ffd17a0f",
        "messages": [{"type": "text", "text": "こんにちは"}],
    }
    push = send_request(message)
    assert push.path == "/v2/bot/message/push" and push.body["to"] == message.recipient
    sticker = send_request(_message("line", {"kind": "sticker", "sticker_id": "11537/52002734"}))
    assert sticker.body["messages"] == [
        {"type": "sticker", "packageId": "11537", "stickerId": "52002734"}
    ]


def test_x_dm_event_public_reply_facebook_comment_and_sms() -> None:
    dm = send_request(_message("x_dm", {"kind": "text", "text": "Hi Dana"}))
    assert dm.path == "/2/dm_conversations/with/7654321098765432/messages"
    assert dm.body == {"text": "Hi Dana"}
    options = {"kind": "quick_replies", "text": "Which?", "options": ["Cards", "Loans"]}
    # X API v2 DMs have no quick replies: the options go in the text, not lost
    assert send_request(_message("x_dm", options)).body == {"text": "Which?\n- Cards\n- Loans"}
    tweet = send_request(
        _message("x_public", {"kind": "text", "text": "We've sent you a DM"}, in_reply_to="1877")
    )
    assert tweet.path == "/2/tweets" and tweet.body["reply"] == {"in_reply_to_tweet_id": "1877"}
    comment = send_request(
        _message("facebook_page", {"kind": "text", "text": "Hi"}, in_reply_to="987_11")
    )
    assert comment.path == "/987_11/comments" and comment.body == {"message": "Hi"}
    sms = send_request(
        _message("sms", {"kind": "image", "url": "https://x/i.png", "caption": "Rates"})
    )
    assert sms.body == {
        "To": "+447700900456",
        "From": "+447480000000",
        "Body": "Rates",
        "MediaUrl": ["https://x/i.png"],
    }


LINK_CHANNELS = ("whatsapp", "messenger", "instagram", "line", "x_dm", "x_public", "sms")


@given(
    channel=st.sampled_from(LINK_CHANNELS),
    text=st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    path=st.from_regex(r"[a-z0-9/_-]{0,30}", fullmatch=True),
)
def test_a_link_is_sent_with_its_url_after_its_text_on_every_channel(
    channel: str, text: str, path: str
) -> None:
    """An agent's link with a line of text (the workspace's "Attach a link"): the vendor's
    request carries both, the URL once (it used to carry the text alone)."""
    url = f"https://gbank.example/{path}"
    content = {"kind": "link", "url": url, "text": text}
    body = json.dumps(send_request(_message(channel, content)).body, ensure_ascii=False)
    sent = f"{text}\n{url}" if text and url not in text else (text or url)
    assert json.dumps(sent, ensure_ascii=False)[1:-1] in body
    assert body.count(url) == max(1, text.count(url))


def test_console_and_json_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    ConsoleAdapter(stream).send(_message("whatsapp", {"kind": "image", "url": "https://x/i.png"}))
    assert stream.getvalue() == "-> whatsapp 447700900123 (agent): [image] https://x/i.png\n"
    path = tmp_path / "out.jsonl"
    adapter = JsonLinesAdapter(path)
    adapter.send(_message("sms", {"kind": "text", "text": "one"}))
    adapter.send(_message("sms", {"kind": "text", "text": "two"}))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["send"]["body"]["Body"] for line in lines] == ["one", "two"]


class _Server:
    """A local HTTP server answering with scripted status codes, recording each request."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((dict(self.headers), body))
                status = server.statuses.pop(0) if server.statuses else 200
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/outbound"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sleeps() -> Iterator[list[float]]:
    yield []


def test_http_retries_5xx_with_backoff_and_one_idempotency_key(sleeps: list[float]) -> None:
    with _Server([503, 502, 200]) as server:
        HttpAdapter(server.url, sleep=sleeps.append, backoff=0.5).send(
            _message("web", {"kind": "text", "text": "Hi"})
        )
    assert len(server.requests) == 3 and sleeps == [0.5, 1.0]
    keys = {headers["Idempotency-Key"] for headers, _ in server.requests}
    assert len(keys) == 1 and next(iter(keys)).startswith("conv1-")
    assert server.requests[0][1]["send"]["path"] == "/messages"


def test_http_does_not_retry_a_4xx(sleeps: list[float]) -> None:
    with (
        _Server([400]) as server,
        pytest.raises(DeliveryError, match="refused the message: HTTP 400") as caught,
    ):
        HttpAdapter(server.url, sleep=sleeps.append).send(_message("web", {"text": "Hi"}))
    assert caught.value.permanent and caught.value.status == 400
    assert len(server.requests) == 1 and sleeps == []


def test_http_429_waits_as_told_and_gives_up_after_the_retries(sleeps: list[float]) -> None:
    with (
        _Server([429, 429, 429], headers={"Retry-After": "2"}) as server,
        pytest.raises(DeliveryError, match="gave up after 3 attempts: HTTP 429") as caught,
    ):
        HttpAdapter(server.url, retries=2, backoff=0.25, sleep=sleeps.append).send(
            _message("web", {"text": "Hi"})
        )
    assert not caught.value.permanent
    assert sleeps == [2.0, 2.0]  # Retry-After instead of the backoff


def test_http_connection_refused_is_retried_then_reported(sleeps: list[float]) -> None:
    with _Server([]) as server:
        url = server.url
    with pytest.raises(DeliveryError, match="gave up after 2 attempts"):
        HttpAdapter(url, retries=1, timeout=2, sleep=sleeps.append).send(
            _message("web", {"text": "x"})
        )
    assert sleeps == [0.5]


def test_two_messages_get_two_idempotency_keys(sleeps: list[float]) -> None:
    with _Server([200, 200]) as server:
        adapter = HttpAdapter(server.url, sleep=sleeps.append)
        adapter.send(_message("web", {"text": "same"}))
        adapter.send(_message("web", {"text": "same"}))
    assert len({headers["Idempotency-Key"] for headers, _ in server.requests}) == 2


def test_the_engines_later_retries_of_a_message_repeat_its_idempotency_key(
    sleeps: list[float],
) -> None:
    from datetime import UTC, datetime, timedelta

    from flowlang.events import InboundEvent
    from tests.runtime.helpers import engine_of, program

    with _Server([503, 200]) as server:
        adapter = HttpAdapter(server.url, retries=0, sleep=sleeps.append)
        engine = engine_of(program('reply "Hello"'), adapters=[adapter])
        now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        first = engine.handle(
            InboundEvent(event_id="m1", channel="web", sender_id="v1", text="hi", timestamp=now)
        )
        assert [f.attempts for f in first.failed_sends] == [1]  # 503: the engine retries later
        assert engine.deliver_pending(now + timedelta(minutes=5)) == []
    keys = [headers["Idempotency-Key"] for headers, _ in server.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_http_retry_after_as_an_http_date_is_waited_until(sleeps: list[float]) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC).timestamp()
    date = "Mon, 02 Mar 2026 09:00:07 GMT"  # seven seconds from "now"
    with _Server([503, 200], headers={"Retry-After": date}) as server:
        HttpAdapter(server.url, sleep=sleeps.append, clock=lambda: now).send(
            _message("web", {"text": "Hi"})
        )
    assert len(server.requests) == 2 and sleeps == [7.0]


def test_retry_after_in_the_past_or_unreadable() -> None:
    from flowlang.channels.outbound.adapters import retry_after_seconds

    assert retry_after_seconds("Mon, 02 Mar 2026 09:00:00 GMT", now=2e9) == 0.0
    assert retry_after_seconds("soon", now=0) is None
    assert retry_after_seconds("120", now=0) == 120.0
