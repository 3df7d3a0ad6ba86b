"""A vendor's status of a message it accepted (sent, delivered, read, failed), from its status
webhook: the sent message found by the vendor's id (or, for a watermark, every message to the
customer sent before it), its status kept, and a `delivery_status` in the event log. A failed
status keeps its error code and reason; one the channel says closes the reply window (WhatsApp
131047) closes the conversation's window until the customer writes again. A status about an id
this store never sent is kept in the log as `unknown` (not an error, not a dead letter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowlang.events import InboundEvent
from flowlang.runtime.context import EngineContext
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import SentMessage

# The vendors' words for a status (WhatsApp, Messenger and Instagram, Twilio) -> ours.
STATUSES = {
    "accepted": "accepted",
    "queued": "accepted",
    "sending": "accepted",
    "scheduled": "accepted",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
}


def record_status(ctx: EngineContext, event: InboundEvent, outcome: Outcome) -> None:
    """Keep what a status webhook's event says about the messages it names."""
    now = event.timestamp
    word = event.text.strip().lower()
    status = STATUSES.get(word, word)
    data: dict[str, Any] = event.data or {}
    errors = data.get("errors") or [{}]
    code, reason = str(errors[0].get("code", "")), str(errors[0].get("reason", ""))
    error = f"{code}: {reason}" if code and reason else code
    ids = list(data.get("mids") or ([event.refers_to] if event.refers_to else []))
    found: list[SentMessage] = []
    unknown: list[str] = []
    for vendor_id in ids:
        sent = ctx.store.update_sent(event.channel, vendor_id, status, error, now)
        if sent is None:
            unknown.append(vendor_id)
        else:
            found.append(sent)
    if not ids and "watermark" in data:
        until = datetime.fromisoformat(str(data["watermark"]))
        found = ctx.store.update_sent_until(event.channel, event.sender_id, status, until, now)
    details = {"channel": event.channel, "status": status}
    if word != status:
        details["vendor_status"] = word
    if code:
        details |= {"error_code": code, "reason": reason}
    for sent in found:
        fields: dict[str, Any] = {
            **details,
            "vendor_id": sent.vendor_id,
            "message_id": sent.message_id,
        }
        if status == "failed" and code:
            fields["closes"] = _failed(ctx, sent, code, now)
        ctx.events.append("delivery_status", now, sent.conversation_id, fields)
    for vendor_id in unknown:
        ctx.events.append(
            "delivery_status", now, None, {**details, "vendor_id": vendor_id, "unknown": True}
        )
    if not found and not unknown:
        ctx.events.append(
            "receipt", now, None, {"channel": event.channel, "event_id": event.event_id}
        )
    outcome.conversation_id = found[0].conversation_id if found else None
    outcome.note = _note(status, found, unknown, error)


def _failed(ctx: EngineContext, sent: SentMessage, code: str, now: datetime) -> str | None:
    """What a failure changes in its conversation (the window closed), saved with it."""
    conv = ctx.store.get_conversation(sent.conversation_id)
    if conv is None:
        return None
    closes = ctx.policy.vendor_failed(conv, code, now)
    if closes is not None:
        ctx.store.save_conversation(conv)
        ctx.events.append(closes, now, conv.id, {"channel": sent.channel, "error_code": code})
    return closes


def _note(status: str, found: list[SentMessage], unknown: list[str], error: str) -> str:
    said = f"{status} ({error})" if error else status
    if found:
        also = f"; {len(unknown)} id(s) not sent from here" if unknown else ""
        return f"receipt recorded: {len(found)} sent message(s) {said}{also}"
    if unknown:
        ids = ", ".join(unknown)
        return f"receipt recorded: {said} for {ids}, which no message sent from here has"
    return "receipt recorded"
