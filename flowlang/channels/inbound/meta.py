"""Meta webhooks: WhatsApp Cloud API, Messenger and Instagram messaging, Facebook page feed.

Formats: developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components,
/docs/messenger-platform/webhooks, /docs/messenger-platform/instagram/features/webhook and
/docs/graph-api/webhooks/reference/page/#feed.

A WhatsApp customer is keyed on their business-scoped user id (BSUID, `from_user_id`) when the
webhook carries one, with their phone number (`from`, the wa_id) beside it when it is given, so
the store links the two; a customer who hides their number behind a username has only the BSUID.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flowlang.channels.inbound.fields import Ignored, Node, unstorable
from flowlang.events import Attachment, EventKind, InboundEvent

_MEDIA = {"image": "image", "video": "video", "audio": "audio", "document": "file", "file": "file"}


def whatsapp(root: Node, received_at: datetime) -> list[InboundEvent | Ignored]:
    """`object: whatsapp_business_account`: messages from customers and status receipts."""
    _expect_object(root, "whatsapp_business_account")
    events: list[InboundEvent | Ignored] = []
    for entry in root.items("entry", required=True):
        for change in entry.items("changes", required=True):
            value = change.need("value")
            metadata = value.get("metadata")
            account = _e164(metadata.text("display_phone_number")) if metadata else ""
            contacts = _contacts(value)
            for message in value.items("messages"):
                events.append(_whatsapp_message(message, account, contacts))
            for status in value.items("statuses"):
                recipient = status.optional_text("recipient_user_id")
                errors = [_status_error(e) for e in status.items("errors")]
                events.append(
                    InboundEvent(
                        event_id=f"{status.text('id')}:{status.text('status')}",
                        channel="whatsapp",
                        kind=EventKind.RECEIPT,
                        account=account,
                        sender_id=recipient or status.text("recipient_id", ""),
                        text=status.text("status"),
                        refers_to=status.text("id"),
                        data={"errors": errors} if errors else None,
                        timestamp=status.epoch("timestamp"),
                        raw=status.value,
                    )
                )
    return events


def _status_error(error: Node) -> dict[str, str]:
    """A failed status's error: its code and what it means (the details, else the title)."""
    data = error.get("error_data")
    details = data.optional_text("details") if data is not None else None
    said = details or error.optional_text("message") or error.optional_text("title") or ""
    return {"code": error.text("code"), "reason": said}


def _contacts(value: Node) -> dict[str, tuple[str | None, str]]:
    """Each contact's wa_id and BSUID (either may be missing) -> (BSUID, profile name)."""
    known: dict[str, tuple[str | None, str]] = {}
    for contact in value.items("contacts"):
        profile = contact.get("profile")
        name = profile.text("name", "") if profile is not None else ""
        bsuid = contact.optional_text("user_id")
        for key in (contact.optional_text("wa_id"), bsuid):
            if key is not None:
                known[key] = (bsuid, name)
    return known


def _whatsapp_message(
    message: Node, account: str, contacts: dict[str, tuple[str | None, str]]
) -> InboundEvent | Ignored:
    if message.optional_text("type") == "system":
        return _whatsapp_system(message, account)
    phone = message.optional_text("from")
    bsuid = message.optional_text("from_user_id")
    if phone is None and bsuid is None:
        raise message.fail("missing (and no `from_user_id` either: who sent it?)", "from")
    contact_bsuid, name = contacts.get(bsuid or phone or "", (None, ""))
    sender = bsuid or contact_bsuid or phone
    assert sender is not None
    kind = message.text("type")
    text, postback, attachments = "", None, []
    data: dict[str, Any] | None = None
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
    elif kind == "interactive" and message.need("interactive").has("nfm_reply"):
        text, data = _flow_response(message.need("interactive").need("nfm_reply"))
        token = data.get("flow_token")
        postback = str(token) if token is not None else text
    elif kind == "interactive":
        interactive = message.need("interactive")
        reply = interactive.get("button_reply") or interactive.need("list_reply")
        text, postback = reply.text("title"), reply.text("id")
    elif kind == "button":  # a quick-reply button of a template message
        button = message.need("button")
        text, postback = button.text("text"), button.text("payload", button.text("text"))
    elif kind == "reaction":
        text = message.need("reaction").text("emoji", "")
    else:  # contacts, order, unsupported: kept whole in `raw` for the agent
        text = f"[{kind}]"
    return InboundEvent(
        event_id=message.text("id"),
        channel="whatsapp",
        kind=EventKind.POSTBACK if postback is not None else EventKind.MESSAGE,
        account=account,
        sender_id=sender,
        sender_phone=_e164(phone) if phone is not None else None,
        sender_name=name or None,
        text=text,
        attachments=tuple(attachments),
        postback=postback,
        data=data,
        timestamp=message.epoch("timestamp"),
        raw=message.value,
    )


