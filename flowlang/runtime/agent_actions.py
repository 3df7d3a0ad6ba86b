"""What agents do: accept or decline an offer, reply, transfer, complete with a wrap-up code,
and change their state; and what a supervisor does to an agent's work (pull it back to its
queue). An action that may not be taken is refused before anything changes."""

from __future__ import annotations

from datetime import datetime

from flowlang.events import AgentAction, AgentEvent
from flowlang.runtime import in_queue
from flowlang.runtime.agent_rules import Refusal, code_refusal, holder_refusal, state_of
from flowlang.runtime.context import EngineContext
from flowlang.runtime.flow_run import notices, run_event
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import ConversationView
from flowlang.runtime.replies import send


def handle_agent(ctx: EngineContext, event: AgentEvent) -> Outcome:
    """One agent action, inside the event's unit of work."""
    outcome = Outcome(event=event, conversation_id=event.conversation_id)
    conv = ctx.store.get_conversation(event.conversation_id)
    now = event.timestamp
    if conv is None:
        outcome.note = f"unknown conversation {event.conversation_id}"
        outcome.refusal = Refusal(
            event.agent_id,
            event.action,
            event.conversation_id,
            "unknown_conversation",
            f"there is no conversation {event.conversation_id}",
        )
        ctx.store.dead_letter("agent", event.model_dump(mode="json"), outcome.note, now)
        return outcome
    # Checked before anything changes: a refused action leaves no trace but the outcome.
    refusal = holder_refusal(event, conv) or _action(ctx, conv, event, now, outcome)
    if refusal is not None:
        outcome.refusal, outcome.note = refusal, str(refusal)
        return outcome
    ctx.store.save_conversation(conv)
    return outcome


def set_agent_state(ctx: EngineContext, agent: str, state: str, now: datetime) -> Outcome:
    """An agent became available, away or offline; the ACD hands out what it can."""
    outcome = Outcome(event={"type": "agent_state", "agent": agent, "state": state})

    def hand_out() -> Outcome:
        ctx.events.append("agent_state", now, None, {"agent": agent, "state": state})
        notices(ctx, ctx.acd.set_agent_state(agent, state, now), now, outcome)
        return outcome

    return ctx.committed(hand_out, now)


def pull_back(ctx: EngineContext, conversation_id: str, by: str, now: datetime) -> Outcome:
    """A supervisor takes a conversation from the agent who has it and puts it back in its
    queue, where it goes to another agent (never back to the same one) or waits. Logged as
    `requeued` with `reason: pulled back` and who did it; the agent's work on it ends there (no
    after-call work). A conversation not with an agent, or with no queue to go back to, is
    refused: `outcome.note` says why and nothing changed."""
    outcome = Outcome(
        event={"type": "pull_back", "conversation_id": conversation_id, "by": by},
        conversation_id=conversation_id,
    )
    conv = ctx.store.get_conversation(conversation_id)
    if conv is None or conv.status != "with_agent" or conv.agent is None:
        outcome.note = f"{conversation_id} is not with an agent"
        return outcome
    if conv.queue is None:
        outcome.note = f"{conversation_id} was routed to {conv.agent} alone: it has no queue"
        return outcome
    found = conv

    def requeue() -> Outcome:
        ctx.events.append(
            "requeued",
            now,
            found.id,
            {"agent": found.agent, "queue": found.queue, "reason": "pulled back", "by": by},
        )
        found.status, found.agent = "queued", None
        if found.routing:
            found.routing["entered_at"] = now.isoformat()
        notices(ctx, ctx.acd.transfer(found.id, found.queue, None, now), now, outcome, found)
        ctx.store.save_conversation(found)
        return outcome

    return ctx.committed(requeue, now)


def _action(
    ctx: EngineContext, conv: ConversationView, event: AgentEvent, now: datetime, outcome: Outcome
) -> Refusal | None:
    if event.action is AgentAction.REPLY:
        content = dict(event.content) or {"kind": "text", "text": event.text}
        send(
            ctx,
            conv,
            content,
            "agent",
            event.visibility,
            None,
            now,
            outcome,
            "agent",
            0,
            event.agent_id,
        )
    elif event.action in (AgentAction.ACCEPT, AgentAction.DECLINE):
        ask = ctx.acd.accept if event.action is AgentAction.ACCEPT else ctx.acd.decline
        answer = ask(conv.id, event.agent_id, now)
        if not answer:
            return Refusal(
                event.agent_id,
                event.action,
                conv.id,
                "offer_not_open",
                f"the offer of {conv.id} is not open to {event.agent_id}: it is {state_of(conv)}",
            )
        notices(ctx, answer, now, outcome, conv)
    elif event.action is AgentAction.TRANSFER:
        ctx.events.append(
            "transferred",
            now,
            conv.id,
            {
                "agent": event.agent_id,
                "to_queue": event.transfer_queue,
                "to_agent": event.transfer_agent,
            },
        )
        conv.status = "queued"
        conv.agent = None
        conv.queue = event.transfer_queue or conv.queue
        if conv.routing:
            conv.routing["entered_at"] = now.isoformat()
            conv.routing.pop(in_queue.DONE, None)  # a new wait: its `after` parts run again
            if event.transfer_queue and event.transfer_queue != conv.routing.get("queue"):
                conv.routing.update(queue=event.transfer_queue, skills={})
                conv.routing.pop("agent_steps", None)  # they were for the first queue
        moved = ctx.acd.transfer(conv.id, event.transfer_queue, event.transfer_agent, now)
        notices(ctx, moved, now, outcome, conv)
        if event.transfer_queue and conv.status == "queued":
            # the `while queued` block of the new queue (or for every queue) starts again
            in_queue.arm(ctx, conv, now)
    elif event.action is AgentAction.COMPLETE and conv.status == "with_agent":
        answer = ctx.acd.complete(conv.id, event.agent_id, event.wrap_up, now)
        if refused := code_refusal(event, answer):
            return refused
        # The threading window runs from the disconnect: wrap-up is activity too.
        conv.last_activity_at = max(conv.last_activity_at, now)
        conv.wrap_up = event.wrap_up
        conv.status, conv.agent = "closed", None
        conv.last_agent = event.agent_id
        ctx.events.append(
            "completed",
            now,
            conv.id,
            {"agent": event.agent_id, "wrap_up": event.wrap_up, "queue": conv.queue},
        )
        notices(ctx, answer, now, outcome, conv)
        if event.wrap_up:
            run_event(
                ctx, conv, "wrap up", now, outcome, wrap_up=event.wrap_up, agent=event.agent_id
            )
    else:  # a wrap-up code during the agent's after-call work (`complete` with one, too)
        answer = ctx.acd.wrap_up(conv.id, event.agent_id, event.wrap_up, now)
        if not answer:  # after a restart the ACD may have lost this work: it judges the code
            code = event.wrap_up or conv.wrap_up
            judged = ctx.acd.refused_code(conv.id, conv.queue, event.agent_id, code, now)
            answer = [judged] if judged is not None else []
        if refused := code_refusal(event, answer):
            return refused
        first_code = conv.wrap_up is None and bool(event.wrap_up)
        conv.wrap_up = event.wrap_up or conv.wrap_up
        conv.wrap_up_agent = None
        ctx.events.append(
            "wrap_up", now, conv.id, {"agent": event.agent_id, "wrap_up": event.wrap_up}
        )
        notices(ctx, answer, now, outcome, conv)
        if first_code and conv.status == "closed":  # completed without a code: given now
            run_event(
                ctx, conv, "wrap up", now, outcome, wrap_up=event.wrap_up, agent=event.agent_id
            )
    return None
