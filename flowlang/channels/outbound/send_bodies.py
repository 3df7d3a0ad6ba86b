"""Each channel's own send-API request for an outbound message, so a host wires real APIs
without translating: `send_request(message)` -> SendRequest(method, path, body).

Formats: WhatsApp Cloud API messages, Messenger / Instagram Send API, LINE reply and push,
X DMs and posts (API v2), Facebook comment replies,
Twilio Messages. `{placeholders}` in the path are the host's (its phone number id, ...).
Labels go whole: the policy blocks a message whose labels the channel would not show whole
(`labels:` in the channel registry); how many buttons a form takes is the registry's too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flowlang.channels.content_text import sent_text
from flowlang.channels.registry import builtin_registry
from flowlang.errors import FlowError
from flowlang.runtime.ports import OutboundMessage

MEDIA = ("image", "video", "audio", "file", "sticker")
_BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")
"""WhatsApp's business-scoped user id: a country code, a dot, up to 128 letters and digits."""


@dataclass(frozen=True)
class SendRequest:
    """One HTTP request to the channel's API."""

    channel: str
    method: str
    path: str
    body: dict[str, Any]
    endpoint: str = ""
    """The path's template (`/{id}/comments`); empty when the path holds no message data.
    Each `{...}` is exactly one path segment; a sender checks the final URL against it."""


class AddressError(FlowError, ValueError):
    """A vendor id from the message cannot be a path segment (empty, `.` or `..`)."""

    permanent = True  # an adapter that meets it keeps the message as a dead letter, unsent


def segment(value: str, what: str) -> str:
    """`value` as one percent-encoded path segment: a sender or comment id can never move the
    request to another endpoint (`../../tweets` stays inside its segment)."""
    if value in ("", ".", ".."):
        raise AddressError(f"{what} {value!r} is not a vendor id")
    return quote(value, safe="")


def endpoint_pattern(endpoint: str) -> re.Pattern[str]:
    """The paths `endpoint` allows: each `{...}` one non-empty segment without `/`."""
    parts = re.split(r"\{[A-Za-z_]+\}", endpoint)
    return re.compile("[^/?#]+".join(re.escape(part) for part in parts))


def send_request(message: OutboundMessage, *, reply_token: str | None = None) -> SendRequest:
    """The request that sends `message` on its channel (LINE: a reply with the token the
    policy put in `content["reply_token"]`, or the one given here; a push without)."""
    render = RENDERERS.get(message.channel, _generic)
    if message.channel == "line":
        return _line(message, reply_token or message.content.get("reply_token"))
    return render(message)


def _options(content: dict[str, Any]) -> list[str]:
    return [str(o) for o in content.get("options") or []]


def _max_buttons(channel: str) -> int:
    """The most buttons the channel's button form takes (more go as a list or quick replies)."""
    return builtin_registry()[channel].max_buttons


# ---------------------------------------------------------------- WhatsApp Cloud API
def _whatsapp(message: OutboundMessage) -> SendRequest:
    content = message.content
    kind = str(content.get("kind", "text"))
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if _BSUID.fullmatch(message.recipient):  # a customer known by their business-scoped id
        body["recipient"] = message.recipient
    else:
        body["to"] = message.recipient.lstrip("+")
    if kind == "template":
        parameters = [
            {"type": "text", "text": str(v)} for v in (content.get("parameters") or {}).values()
        ]
        template: dict[str, Any] = {
            "name": content.get("whatsapp_name") or content.get("name"),
            "language": {"code": content.get("language") or "en"},
        }
        if parameters:
            template["components"] = [{"type": "body", "parameters": parameters}]
        body |= {"type": "template", "template": template}
    elif kind in MEDIA:
        media_type = "document" if kind == "file" else kind
        media: dict[str, Any] = {"link": content.get("url")}
        if content.get("caption") and kind != "sticker":
            media["caption"] = content["caption"]
        body |= {"type": media_type, media_type: media}
    elif kind == "location":
        place = {"latitude": content.get("latitude"), "longitude": content.get("longitude")}
        body |= {"type": "location", "location": place}
    elif (
        kind in ("buttons", "quick_replies")
        and content.get("form") != "list"
        and 0 < len(_options(content)) <= _max_buttons("whatsapp")
    ):
        buttons = [
            {"type": "reply", "reply": {"id": _whatsapp_id(option), "title": option}}
            for option in _options(content)
        ]
        body |= {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": sent_text(content)},
                "action": {"buttons": buttons},
            },
        }
    elif kind in ("buttons", "quick_replies") and _options(content):
        body |= {"type": "interactive", "interactive": _whatsapp_list(content)}
    else:
        text = sent_text(content)
        body |= {"type": "text", "text": {"body": text, "preview_url": "http" in text}}
    return SendRequest("whatsapp", "POST", "/{phone_number_id}/messages", body)


