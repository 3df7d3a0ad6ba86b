"""Agents act only on their own work: which agent actions the engine takes, and the refusals.

An agent replies, transfers and completes only a conversation they hold (its status is
`with_agent` and its agent is them), gives a wrap-up code only for one whose after-call work is
theirs, and accepts or declines only an offer still open to them (the ACD decides that). A
refused action changes nothing: no message, no store change, no ACD change, no event.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowlang.events import AgentAction, AgentEvent
from flowlang.runtime.ports import ConversationView, RoutingNotice

ACTION_NAMES = {
    AgentAction.ACCEPT: "accept",
    AgentAction.DECLINE: "decline",
    AgentAction.REPLY: "reply",
    AgentAction.TRANSFER: "transfer",
    AgentAction.COMPLETE: "complete",
    AgentAction.WRAP_UP: "wrap-up",
}


@dataclass(frozen=True)
class Refusal:
    """An agent action the engine refused, for a host to show the agent: who, what, why.

    `code` is one of `unknown_conversation`, `not_holder` (the conversation is not theirs),
    `offer_not_open` (accept / decline of an offer that is not open to them),
    `not_in_after_call_work` (a wrap-up code with no after-call work of theirs),
    `wrap_up_required` (complete without a code where the queue requires one) and
    `wrap_up_invalid` (a code the queue does not declare)."""

    agent: str
    action: AgentAction
    conversation_id: str
    code: str
    reason: str

    def __str__(self) -> str:
        return f"{self.agent}'s {ACTION_NAMES[self.action]} refused: {self.reason}"


def holder_refusal(event: AgentEvent, conv: ConversationView) -> Refusal | None:
    """Why `event.agent_id` may not take `event.action` on `conv` as the store has it (None:
    they may; accept and decline are the ACD's to judge, codes the queue's)."""
    agent, action = event.agent_id, event.action
    if action in (AgentAction.ACCEPT, AgentAction.DECLINE):
        return None
    holds = conv.status == "with_agent" and conv.agent == agent
    # After-call work ends when another agent takes the conversation (the customer wrote
    # again): its agent may no longer complete or code what is now someone else's.
    wrapping_up = conv.wrap_up_agent == agent and (holds or conv.status != "with_agent")
    if action is AgentAction.WRAP_UP:
        if wrapping_up:
            return None
        if holds:
            why = f"{agent} is still in {conv.id}; a wrap-up code goes with complete"
        else:
            why = f"{conv.id} is not in after-call work with {agent}: it is {state_of(conv)}"
        return Refusal(agent, action, conv.id, "not_in_after_call_work", why)
    if holds or (action is AgentAction.COMPLETE and wrapping_up):
        return None
    why = f"{agent} does not hold {conv.id}: it is {state_of(conv)}"
    return Refusal(agent, action, conv.id, "not_holder", why)


def code_refusal(event: AgentEvent, notices: list[RoutingNotice]) -> Refusal | None:
    """The ACD's `wrap_up_rejected` answer to a complete or wrap-up (it changed nothing), as a
    refusal of the agent's action."""
    for notice in notices:
        if notice.kind == "wrap_up_rejected":
            code = str(notice.data.get("code") or "wrap_up_invalid")
            reason = str(notice.data.get("reason") or "the wrap-up code was refused")
            return Refusal(event.agent_id, event.action, event.conversation_id, code, reason)
    return None


def state_of(conv: ConversationView) -> str:
    """Where a conversation is, in words: `with dave`, `waiting in Retail Banking`."""
    if conv.status == "with_agent":
        return f"with {conv.agent}"
    if conv.status == "queued":
        return f"waiting in {conv.queue}" if conv.queue else "waiting for an agent"
    if conv.status == "closed":
        if conv.wrap_up_agent:
            return f"closed, in after-call work with {conv.wrap_up_agent}"
        return "closed"
    return "with a bot" if conv.status == "bot" else "with the flow"
