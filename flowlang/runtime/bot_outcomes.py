"""A bot's outcome (escalate, resolved, ...) resumes the flow that handed the conversation over."""

from __future__ import annotations

from flowlang.events import BotEvent
from flowlang.runtime.context import EngineContext
from flowlang.runtime.flow_run import resume
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.state import Trigger


def handle_bot(ctx: EngineContext, event: BotEvent) -> Outcome:
    """Resume the conversation's flow with the bot's outcome, intent and slots."""
    trigger = Trigger(
        kind="bot", outcome=event.outcome, intent=event.intent, slots=dict(event.slots)
    )
    return resume(ctx, event.conversation_id, event, event.timestamp, trigger)