def _whatsapp_list(content: dict[str, Any]) -> dict[str, Any]:
    """An interactive list: the options as the rows of one section (titled by `list_title`
    when given), under the button `list_button` (the policy's; else the registry's)."""
    form = builtin_registry()["whatsapp"].option_list
    button = str(content.get("list_button") or (form.button_text if form else ""))
    section: dict[str, Any] = {}
    if content.get("list_title"):
        section["title"] = str(content["list_title"])
    section["rows"] = [
        {"id": _whatsapp_id(option), "title": option} for option in _options(content)
    ]
    return {
        "type": "list",
        "body": {"text": sent_text(content)},
        "action": {"button": button, "sections": [section]},
    }


def _whatsapp_id(option: str) -> str:
    """A button's or list row's id: the option's label, which the customer's choice comes back
    as, without the surrounding spaces the Cloud API refuses in an id (they cannot be seen, and
    the policy counts two options that differ only by them as the same). A blank label has
    no id: BlankOptionError (the policy blocks such a reply before it comes here)."""
    ident = option.strip()
    if not ident:
        raise BlankOptionError(
            f"whatsapp: option {option!r} is blank, so its button or list row would have an "
            "empty id, which the Cloud API refuses; give it a label"
        )
    return ident


class BlankOptionError(FlowError, ValueError):
    """A WhatsApp button or list row whose label, and so whose id, is blank."""

    permanent = True  # an adapter that meets it keeps the message as a dead letter, unsent


# ---------------------------------------------------------------- Messenger, Instagram
def _messenger(message: OutboundMessage) -> SendRequest:
    content = message.content
    kind = str(content.get("kind", "text"))
    out: dict[str, Any]
    if kind == "sticker" and content.get("sticker_id") == "like_heart":
        out = {"attachment": {"type": "like_heart"}}
    elif kind == "sticker" and content.get("sticker_id"):
        out = {"attachment": {"type": "sticker", "payload": {"sticker_id": content["sticker_id"]}}}
    elif kind in MEDIA and kind != "sticker":
        out = {
            "attachment": {
                "type": kind,
                "payload": {"url": content.get("url"), "is_reusable": True},
            }
        }
    elif content.get("elements"):  # a card or carousel, shaped by the policy
        out = {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "generic", "elements": content["elements"]},
            }
        }
    elif kind == "buttons" and 0 < len(_options(content)) <= _max_buttons(message.channel):
        buttons = [{"type": "postback", "title": o, "payload": o} for o in _options(content)]
        out = {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": sent_text(content),
                    "buttons": buttons,
                },
            }
        }
    else:
        out = {"text": sent_text(content)}
        if _options(content):
            out["quick_replies"] = [
                {"content_type": "text", "title": o, "payload": o} for o in _options(content)
            ]
    body: dict[str, Any] = {"recipient": {"id": message.recipient}, "message": out}
    path = "/me/messages"
    if message.private_reply_to:  # Private Replies: to the comment or post, by the page
        body["recipient"] = dict(message.private_reply_to)
        path = "/{ig_user_id}/messages" if message.channel == "instagram" else "/{page_id}/messages"
    if content.get("tag"):
        body |= {"messaging_type": "MESSAGE_TAG", "tag": content["tag"]}
    else:
        body["messaging_type"] = "RESPONSE"
    return SendRequest(message.channel, "POST", path, body)


# ---------------------------------------------------------------- LINE
def _line_action(action: dict[str, Any]) -> dict[str, Any]:
    if action.get("uri"):
        return {"type": "uri", "label": action["label"], "uri": action["uri"]}
    return {"type": "message", "label": action["label"], "text": action["text"]}


