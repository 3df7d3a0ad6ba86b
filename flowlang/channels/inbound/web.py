"""flowlang's own web-messaging widget format (documented in docs/channels.md).

    {"type": "message", "id": "w-1", "widget": "widget-7f3a",
     "visitor": {"id": "web-visitor-81f2", "name": "Ana"},
     "text": "Hi", "timestamp": "2026-01-05T09:00:00Z",
     "attachments": [{"type": "image", "url": "https://..."}]}

`type` is message, postback (with `postback`), close (the visitor closed the chat window and
left) or read.
"""

from __future__ import annotations

from datetime import datetime

from flowlang.channels.inbound.fields import Node
from flowlang.events import Attachment, EventKind, InboundEvent

_TYPES = {
    "message": EventKind.MESSAGE,
    "postback": EventKind.POSTBACK,
    "close": EventKind.CLOSE,
    "read": EventKind.RECEIPT,
}
_ATTACHMENTS = {"image", "video", "audio", "file", "link", "location"}


def widget(root: Node, received_at: datetime) -> list[InboundEvent]:
    kind = root.text("type")
    if kind not in _TYPES:
        raise root.fail(f"expected one of {', '.join(_TYPES)}, got {kind!r}", "type")
    visitor = root.need("visitor")
    attachments = []
    for item in root.items("attachments"):
        attachment_type = item.text("type")
        if attachment_type not in _ATTACHMENTS:
            raise item.fail(f"expected one of {', '.join(sorted(_ATTACHMENTS))}", "type")
        attachments.append(Attachment(type=attachment_type, url=item.optional_text("url")))
    return [
        InboundEvent(
            event_id=root.text("id"),
            channel="web",
            kind=_TYPES[kind],
            account=root.text("widget", ""),
            sender_id=visitor.text("id"),
            sender_name=visitor.optional_text("name"),
            text=root.text("text", ""),
            attachments=tuple(attachments),
            postback=root.optional_text("postback"),
            timestamp=root.iso_time("timestamp") if root.has("timestamp") else received_at,
            raw=root.value,
        )
    ]
