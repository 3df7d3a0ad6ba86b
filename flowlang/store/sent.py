"""The `sent_messages` table both SQL stores share: a message the vendor accepted, by the
vendor's id, with the latest status its webhooks reported (runtime/ports.py `SentLedger`)."""

from __future__ import annotations

from datetime import datetime

from flowlang.events import in_utc
from flowlang.runtime.ports import SentMessage, latest_attempts

__all__ = ["COLUMNS", "latest_attempts", "row_of", "sent_of"]

COLUMNS = (
    "channel, vendor_id, message_id, conversation_id, recipient, sent_at, status, status_at, error"
)


def row_of(sent: SentMessage) -> tuple[str, ...]:
    """The row to insert, in COLUMNS' order (times as UTC text, so text order is time order)."""
    return (
        sent.channel,
        sent.vendor_id,
        sent.message_id,
        sent.conversation_id,
        sent.recipient,
        in_utc(sent.sent_at).isoformat(),
        sent.status,
        in_utc(sent.status_at or sent.sent_at).isoformat(),
        sent.error,
    )


def sent_of(row: tuple[object, ...]) -> SentMessage:
    """A row selected with COLUMNS."""
    channel, vendor_id, message_id, conversation, recipient, sent_at, status, at, error = row
    return SentMessage(
        channel=str(channel),
        vendor_id=str(vendor_id),
        message_id=str(message_id),
        conversation_id=str(conversation),
        recipient=str(recipient),
        sent_at=datetime.fromisoformat(str(sent_at)),
        status=str(status),
        status_at=datetime.fromisoformat(str(at)),
        error=str(error),
    )
