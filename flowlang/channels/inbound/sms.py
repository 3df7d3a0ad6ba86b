"""SMS through Twilio's messaging webhook (form-encoded): incoming messages and status callbacks.

Format: twilio.com/docs/messaging/guides/webhook-request. Twilio sends no timestamp, so the time
the webhook was received is the message's time.
"""

from __future__ import annotations

from datetime import datetime

from flowlang.channels.inbound.fields import Node
from flowlang.events import Attachment, EventKind, InboundEvent


def twilio(root: Node, received_at: datetime) -> list[InboundEvent]:
    sid = root.text("MessageSid")
    status = root.optional_text("MessageStatus")
    if status is not None and not root.has("Body"):
        # A status callback: MessageStatus of the message MessageSid; ErrorCode when it failed
        # (twilio.com/docs/messaging/guides/track-outbound-message-status).
        code = root.optional_text("ErrorCode")
        error = {"code": code, "reason": root.text("ErrorMessage", "")} if code else None
        return [
            InboundEvent(
                event_id=f"{sid}:{status}",
                channel="sms",
                kind=EventKind.RECEIPT,
                account=root.text("From", ""),
                sender_id=root.text("To", ""),
                text=status,
                refers_to=sid,
                data={"errors": [error]} if error else None,
                timestamp=received_at,
                raw=root.value,
            )
        ]
    sender = root.text("From")
    media_count = root.count("NumMedia") if root.has("NumMedia") else 0
    attachments = tuple(
        Attachment(
            type=_media_type(root.optional_text(f"MediaContentType{i}") or ""),
            url=root.text(f"MediaUrl{i}"),
            mime=root.optional_text(f"MediaContentType{i}"),
        )
        for i in range(media_count)
    )
    return [
        InboundEvent(
            event_id=sid,
            channel="sms",
            account=root.text("To"),
            sender_id=sender,
            sender_phone=sender,
            text=root.text("Body", ""),
            attachments=attachments,
            timestamp=received_at,
            raw=root.value,
        )
    ]


def _media_type(mime: str) -> str:
    major = mime.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "file"