def _line_column(column: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if column.get("image"):
        out["thumbnailImageUrl"] = column["image"]
    if column.get("title"):
        out["title"] = column["title"]
    return out | {"text": column["text"], "actions": [_line_action(a) for a in column["actions"]]}


def _line(message: OutboundMessage, reply_token: str | None) -> SendRequest:
    content = message.content
    kind = str(content.get("kind", "text"))
    item: dict[str, Any]
    if kind in ("image", "video"):
        url = content.get("url")
        item = {
            "type": kind,
            "originalContentUrl": url,
            "previewImageUrl": content.get("preview") or url,
        }
    elif kind == "sticker" and "/" in str(content.get("sticker_id") or ""):
        package, sticker = str(content["sticker_id"]).split("/", 1)
        item = {"type": "sticker", "packageId": package, "stickerId": sticker}
    elif kind == "buttons" and content.get("actions"):  # shaped by the policy
        buttons: dict[str, Any] = {"type": "buttons", "text": content.get("text")}
        if content.get("title"):
            buttons["title"] = content["title"]
        if content.get("image"):
            buttons["thumbnailImageUrl"] = content["image"]
        buttons["actions"] = [_line_action(a) for a in content["actions"]]
        item = {"type": "template", "altText": content.get("alt_text"), "template": buttons}
    elif kind == "carousel" and content.get("columns"):  # shaped by the policy
        columns = [_line_column(column) for column in content["columns"]]
        item = {
            "type": "template",
            "altText": content.get("alt_text"),
            "template": {"type": "carousel", "columns": columns},
        }
    elif kind == "location":
        item = {
            "type": "location",
            "title": content.get("caption") or "Location",
            "address": content.get("caption") or "",
            "latitude": content.get("latitude"),
            "longitude": content.get("longitude"),
        }
    else:
        item = {"type": "text", "text": sent_text(content) or str(content.get("url") or "")}
        if _options(content):
            item["quickReply"] = {
                "items": [
                    {"type": "action", "action": {"type": "message", "label": o, "text": o}}
                    for o in _options(content)
                ]
            }
    if reply_token:
        return SendRequest(
            "line", "POST", "/v2/bot/message/reply", {"replyToken": reply_token, "messages": [item]}
        )
    return SendRequest(
        "line", "POST", "/v2/bot/message/push", {"to": message.recipient, "messages": [item]}
    )


# ---------------------------------------------------------------- X
def _x_dm(message: OutboundMessage) -> SendRequest:
    """X API v2: a one-to-one DM. It has no quick replies: the options are listed in the text."""
    content = message.content
    text = sent_text(content) or str(content.get("url") or "")
    options = _options(content)
    if options:
        text = "\n".join([text, *(f"- {o}" for o in options)]) if text else "\n".join(options)
    path = f"/2/dm_conversations/with/{segment(message.recipient, 'x_dm recipient')}/messages"
    endpoint = "/2/dm_conversations/with/{participant_id}/messages"
    return SendRequest("x_dm", "POST", path, {"text": text}, endpoint)


def _x_public(message: OutboundMessage) -> SendRequest:
    _never_public(message)
    body: dict[str, Any] = {"text": sent_text(message.content)}
    if message.in_reply_to:
        body["reply"] = {"in_reply_to_tweet_id": message.in_reply_to}
    return SendRequest("x_public", "POST", "/2/tweets", body)


# ---------------------------------------------------------------- Facebook page, SMS, web
def _facebook_page(message: OutboundMessage) -> SendRequest:
    _never_public(message)
    target = segment(message.in_reply_to, "in_reply_to") if message.in_reply_to else "{post_id}"
    return SendRequest(
        "facebook_page",
        "POST",
        f"/{target}/comments",
        {"message": sent_text(message.content)},
        "/{comment_id}/comments",
    )


class PrivateReplyError(FlowError, ValueError):
    """A reply marked private reached a public channel's public endpoint. The channel policy
    readdresses private replies to a private channel; this refuses any that was not."""

    permanent = True  # an adapter that meets it keeps the message as a dead letter, unsent


def _never_public(message: OutboundMessage) -> None:
    if message.visibility == "privately" or message.private_reply_to:
        raise PrivateReplyError(
            f"a reply marked private is never posted publicly on {message.channel}: "
            "only the channel policy's private route may send it"
        )


def _sms(message: OutboundMessage) -> SendRequest:
    content = message.content
    body: dict[str, Any] = {
        "To": message.recipient,
        "From": message.account,
        "Body": sent_text(content),
    }
    if content.get("kind") in MEDIA and content.get("url"):
        body["MediaUrl"] = [content["url"]]
    return SendRequest("sms", "POST", "/2010-04-01/Accounts/{AccountSid}/Messages.json", body)


def _generic(message: OutboundMessage) -> SendRequest:
    body = {
        "type": "message",
        "conversation": message.conversation_id,
        "to": message.recipient,
        "from": message.sender,
        "content": message.content,
    }
    return SendRequest(message.channel, "POST", "/messages", body)


RENDERERS: dict[str, Callable[[OutboundMessage], SendRequest]] = {
    "whatsapp": _whatsapp,
    "messenger": _messenger,
    "instagram": _messenger,
    "x_dm": _x_dm,
    "x_public": _x_public,
    "facebook_page": _facebook_page,
    "sms": _sms,
    "web": _generic,
}
