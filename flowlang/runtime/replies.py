"""Every message out, through the channel policy into the outbox: a flow's or an agent's
reply, a business-initiated message, and a resend of one given up on."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from flowlang.events import EventKind
from flowlang.runtime.context import EngineContext
from flowlang.runtime.initiate import INITIATED, recipient, template_content
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import ConversationView, Delivery, OutboundMessage


def send(
    ctx: EngineContext,
    conv: ConversationView,
    content: dict[str, Any],
    sender: str,
    visibility: str,
    guard: dict[str, Any] | None,
    now: datetime,
    outcome: Outcome,
    step: str,
    line: int,
    agent: str | None = None,
) -> None:
    """Decide a reply by the channel rules (and the flow's guard for a closed window) and
    queue it in the outbox when allowed; the decision goes to the event log either way."""
    to = ctx.senders.get(conv.id) or conv.last_sender_id
    message = OutboundMessage(
        conv.id,
        conv.channel,
        conv.account,
        to,
        sender,
        content,
        visibility,
        conv.reply_to or conv.post_id,  # post_id: a conversation kept before reply_to
    )
    window_open, _remaining = ctx.policy.window_open(conv, now)
    if guard is not None and not window_open:
        action = guard["action"]
        if action == "template":
            message = OutboundMessage(
                conv.id,
                conv.channel,
                conv.account,
                to,
                sender,
                guard["content"],
                visibility,
                conv.reply_to or conv.post_id,
            )
        else:
            status = "skipped" if action == "skip" else "recorded"
            delivery = Delivery(
                message,
                status,
                "window_closed",
                f"the {conv.channel} reply window is closed; the flow said to {action} this reply",
            )
            record_delivery(ctx, conv, delivery, now, outcome, step, line, agent)
            return
    delivery = ctx.policy.decide(message, conv, now)
    if delivery.status not in ("sent", "degraded"):
        record_delivery(ctx, conv, delivery, now, outcome, step, line, agent)
        return
    # A reply the channel takes as several messages goes as each of them, in order: each its
    # own outbox entry (retried, held in order or given up on alone) and its own history line
    # (its delivery status shown on it)
    for part in delivery.parts or (delivery.message,):
        sent = replace(delivery, message=part, parts=())
        if not part.message_id:  # the history names it: its status finds it
            sent.message = replace(part, message_id=uuid.uuid4().hex)
        ctx.deliverer.queue(sent.message, now)
        kept = {**_kept(sent.message, conv), "message_id": sent.message.message_id}
        ctx.store.append_message(conv, "out", kept, now, sender)
        record_delivery(ctx, conv, sent, now, outcome, step, line, agent)


def record_delivery(
    ctx: EngineContext,
    conv: ConversationView,
    delivery: Delivery,
    now: datetime,
    outcome: Outcome,
    step: str,
    line: int,
    agent: str | None,
) -> None:
    outcome.deliveries.append(delivery)
    kind = "message_out" if delivery.status in ("sent", "degraded") else "blocked"
    ctx.events.append(
        kind,
        now,
        conv.id,
        {
            "sender": delivery.message.sender,
            "status": delivery.status,
            "reason_code": delivery.reason_code,
            "reason": delivery.reason,
            "step": step,
            "line": line,
            **({"agent": agent} if agent else {}),
        },
    )


def initiate(
    ctx: EngineContext,
    channel: str,
    account: str,
    to: str,
    template: str,
    now: datetime,
    params: Mapping[str, Any] | None,
    phone: str | None,
) -> Outcome:
    """`Engine.initiate`: a deployment template sent first, by the business."""
    to, read = recipient(ctx.ports.address_of(channel), to)
    phone = read or phone
    outcome = Outcome(
        event={"type": "initiate", "channel": channel, "to": to, "template": template}
    )

    def queue() -> Outcome:
        customer = ctx.store.resolve_customer(ctx.ports.identity_kind(channel), to, phone, None)
        content = template_content(ctx.program, template, params or {}, customer)
        conv = ctx.store.conversation_for(customer.id, channel, account, now, ctx.threading_window)
        outcome.conversation_id = conv.id
        new = conv.messages == 0
        conv.last_sender_id = conv.last_sender_id or to
        ctx.senders.setdefault(conv.id, to)
        media = ctx.ports.media_of(channel, EventKind.MESSAGE)
        ctx.events.append(
            "initiated",
            now,
            conv.id,
            {"channel": channel, "media": media, "customer": customer.id, "template": template},
        )
        send(ctx, conv, content, INITIATED, "default", None, now, outcome, "initiate", 0)
        delivery = outcome.deliveries[-1]
        if new and delivery.status not in ("sent", "degraded"):
            conv.status = "closed"  # nothing was said: no conversation to continue
            ctx.events.append("not_sent", now, conv.id, {"reason": delivery.reason_code})
        ctx.store.save_conversation(conv)
        return outcome

    return ctx.committed(queue, now)


def resend(ctx: EngineContext, message: dict[str, Any], now: datetime) -> Outcome:
    """`Engine.resend`: a message given up on, checked again by the channel rules."""
    outcome = Outcome(event={"type": "resend", "at": now})
    fields = {k: v for k, v in message.items() if k != "delivered_to"}

    def queue() -> Outcome:
        again = OutboundMessage(**fields)
        outcome.conversation_id = again.conversation_id
        conv = ctx.store.get_conversation(again.conversation_id)
        if conv is None:
            delivery = Delivery(
                again,
                "blocked",
                "unknown_conversation",
                f"conversation {again.conversation_id} is not in the store, so the "
                "channel rules cannot be checked",
                "send it from the host, where the conversation is known",
            )
            outcome.deliveries.append(delivery)
            return outcome
        delivery = ctx.policy.recheck(again, conv, now)
        if delivery.status in ("sent", "degraded"):
            # the log has its message_out from when it was first allowed
            ctx.deliverer.queue(delivery.message, now, message.get("delivered_to", ()))
            outcome.deliveries.append(delivery)
        else:
            record_delivery(ctx, conv, delivery, now, outcome, "resend", 0, None)
        ctx.store.save_conversation(conv)
        return outcome

    return ctx.committed(queue, now)


def _kept(message: OutboundMessage, conv: ConversationView) -> dict[str, Any]:
    """What the history keeps of a sent message: a private reply to a public post says by which
    channel it went, so whoever reads the thread sees it was not posted publicly."""
    if message.visibility == "privately" and message.channel != conv.channel:
        return {**message.content, "privately_by": message.channel}
    return message.content
