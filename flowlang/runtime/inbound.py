"""A customer's message, post, edit, deletion or the channel's notice about them: stored once
(a channel's retry is a duplicate), threaded into the customer's conversation, kept in the
history and handed to the flow, the agent who has it, or the queue it waits in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flowlang.events import EventKind, InboundEvent
from flowlang.runtime import window_warning
from flowlang.runtime.context import EngineContext
from flowlang.runtime.flow_run import (
    customer_wrote_while_routed,
    notices,
    run_event,
    run_flow,
    stop_waiting,
)
from flowlang.runtime.in_queue_run import customer_wrote
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import ConversationStore, ConversationView, sender_and_conversation
from flowlang.runtime.receipts import record_status
from flowlang.runtime.replies import send
from flowlang.runtime.state import Trigger

_log = logging.getLogger("flowlang.engine")

# The kinds `_process` tells apart, read once (a member read from its enum is a look-up each
# time, and `.value` a property): every message asks most of them.
_RECEIPT, _SYSTEM, _EDIT, _UNSEND, _COMMENT = (
    EventKind.RECEIPT,
    EventKind.SYSTEM,
    EventKind.EDIT,
    EventKind.UNSEND,
    EventKind.COMMENT,
)
_LEFT = frozenset({EventKind.DELETE, EventKind.CLOSE})
_POSTED = frozenset({EventKind.POST, EventKind.EDIT})
_VALUES = {kind: kind.value for kind in EventKind}


def accept(ctx: EngineContext, event: InboundEvent) -> Outcome:
    """Store the event and process it in one unit of work (one durable commit); a channel
    message id seen before is a duplicate. Processing that fails is undone alone: the event
    stays stored, as a dead letter, in the same commit.

    Nothing is lost or doubled across a crash: before the commit nothing of the event is
    stored and the host has not acknowledged it, so the channel sends it again; after it, the
    event and everything it caused are stored together, and the channel's retry is a
    duplicate."""
    if ctx.group is not None:
        return _accept_in_group(ctx, event)

    def work() -> Outcome:
        if not _stored_processing(ctx.store, event):
            outcome = Outcome(event=event, duplicate=True)
            outcome.note = f"duplicate {event.channel} message {event.event_id}: already processed"
            return outcome
        mark = ctx.deliverer.mark()
        try:
            with ctx.events.undone_on_failure(), ctx.unit_of_work():
                return _process(ctx, event, marked=True)
        except Exception as exc:  # a bug or a failing part must not lose the message
            ctx.deliverer.discard(mark)
            ctx.stale = True  # the ACD and the timers may hold what was undone
            return _kept(ctx, event, exc)

    try:
        return ctx.committed(work, event.timestamp)
    except Exception as exc:  # the unit of work itself failed (its commit): keep the event
        with ctx.unit_of_work():
            ctx.store.accept_inbound(event.channel, event.event_id, event.model_dump(mode="json"))
            return _kept(ctx, event, exc)


def _stored_processing(store: ConversationStore, event: InboundEvent) -> bool:
    """`accept_inbound(processing=True)`; a store that takes the event itself (an
    `accept_event` method, `KeepsInboundEvents`: the in-memory store) is not given its stored
    form, which it would not keep."""
    accept_event: Callable[[InboundEvent], bool] | None = getattr(store, "accept_event", None)
    if accept_event is not None:
        return accept_event(event)
    payload = event.model_dump(mode="json")
    return store.accept_inbound(event.channel, event.event_id, payload, processing=True)


def _accept_in_group(ctx: EngineContext, event: InboundEvent) -> Outcome:
    """`accept` inside a group: the event's nested unit of work (`EngineContext.committed`)
    holds both the stored event and its processing (one savepoint, not two); when the
    processing fails, all of it is undone and the event is stored again, as a dead letter, in
    a unit of its own, still inside the group (so still in its commit)."""

    def work() -> Outcome:
        if not _stored_processing(ctx.store, event):
            outcome = Outcome(event=event, duplicate=True)
            outcome.note = f"duplicate {event.channel} message {event.event_id}: already processed"
            return outcome
        return _process(ctx, event, marked=True)

    try:
        return ctx.committed(work, event.timestamp)
    except Exception as exc:  # a bug or a failing part must not lose the message
        with ctx.unit_of_work():
            ctx.store.accept_inbound(event.channel, event.event_id, event.model_dump(mode="json"))
            return _kept(ctx, event, exc)


def process(ctx: EngineContext, event: InboundEvent) -> Outcome:
    """Process an event the store has accepted, as one unit of work; one that fails (a bug, a
    part that raises) goes to the dead letters with its traceback in the log."""
    try:
        return ctx.committed(lambda: _process(ctx, event), event.timestamp)
    except Exception as exc:  # a bug or a failing part must not lose the message
        with ctx.unit_of_work():
            return _kept(ctx, event, exc)


def _kept(ctx: EngineContext, event: InboundEvent, exc: Exception) -> Outcome:
    """Keep an event whose processing failed as a dead letter (replayable), marked processed,
    and log the traceback."""
    reason = f"{type(exc).__name__}: {exc}"
    _log.exception("inbound %s %s failed; kept as a dead letter", event.channel, event.event_id)
    ctx.store.dead_letter(
        f"inbound:{event.channel}", event.model_dump(mode="json"), reason, event.timestamp
    )
    ctx.store.mark_processed(event.channel, event.event_id)
    return Outcome(event=event, dead_lettered=True, note=f"kept in the dead letters: {reason}")


def _process(ctx: EngineContext, event: InboundEvent, marked: bool = False) -> Outcome:
    """Process a stored event and mark it processed, in the caller's unit of work (`marked`:
    it was stored as processed, in this unit: `accept_inbound(processing=True)`)."""
    outcome = Outcome.of(event)
    now = event.timestamp
    done = _no_mark if marked else ctx.store.mark_processed
    if event.kind is _RECEIPT:
        record_status(ctx, event, outcome)
        done(event.channel, event.event_id)
        return outcome
    if not event.sender_id:  # a removal that came without its author (Facebook's feed)
        author = _author_of(ctx, event)
        if author is None:
            outcome.note = f"{event.refers_to} was removed; whose it was is not known here"
            done(event.channel, event.event_id)
            return outcome
        event = event.model_copy(update={"sender_id": author})
    customer, conv = sender_and_conversation(
        ctx.store,
        ctx.ports.identity_kind(event.channel),
        event.sender_id,
        event.sender_phone,
        event.sender_name,
        event.channel,
        event.account,
        now,
        ctx.threading_window,
    )
    ctx.customers[conv.id] = customer
    ctx.senders[conv.id] = event.sender_id
    outcome.conversation_id = conv.id
    if event.kind is _SYSTEM:
        outcome = _identity_changed(ctx, event, conv, outcome, now)
        done(event.channel, event.event_id)
        return outcome
    conv.last_inbound_at = now
    conv.last_sender_id = event.sender_id
    conv.post_id = event.post_id or conv.post_id
    conv.reply_to = _reply_target(event) or conv.reply_to
    content: dict[str, Any] = {
        "text": event.text,
        "kind": _VALUES[event.kind],
        "event_id": event.event_id,
    }
    if event.refers_to is not None:
        content["refers_to"] = event.refers_to
    if event.data is not None:
        content["data"] = event.data
    ctx.store.append_message(conv, "in", content, now, event.sender_id)
    ctx.events.append(
        "message_in",
        now,
        conv.id,
        {
            "channel": event.channel,
            "media": ctx.ports.media_of(event.channel, event.kind),
            "message_kind": _VALUES[event.kind],
            "customer": conv.customer_id,
            "event_id": event.event_id,  # the history's message (the agents' streams show it)
        },
    )
    keyword = ctx.policy.observe_inbound(conv, event, now)
    if keyword is not None:
        what, text = keyword
        if text:
            content = {"kind": "text", "text": text}
            send(ctx, conv, content, "flow", "default", None, now, outcome, "policy", 0)
        ctx.events.append(what, now, conv.id, {"channel": event.channel})
        outcome.note = {
            "opted_out": "the customer opted out; nothing more will be sent to them",
            "opted_in": "the customer opted back in",
            "help": "the customer asked for help; the channel's help text was sent",
        }.get(what, what)
    elif event.kind in _LEFT:
        _left(ctx, event, conv, outcome, now)
    elif event.kind is _EDIT:
        ctx.events.append(
            "edited", now, conv.id, {"post_id": event.post_id, "refers_to": event.refers_to}
        )
        outcome.note = "the customer edited the post; the new text is in the history"
    elif event.kind is _UNSEND:
        ctx.events.append("unsent", now, conv.id, {"refers_to": event.refers_to})
        outcome.note = "the customer unsent a message; the conversation goes on without it"
    elif conv.status == "with_agent":
        customer_wrote_while_routed(ctx, conv, now)
        outcome.note = f"delivered to agent {conv.agent} (the conversation is theirs)"
    elif conv.status == "queued":
        customer_wrote_while_routed(ctx, conv, now)
        where = f"in {conv.queue}" if conv.queue else "for an agent"
        outcome.note = f"added to the conversation waiting {where}"
        customer_wrote(ctx, conv, event, now, outcome)
    else:
        state = conv.state()
        if state.waiting is None or state.waiting.kind == "answer":
            trigger = Trigger("message", event.text)  # (positional: keywords cost twice)
            run_flow(ctx, conv, state, trigger, event, now, outcome)
        else:
            outcome.note = f"flow waits for the {state.waiting.kind}; message kept in history"
    window_warning.arm(ctx, conv)
    ctx.store.save_conversation(conv)
    done(event.channel, event.event_id)
    return outcome


def _left(
    ctx: EngineContext,
    event: InboundEvent,
    conv: ConversationView,
    outcome: Outcome,
    now: datetime,
) -> None:
    """The customer deleted their post or closed the chat: the interaction is withdrawn, the
    flow stops waiting, and the flow's `on customer closed` runs for a closed chat."""
    notices(ctx, ctx.acd.withdraw(conv.id, now), now, outcome, conv)
    conv.status, conv.agent = "closed", None
    stop_waiting(conv, "customer left")
    what = "deleted the post" if event.kind is EventKind.DELETE else "closed the chat"
    reason = "post deleted" if event.kind is EventKind.DELETE else "chat closed"
    ctx.events.append("abandoned", now, conv.id, {"reason": reason})
    outcome.note = f"the customer {what}; the interaction is withdrawn"
    if event.kind is EventKind.CLOSE:
        run_event(ctx, conv, "customer closed", now, outcome)


