"""LINE Messaging API webhooks: messages, postbacks, unsends (follow and the rest are ignored).

Format: developers.line.biz/en/reference/messaging-api/#webhook-event-objects
`webhookEventId` is stable across redeliveries, so it is the event id. The reply token is kept:
a reply with it is free, a push message counts against the plan's quota.
"""

from __future__ import annotations

from datetime import datetime

from flowlang.channels.inbound.fields import Ignored, Node
from flowlang.events import Attachment, EventKind, InboundEvent

_MEDIA = {"image": "image", "video": "video", "audio": "audio", "file": "file"}
_IGNORED = {
    "follow": "the customer added the account as a friend: there is no message to answer",
    "unfollow": "the customer blocked the account: nothing can be sent to them",
    "join": "the account joined a group chat: there is no message to answer",
    "leave": "the account left a group chat: there is no message to answer",
}


def webhook(root: Node, received_at: datetime) -> list[InboundEvent | Ignored]:
    account = root.text("destination")
    events: list[InboundEvent | Ignored] = []
    for event in root.items("events", required=True):
        kind = event.text("type")
        if kind == "unsend":
            events.append(_unsend(event, account))
            continue
        if kind not in ("message", "postback"):
            events.append(
                Ignored(_IGNORED.get(kind, f"a {kind} event carries no customer message"))
            )
            continue
        source = event.need("source")
        sender = source.optional_text("userId")
        if sender is None:
            raise source.fail("missing (messages without a user id cannot be answered)", "userId")
        postback: str | None = None
        attachments: tuple[Attachment, ...] = ()
        if kind == "postback":
            postback = text = event.need("postback").text("data")
        else:
            message = event.need("message")
            text, attachments = _message(message)
        events.append(
            InboundEvent(
                event_id=event.text("webhookEventId"),
                channel="line",
                kind=EventKind.POSTBACK if kind == "postback" else EventKind.MESSAGE,
                account=account,
                sender_id=sender,
                text=text,
                attachments=attachments,
                postback=postback,
                reply_token=event.optional_text("replyToken"),
                timestamp=event.epoch("timestamp", unit=1000),
                raw=event.value,
            )
        )
    return events


def _unsend(event: Node, account: str) -> InboundEvent:
    """The customer unsent one of their messages: a record of it, the conversation goes on."""
    message_id = event.need("unsend").text("messageId")
    return InboundEvent(
        event_id=event.text("webhookEventId"),
        channel="line",
        kind=EventKind.UNSEND,
        account=account,
        sender_id=event.need("source").text("userId"),
        refers_to=message_id,
        timestamp=event.epoch("timestamp", unit=1000),
        raw=event.value,
    )


def _message(message: Node) -> tuple[str, tuple[Attachment, ...]]:
    kind = message.text("type")
    if kind == "text":
        return message.text("text"), ()
    if kind == "sticker":  # `text`: what the customer typed on a message sticker
        sticker = f"{message.text('packageId')}/{message.text('stickerId')}"
        return message.text("text", ""), (Attachment(type="sticker", sticker_id=sticker),)
    if kind == "location":
        point = Attachment(
            type="location",
            latitude=message.number("latitude"),
            longitude=message.number("longitude"),
            caption=message.optional_text("title") or message.optional_text("address"),
        )
        return "", (point,)
    provider = message.get("contentProvider")
    url = provider.optional_text("originalContentUrl") if provider is not None else None
    content = Attachment(
        type=_MEDIA.get(kind, "other"),
        url=url or f"line-content:{message.text('id')}",
        caption=message.optional_text("fileName"),
    )
    return "", (content,)
