"""Meta webhooks: WhatsApp Cloud API, Messenger and Instagram messaging, Facebook page feed.

Formats: developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components,
/docs/messenger-platform/webhooks, /docs/messenger-platform/instagram/features/webhook and
/docs/graph-api/webhooks/reference/page/#feed.
"""

from __future__ import annotations

from datetime import datetime

from flowlang.channels.inbound.fields import Node
from flowlang.events import Attachment, EventKind, InboundEvent

_MEDIA = {"image": "image", "video": "video", "audio": "audio", "document": "file", "file": "file"}


def whatsapp(root: Node, received_at: datetime) -> list[InboundEvent]:
    """`object: whatsapp_business_account`: messages from customers and status receipts."""
    _expect_object(root, "whatsapp_business_account")
    events: list[InboundEvent] = []
    for entry in root.items("entry", required=True):
        for change in entry.items("changes", required=True):
            value = change.need("value")
            metadata = value.get("metadata")
            account = _e164(metadata.text("display_phone_number")) if metadata else ""
            names = {
                c.text("wa_id"): c.get("profile").text("name", "")  # type: ignore[union-attr]
                for c in value.items("contacts")
                if c.has("profile")
            }
            for message in value.items("messages"):
                events.append(_whatsapp_message(message, account, names))
            for status in value.items("statuses"):
                events.append(
                    InboundEvent(
                        event_id=f"{status.text('id')}:{status.text('status')}",
                        channel="whatsapp",
                        kind=EventKind.RECEIPT,
                        account=account,
                        sender_id=status.text("recipient_id", ""),
                        text=status.text("status"),
                        timestamp=status.epoch("timestamp"),
                        raw=status.value,
                    )
                )
    return events


def _whatsapp_message(message: Node, account: str, names: dict[str, str]) -> InboundEvent:
    sender = message.text("from")
    kind = message.text("type")
    text, postback, attachments = "", None, []
    if kind == "text":
        text = message.need("text").text("body")
    elif kind in _MEDIA or kind == "sticker":
        media = message.need(kind)
        attachments.append(
            Attachment(
                type=_MEDIA.get(kind, "sticker"),
                url=f"whatsapp-media:{media.text('id')}",
                mime=media.optional_text("mime_type"),
                caption=media.optional_text("caption") or media.optional_text("filename"),
                sticker_id=media.text("id") if kind == "sticker" else None,
            )
        )
        text = media.text("caption", "")
    elif kind == "location":
        place = message.need("location")
        attachments.append(
            Attachment(
                type="location",
                latitude=place.number("latitude"),
                longitude=place.number("longitude"),
                caption=place.optional_text("name") or place.optional_text("address"),
            )
        )
    elif kind == "interactive":
        interactive = message.need("interactive")
        reply = interactive.get("button_reply") or interactive.need("list_reply")
        text, postback = reply.text("title"), reply.text("id")
    elif kind == "button":  # a quick-reply button of a template message
        button = message.need("button")
        text, postback = button.text("text"), button.text("payload", button.text("text"))
    elif kind == "reaction":
        text = message.need("reaction").text("emoji", "")
    else:  # contacts, order, system, unsupported: kept whole in `raw` for the agent
        text = f"[{kind}]"
    return InboundEvent(
        event_id=message.text("id"),
        channel="whatsapp",
        kind=EventKind.POSTBACK if postback is not None else EventKind.MESSAGE,
        account=account,
        sender_id=sender,
        sender_phone=_e164(sender),
        sender_name=names.get(sender) or None,
        text=text,
        attachments=tuple(attachments),
        postback=postback,
        timestamp=message.epoch("timestamp"),
        raw=message.value,
    )


def page(root: Node, received_at: datetime) -> list[InboundEvent]:
    """`object: page` (Messenger, page feed) or `object: instagram` (Instagram messaging)."""
    obj = _expect_object(root, "page", "instagram")
    channel = "instagram" if obj == "instagram" else "messenger"
    events: list[InboundEvent] = []
    for entry in root.items("entry", required=True):
        page_id = entry.text("id")
        for item in entry.items("messaging"):
            event = _messaging(item, channel, page_id)
            if event is not None:
                events.append(event)
        for change in entry.items("changes"):
            if obj == "page" and change.text("field", "") == "feed":
                event = _feed(change.need("value"), page_id)
                if event is not None:
                    events.append(event)
    return events