_IDENTITY_CHANGES = ("user_changed_number", "user_changed_user_id")


def _whatsapp_system(message: Node, account: str) -> InboundEvent | Ignored:
    """WhatsApp's own notice that a customer's number or BSUID changed: signed by WhatsApp, so
    the new identity is linked to the customer (`data`: `new_phone`, `new_user_id`); a system
    message of any other type is ignored with its reason."""
    system = message.need("system")
    kind = system.text("type", "")
    if kind not in _IDENTITY_CHANGES:
        return Ignored(f"a WhatsApp system message of type {kind or 'none'} changes no identity")
    phone = message.optional_text("from")
    old = system.optional_text("previous_user_id") or message.optional_text("from_user_id") or phone
    if old is None:
        raise message.fail("missing (and no `from_user_id`: whose identity changed?)", "from")
    new_phone = system.optional_text("wa_id") if kind == "user_changed_number" else None
    new_user_id = system.optional_text("user_id")
    if new_phone is None and new_user_id is None:
        raise system.fail("missing (a system message without the new identity)", "wa_id")
    data: dict[str, Any] = {"system": kind}
    if new_phone is not None:
        data["new_phone"] = _e164(new_phone)
    if new_user_id is not None:
        data["new_user_id"] = new_user_id
    return InboundEvent(
        event_id=message.text("id"),
        channel="whatsapp",
        kind=EventKind.SYSTEM,
        account=account,
        sender_id=old,
        sender_phone=_e164(phone) if phone is not None else None,
        text=system.text("body", ""),
        data=data,
        timestamp=message.epoch("timestamp"),
        raw=message.value,
    )


def _flow_response(reply: Node) -> tuple[str, dict[str, Any]]:
    """A WhatsApp Flows form sent back: its `response_json` (a JSON text) as data."""
    answers = reply.need("response_json")
    try:
        data = json.loads(answers.value) if isinstance(answers.value, str) else answers.value
    except ValueError:
        raise answers.fail("expected the form's answers as JSON text") from None
    if not isinstance(data, dict):
        raise answers.fail("expected the form's answers as a JSON object")
    problem = unstorable(answers.channel, data)
    if problem is not None:
        raise answers.fail(f"{problem.field}: {problem.problem}")
    return reply.text("body", "Sent"), data


def page(root: Node, received_at: datetime) -> list[InboundEvent | Ignored]:
    """`object: page` (Messenger, page feed) or `object: instagram` (Instagram messaging)."""
    obj = _expect_object(root, "page", "instagram")
    channel = "instagram" if obj == "instagram" else "messenger"
    events: list[InboundEvent | Ignored] = []
    for entry in root.items("entry", required=True):
        page_id = entry.text("id")
        for item in entry.items("messaging"):
            events.append(_messaging(item, channel, page_id))
        for change in entry.items("changes"):
            field = change.text("field", "")
            if obj == "page" and field == "feed":
                events.append(_feed(change.need("value"), page_id))
            else:
                events.append(Ignored(f"a change of `{field}` is not a customer message"))
    return events


