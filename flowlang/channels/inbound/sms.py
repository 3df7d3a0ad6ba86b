"""SMS through Twilio's messaging webhook (form-encoded): incoming messages and status callbacks.

Format: twilio.com/docs/messaging/guides/webhook-request. Twilio sends no timestamp, so the time
the webhook was received is the message's time. Twilio's signature covers the URL and the form
fields (twilio.com/docs/usage/webhooks/webhooks-security), so `form_fields` is how a request is
read both for its signature and for its events: what is processed is what was signed.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl

from flowlang.channels.inbound.fields import Node, PayloadError
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


def form_fields(body: bytes | str, channel: str = "sms") -> dict[str, str]:
    """The form fields of a Twilio webhook body (`application/x-www-form-urlencoded`, UTF-8).

    Raises PayloadError for a body that is not such a form in exactly one reading: a JSON body
    (Twilio signs those otherwise, and its messaging webhooks are forms), bytes or
    percent-escapes that are not UTF-8, or a field given twice (Twilio's signature covers every
    value of a field, a dict keeps one)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(channel, "(body)", f"not UTF-8 (byte {exc.start})") from None
    if body.lstrip().startswith(("{", "[")):
        raise PayloadError(
            channel,
            "(body)",
            "a JSON body: Twilio's messaging webhook is a form "
            "(application/x-www-form-urlencoded), and its signature covers the form's fields",
        )
    try:
        pairs = parse_qsl(body, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            channel, "(body)", f"a percent-escape that is not UTF-8: {exc}"
        ) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise PayloadError(channel, name, "given twice; Twilio's fields are given once each")
        fields[name] = value
    return fields