def _messaging(item: Node, channel: str, page_id: str) -> InboundEvent | None:
    sender = item.need("sender").text("id")
    at = item.epoch("timestamp", unit=1000)
    common = {"channel": channel, "account": page_id, "sender_id": sender, "timestamp": at}
    message = item.get("message")
    if message is not None:
        if message.has("is_echo") and message.value["is_echo"] is True:
            return None  # the page's own message, echoed back
        attachments = tuple(_messenger_attachment(a) for a in message.items("attachments"))
        quick = message.get("quick_reply")
        return InboundEvent(
            event_id=message.text("mid"),
            kind=EventKind.POSTBACK if quick is not None else EventKind.MESSAGE,
            text=message.text("text", ""),
            attachments=attachments,
            postback=quick.text("payload") if quick is not None else None,
            raw=item.value,
            **common,
        )
    postback = item.get("postback")
    if postback is not None:
        payload = postback.text("payload")
        return InboundEvent(
            event_id=postback.text("mid", f"postback:{sender}:{int(at.timestamp() * 1000)}"),
            kind=EventKind.POSTBACK,
            text=postback.text("title", payload),
            postback=payload,
            raw=item.value,
            **common,
        )
    edit = item.get("message_edit")
    if edit is not None:
        return InboundEvent(
            event_id=f"{edit.text('mid')}:edit:{edit.text('num_edit', '1')}",
            kind=EventKind.EDIT,
            text=edit.text("text", ""),
            post_id=edit.text("mid"),
            raw=item.value,
            **common,
        )
    for receipt in ("delivery", "read"):
        node = item.get(receipt)
        if node is not None:
            return InboundEvent(
                event_id=f"{receipt}:{sender}:{node.text('watermark')}",
                kind=EventKind.RECEIPT,
                text=receipt,
                raw=item.value,
                **common,
            )
    return None  # reactions, referrals, optins: not customer messages


def _messenger_attachment(node: Node) -> Attachment:
    kind = node.text("type")
    payload = node.get("payload")
    if kind == "location" and payload is not None and payload.has("coordinates"):
        point = payload.need("coordinates")
        return Attachment(
            type="location", latitude=point.number("lat"), longitude=point.number("long")
        )
    url = payload.optional_text("url") if payload is not None else None
    sticker = payload.optional_text("sticker_id") if payload is not None else None
    if sticker is not None:
        return Attachment(type="sticker", url=url, sticker_id=sticker)
    known = {"image", "video", "audio", "file"}
    return Attachment(type=kind if kind in known else "other", url=url)


def _feed(value: Node, page_id: str) -> InboundEvent | None:
    item = value.text("item")
    if item not in ("post", "status", "photo", "video", "comment"):
        return None  # reactions, likes, shares: not messages
    author = value.get("from")
    if author is None or author.text("id") == page_id:
        return None  # the page's own posts and replies
    verb = value.text("verb")
    is_comment = item == "comment"
    kind = {"add": EventKind.COMMENT if is_comment else EventKind.POST, "edited": EventKind.EDIT}
    if verb in ("remove", "hide"):
        event_kind = EventKind.DELETE
    elif verb in kind:
        event_kind = kind[verb]
    else:
        return None
    own_id = value.text("comment_id") if is_comment else value.text("post_id")
    created = value.need("created_time")
    at = (
        value.epoch("created_time")
        if isinstance(created.value, int | float) or str(created.value).isdigit()
        else value.iso_time("created_time")
    )
    return InboundEvent(
        event_id=f"{own_id}:{verb}:{int(at.timestamp())}",
        channel="facebook_page",
        kind=event_kind,
        account=page_id,
        sender_id=author.text("id"),
        sender_name=author.optional_text("name"),
        text=value.text("message", ""),
        post_id=value.text("post_id"),
        parent_id=value.optional_text("parent_id") if is_comment else None,
        timestamp=at,
        raw=value.value,
    )


def _expect_object(root: Node, *allowed: str) -> str:
    obj = root.text("object")
    if obj not in allowed:
        raise root.fail(f"expected {' or '.join(map(repr, allowed))}, got {obj!r}", "object")
    return obj


def _e164(number: str) -> str:
    digits = "".join(ch for ch in number if ch.isdigit())
    return f"+{digits}" if digits else ""