def _messaging(item: Node, channel: str, page_id: str) -> InboundEvent | Ignored:
    sender = item.need("sender").text("id")
    at = item.epoch("timestamp", unit=1000)
    common = {"channel": channel, "account": page_id, "sender_id": sender, "timestamp": at}
    message = item.get("message")
    if message is not None:
        if message.flag("is_echo"):
            return Ignored("the page's own message, echoed back")
        if message.flag("is_deleted"):  # Instagram: the customer unsent it
            return InboundEvent(
                event_id=f"{message.text('mid')}:unsend",
                kind=EventKind.UNSEND,
                refers_to=message.text("mid"),
                raw=item.value,
                **common,
            )
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
            refers_to=edit.text("mid"),
            raw=item.value,
            **common,
        )
    for receipt in ("delivery", "read"):
        node = item.get(receipt)
        if node is not None:
            # Every message to the customer sent before the watermark is delivered (read);
            # a delivery may name its messages' mids too.
            watermark = node.epoch("watermark", unit=1000)
            mids = [_mid(m) for m in node.items("mids")]
            data: dict[str, Any] = {"watermark": watermark.isoformat()}
            if mids:
                data["mids"] = mids
            return InboundEvent(
                event_id=f"{receipt}:{sender}:{node.text('watermark')}",
                kind=EventKind.RECEIPT,
                text="delivered" if receipt == "delivery" else "read",
                data=data,
                raw=item.value,
                **common,
            )
    what = next((k for k in _NOT_MESSAGES if item.has(k)), "this")
    return Ignored(f"a Messenger `{what}` event is not a customer message")


def _mid(node: Node) -> str:
    """One message id of a delivery's `mids`."""
    if not isinstance(node.value, str) or not node.value:
        raise node.fail("expected a message id (text)")
    return node.value


_NOT_MESSAGES = (
    "reaction",
    "referral",
    "optin",
    "account_linking",
    "standby",
    "pass_thread_control",
)


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


def _feed(value: Node, page_id: str) -> InboundEvent | Ignored:
    item = value.text("item")
    if item not in ("post", "status", "photo", "video", "comment"):
        return Ignored(f"a page feed `{item}` (a reaction, like or share) is not a message")
    verb = value.text("verb")
    author = value.get("from")
    if author is not None and author.text("id") == page_id:
        return Ignored("the page's own post or reply")
    if author is None and verb != "remove":  # a removal may come without its author
        raise value.fail("missing (whose post is it?)", "from")
    is_comment = item == "comment"
    kind = {
        "add": EventKind.COMMENT if is_comment else EventKind.POST,
        "edited": EventKind.EDIT,
        "edit": EventKind.EDIT,  # Facebook sometimes says "edit"
        "remove": EventKind.DELETE,
        "hide": EventKind.DELETE,
    }
    if verb not in kind:
        return Ignored(f"a page feed `{verb}` is not a change to a customer's post")
    event_kind = kind[verb]
    own_id = value.text("comment_id") if is_comment else value.text("post_id")
    created = value.need("created_time")
    at = (
        value.epoch("created_time")
        if isinstance(created.value, int | float) or str(created.value).isdigit()
        else value.iso_time("created_time")
    )
    return InboundEvent(
        # A post or comment is added once: its own id; edits and removals are later events of it.
        event_id=own_id if verb == "add" else f"{own_id}:{verb}:{int(at.timestamp())}",
        channel="facebook_page",
        kind=event_kind,
        account=page_id,
        sender_id=author.text("id") if author is not None else "",
        sender_name=author.optional_text("name") if author is not None else None,
        text=value.text("message", ""),
        post_id=value.text("post_id"),
        parent_id=value.optional_text("parent_id") if is_comment else None,
        refers_to=own_id if event_kind in (EventKind.EDIT, EventKind.DELETE) else None,
        comment_id=own_id if is_comment else None,
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
