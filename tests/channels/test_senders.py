"""Each channel's sender speaks its vendor's real send API: method, URL, authorisation and body,
checked against the fake vendor server; what the vendor answers decides retry or give up."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from flowlang.channels.outbound import DeliveryError
from flowlang.channels.outbound.send_bodies import PrivateReplyError
from flowlang.channels.registry import builtin_registry
from flowlang.channels.senders import Credentials, VendorSender
from flowlang.channels.senders.assembly import _phone_number_ids
from flowlang.project import load_project
from flowlang.runtime.ports import OutboundMessage
from tests.fake_vendor import FakeVendor, Reply
from tests.service.helpers import EXAMPLE_DEPLOYMENT, FLOW

TOKEN = "test-token-123"
NOW = 1_800_000_000.0


def _sender(
    vendor: FakeVendor, channel: str, *, user: str | None = None, timeout: float = 5.0
) -> VendorSender:
    return VendorSender(
        builtin_registry()[channel],
        Credentials(TOKEN, user),
        api_base=vendor.base_url,
        phone_number_ids={"+442079460000": "106540352242922"},
        client=httpx.Client(timeout=timeout),
        clock=lambda: NOW,
    )


def _message(channel: str, recipient: str, content: dict[str, Any], **more: Any) -> OutboundMessage:
    fields: dict[str, Any] = {"message_id": "m-1"} | more
    account = fields.pop("account", "acct")
    return OutboundMessage("conv-1", channel, account, recipient, "agent", content, **fields)


def _only(vendor: FakeVendor) -> Any:
    (request,) = vendor.requests
    return request


# ---------------------------------------------------------------- each vendor's request
def test_whatsapp_cloud_api_from_the_accounts_phone_number_id(fake_vendor: FakeVendor) -> None:
    message = _message("whatsapp", "447700900123", {"text": "Hello"}, account="+442079460000")
    _sender(fake_vendor, "whatsapp").send(message)
    request = _only(fake_vendor)
    assert (request.method, request.path) == ("POST", "/106540352242922/messages")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "conv-1-m-1"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "447700900123",
        "type": "text",
        "text": {"body": "Hello", "preview_url": False},
    }


def test_whatsapp_account_without_a_phone_number_id_is_refused_unsent(
    fake_vendor: FakeVendor,
) -> None:
    message = _message("whatsapp", "447700900123", {"text": "Hello"}, account="+449999999999")
    with pytest.raises(DeliveryError, match="no phone_number_id") as refused:
        _sender(fake_vendor, "whatsapp").send(message)
    assert refused.value.permanent and fake_vendor.requests == []


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
def test_send_api_with_the_human_agent_tag(fake_vendor: FakeVendor, channel: str) -> None:
    content = {"text": "Following up", "tag": "HUMAN_AGENT"}
    _sender(fake_vendor, channel).send(_message(channel, "psid-1", content))
    request = _only(fake_vendor)
    assert (request.method, request.path) == ("POST", "/me/messages")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "recipient": {"id": "psid-1"},
        "message": {"text": "Following up"},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
    }


def test_send_api_inside_the_window_is_a_response(fake_vendor: FakeVendor) -> None:
    _sender(fake_vendor, "messenger").send(_message("messenger", "psid-1", {"text": "Hi"}))
    assert _only(fake_vendor).json()["messaging_type"] == "RESPONSE"


def test_facebook_comment_reply_posts_under_the_comment(fake_vendor: FakeVendor) -> None:
    message = _message("facebook_page", "u1", {"text": "Thanks!"}, in_reply_to="987_11")
    _sender(fake_vendor, "facebook_page").send(message)
    request = _only(fake_vendor)
    assert (request.path, request.json()) == ("/987_11/comments", {"message": "Thanks!"})
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_a_private_reply_goes_by_the_send_api_to_the_comment(fake_vendor: FakeVendor) -> None:
    message = _message(
        "messenger",
        "u1",
        {"text": "Which account?"},
        account="104857362910",
        private_reply_to={"comment_id": "987_11"},
    )
    _sender(fake_vendor, "messenger").send(message)
    request = _only(fake_vendor)
    assert request.path == "/104857362910/messages"
    assert request.json()["recipient"] == {"comment_id": "987_11"}


@pytest.mark.parametrize(
    ("channel", "more"),
    [
        ("facebook_page", {"visibility": "privately", "in_reply_to": "987_11"}),
        ("facebook_page", {"private_reply_to": {"comment_id": "987_11"}, "in_reply_to": "987_11"}),
        ("x_public", {"visibility": "privately", "in_reply_to": "1877"}),
    ],
)
def test_a_private_reply_never_reaches_a_public_endpoint(
    fake_vendor: FakeVendor, channel: str, more: dict[str, Any]
) -> None:
    with pytest.raises(PrivateReplyError, match="never posted publicly"):
        _sender(fake_vendor, channel).send(_message(channel, "u1", {"text": "Private"}, **more))
    assert fake_vendor.requests == []


def test_line_replies_with_a_valid_token_else_pushes_with_a_retry_key(
    fake_vendor: FakeVendor,
) -> None:
    sender = _sender(fake_vendor, "line")
    sender.send(_message("line", "U1", {"text": "Hi", "reply_token": "rt-1"}))
    sender.send(_message("line", "U1", {"text": "Later"}, message_id="m-2"))
    reply, push = fake_vendor.requests
    assert reply.path == "/v2/bot/message/reply"
    assert reply.json() == {"replyToken": "rt-1", "messages": [{"type": "text", "text": "Hi"}]}
    assert "x-line-retry-key" not in reply.headers  # LINE refuses a retry key on a reply
    assert push.path == "/v2/bot/message/push"
    assert push.json() == {"to": "U1", "messages": [{"type": "text", "text": "Later"}]}
    assert push.headers["x-line-retry-key"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "conv-1-m-2"))
    assert push.headers["authorization"] == f"Bearer {TOKEN}"


def test_line_answers_409_to_a_push_it_had_accepted(fake_vendor: FakeVendor) -> None:
    fake_vendor.script(Reply.error(409, {"message": "The retry key is already accepted"}))
    _sender(fake_vendor, "line").send(_message("line", "U1", {"text": "Later"}))  # no error
    assert len(fake_vendor.requests) == 1


def test_twilio_messages_api_basic_auth_and_a_form_body(fake_vendor: FakeVendor) -> None:
    message = _message(
        "sms", "+447700900456", {"kind": "image", "url": "https://x/i.png", "caption": "Rates"}
    )
    _sender(fake_vendor, "sms", user="AC123").send(
        OutboundMessage(**{**vars(message), "account": "+447480000000"})
    )
    request = _only(fake_vendor)
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    expected = base64.b64encode(f"AC123:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "To": ["+447700900456"],
        "From": ["+447480000000"],
        "Body": ["Rates"],
        "MediaUrl": ["https://x/i.png"],
    }
    assert request.headers["i-twilio-idempotency-token"] == "conv-1-m-1"
    assert request.headers["idempotency-key"] == "conv-1-m-1"


def test_x_dm_and_reply_by_api_v2(fake_vendor: FakeVendor) -> None:
    _sender(fake_vendor, "x_dm").send(_message("x_dm", "4470011", {"text": "Hi Dana"}))
    reply = _message("x_public", "4470011", {"text": "We sent you a DM"}, in_reply_to="1877")
    _sender(fake_vendor, "x_public").send(reply)
    dm, post = fake_vendor.requests
    assert dm.path == "/2/dm_conversations/with/4470011/messages"
    assert dm.json() == {"text": "Hi Dana"}
    assert post.path == "/2/tweets"
    assert post.json() == {"text": "We sent you a DM", "reply": {"in_reply_to_tweet_id": "1877"}}
    assert {dm.headers["authorization"], post.headers["authorization"]} == {f"Bearer {TOKEN}"}


# ---------------------------------------------------------------- what the vendor answers
def _failure(vendor: FakeVendor, reply: Reply, channel: str = "whatsapp") -> DeliveryError:
    vendor.script(reply)
    message = _message(channel, "447700900123", {"text": "Hi"}, account="+442079460000")
    with pytest.raises(DeliveryError) as failed:
        _sender(vendor, channel, user="AC1", timeout=0.3).send(message)
    return failed.value


# The answer each vendor documents for a send it accepted, and its id of the message.
ACCEPTED = [
    (
        "whatsapp",
        {"in_reply_to": None},
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "447700900123", "wa_id": "447700900123"}],
            "messages": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NjRGRDhBMjI4RUI3RDZFQ0MA"}],
        },
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NjRGRDhBMjI4RUI3RDZFQ0MA",
    ),
    (
        "messenger",
        {},
        {"recipient_id": "psid-1", "message_id": "m_AG5Hz2Uq7tuwNEhX"},
        "m_AG5Hz2Uq7tuwNEhX",
    ),
    (
        "instagram",
        {},
        {"recipient_id": "igsid-1", "message_id": "aWdfZAG1faXRlbQ"},
        "aWdfZAG1faXRlbQ",
    ),
    ("facebook_page", {"in_reply_to": "987_11"}, {"id": "987_11_5544"}, "987_11_5544"),
    (
        "line",
        {},
        {"sentMessages": [{"id": "461230966842064897", "quoteToken": "q"}]},
        "461230966842064897",
    ),
    (
        "sms",
        {},
        {"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued"},
        "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    ),
    (
        "x_dm",
        {},
        {"data": {"dm_conversation_id": "1-2", "dm_event_id": "1582838223229075462"}},
        "1582838223229075462",
    ),
    (
        "x_public",
        {"in_reply_to": "1877"},
        {"data": {"id": "1445880548472328192", "text": "Hi"}},
        "1445880548472328192",
    ),
]


@pytest.mark.parametrize(
    ("channel", "more", "answer", "vendor_id"), ACCEPTED, ids=[a[0] for a in ACCEPTED]
)
def test_a_send_the_vendor_accepts_returns_the_vendors_id_of_the_message(
    fake_vendor: FakeVendor, channel: str, more: dict[str, Any], answer: Any, vendor_id: str
) -> None:
    fake_vendor.script(Reply(body=answer))
    message = _message(channel, "447700900123", {"text": "Hi"}, account="+442079460000", **more)
    assert _sender(fake_vendor, channel, user="AC1").send(message) == vendor_id


def test_an_answer_without_an_id_is_still_delivered(fake_vendor: FakeVendor) -> None:
    fake_vendor.script(Reply(body={"unexpected": True}), Reply(status=409, body={}))
    message = _message("whatsapp", "447700900123", {"text": "Hi"}, account="+442079460000")
    assert _sender(fake_vendor, "whatsapp").send(message) is None
    assert _sender(fake_vendor, "line").send(_message("line", "U1", {"text": "Later"})) is None


def test_a_permanent_vendor_code_is_given_up_with_its_reason(fake_vendor: FakeVendor) -> None:
    body = {"error": {"message": "Re-engagement message", "code": 131047, "type": "OAuthException"}}
    error = _failure(fake_vendor, Reply.error(400, body))
    assert error.permanent and error.status == 400
    assert "error 131047 (re-engagement message" in str(error)
    assert "Re-engagement message" in str(error)


def test_a_permanent_code_wins_over_a_retryable_status(fake_vendor: FakeVendor) -> None:
    body = {"error": {"message": "Message undeliverable", "code": 131026}}
    assert _failure(fake_vendor, Reply.error(500, body)).permanent


def test_twilio_unsubscribed_recipient_is_permanent(fake_vendor: FakeVendor) -> None:
    body = {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
    error = _failure(fake_vendor, Reply.error(400, body), "sms")
    assert error.permanent and "error 21610 (the recipient replied STOP" in str(error)


def test_a_rate_limit_code_is_retried_though_the_status_is_400(fake_vendor: FakeVendor) -> None:
    body = {"error": {"message": "(#130429) Rate limit hit", "code": 130429}}
    error = _failure(fake_vendor, Reply.error(400, body))
    assert not error.permanent and "error 130429" in str(error)


def test_other_4xx_are_permanent_and_5xx_retried(fake_vendor: FakeVendor) -> None:
    assert _failure(fake_vendor, Reply.error(401, {"error": {"message": "bad token"}})).permanent
    assert not _failure(fake_vendor, Reply.error(503, "down")).permanent


def test_retry_after_in_seconds_and_as_an_http_date(fake_vendor: FakeVendor) -> None:
    assert _failure(fake_vendor, Reply.retry_after(7)).retry_after == 7.0
    later = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    error = _failure(fake_vendor, Reply.retry_after(later, status=503))
    assert not error.permanent and error.retry_after == 90.0


def test_a_vendor_that_hangs_past_the_timeout_is_retried_later(fake_vendor: FakeVendor) -> None:
    error = _failure(fake_vendor, Reply.hang(10))
    assert not error.permanent and "no answer in time" in str(error)


def test_an_unreachable_vendor_is_retried_later() -> None:
    sender = VendorSender(
        builtin_registry()["messenger"],
        Credentials(TOKEN),
        api_base="http://127.0.0.1:9",  # the discard port: nothing listens
        client=httpx.Client(timeout=2),
    )
    with pytest.raises(DeliveryError, match="could not reach") as failed:
        sender.send(_message("messenger", "psid-1", {"text": "Hi"}))
    assert not failed.value.permanent


def test_the_token_is_never_shown() -> None:
    assert TOKEN not in repr(Credentials(TOKEN, "AC1"))


@pytest.mark.parametrize(
    "account",
    ["+442079460000", "442079460000", "GBank WhatsApp", "gbank whatsapp", "GBANK WHATSAPP"],
)
def test_whatsapp_finds_the_phone_number_id_by_any_name_of_the_account(
    fake_vendor: FakeVendor, account: str
) -> None:
    """The phone-number id of the deployment's account, whichever of its names (in any case, a
    number with or without `+`) the conversation carries: as the engine finds the account."""
    project = load_project(FLOW, EXAMPLE_DEPLOYMENT)[0]
    assert project is not None and project.deployment is not None
    numbers = _phone_number_ids("whatsapp", project.deployment.channels["whatsapp"], [])
    sender = VendorSender(
        builtin_registry()["whatsapp"],
        Credentials(TOKEN),
        api_base=fake_vendor.base_url,
        phone_number_ids=numbers,
        clock=lambda: NOW,
    )
    sender.send(_message("whatsapp", "447700900123", {"text": "Hello"}, account=account))
    assert _only(fake_vendor).path == "/106540352242922/messages"
