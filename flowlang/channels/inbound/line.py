"""LINE Messaging API webhooks: messages, postbacks (follow, unsend and the rest are skipped).

Format: developers.line.biz/en/reference/messaging-api/#webhook-event-objects
`webhookEventId` is stable across redeliveries, so it is the event id. The reply token is kept:
a reply with it is free, a push message counts against the plan's quota.
"""

from __future__ import annotations

from datetime import datetime

from flowlang.channels.inbound.fields import Node
from flowlang.events import Attachment, EventKind, InboundEvent

_MEDIA = {"image": "image", "video": "video", "audio": "audio", "file": "file"}


def webhook(root: Node, received_at: datetime) -> list[InboundEvent]:
    account = root.text("destination")
    events: list[InboundEvent] = []
    for event in root.items("events", required=True):
        kind = event.text("type")
        if kind not in ("message", "postback"):
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


def _message(message: Node) -> tuple[str, tuple[Attachment, ...]]:
    kind = message.text("type")
    if kind == "text":
        return message.text("text"), ()
    if kind == "sticker":
        sticker = f"{message.text('packageId')}/{message.text('stickerId')}"
        return "", (Attachment(type="sticker", sticker_id=sticker),)
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