def _identity_changed(
    ctx: EngineContext,
    event: InboundEvent,
    conv: ConversationView,
    outcome: Outcome,
    now: datetime,
) -> Outcome:
    """The channel's signed notice that the customer's number or user id changed: the new
    identity is linked to the customer, the notice kept in the history and the event log;
    the flow does not run, nothing is sent and the customer's window stays as it was."""
    data = event.data or {}
    kind = ctx.ports.identity_kind(event.channel)
    links: list[tuple[str, str]] = []
    if phone := data.get("new_phone"):
        links += [("phone", str(phone)), (kind, str(phone)[1:])]
    if user_id := data.get("new_user_id"):
        links.append((kind, str(user_id)))
    customer = ctx.customers[conv.id]
    for link_kind, value in links:
        customer = ctx.store.move_identity(customer.id, link_kind, value)
    ctx.customers[conv.id], conv.customer_id = customer, customer.id
    content = {"text": event.text, "kind": "system", "event_id": event.event_id, "data": data}
    ctx.store.append_message(conv, "in", content, now, event.sender_id)
    ctx.events.append(
        "identity_changed",
        now,
        conv.id,
        {"channel": event.channel, "customer": customer.id, **data},
    )
    outcome.note = f"{data.get('system', 'system')}: {', '.join(v for _, v in links)} linked"
    ctx.store.save_conversation(conv)
    return outcome


def _no_mark(channel: str, event_id: str) -> None:
    """Stored as processed already (in this unit of work)."""


def _author_of(ctx: EngineContext, event: InboundEvent) -> str | None:
    """Who sent the message `event` is about, from the store's inbound log."""
    if event.refers_to is None:
        return None
    return ctx.store.inbound_sender(event.channel, event.refers_to)


def _reply_target(event: InboundEvent) -> str | None:
    """What a public reply answers: the customer's comment (it nests under it), or their post
    when they wrote the post itself; an edit's newest version. None for anything else."""
    if event.kind is _COMMENT:
        return event.comment_id
    if event.kind in _POSTED:
        return event.comment_id or event.post_id
    return None
