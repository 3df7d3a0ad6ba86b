"""`on window closing:`, the flow's "still there?" before the reply window closes.

When the customer writes, a timer is armed for the channel's warning time before the standard
window closes (`ReplyPolicy.window_warning_at`: the channel registry's `warn_before_minutes`);
each new customer message moves it. The timer's name carries that moment,
`window_closing|<at>`, and the conversation keeps it (`channel_state["window_warning"]`) so that
a restart arms it again (`ConversationStore.waiting_timers`). When it fires and is still the
conversation's (the customer has not written since, the conversation is not closed), the block
runs beside whatever the flow waits for (as a `while queued` block does); its replies go through
the channel's rules like any other, at the time it really runs (the engine's clock, when it has
one), so they are sent only inside the window.
"""

from __future__ import annotations

from datetime import datetime

from flowlang.events import TimerEvent
from flowlang.runtime.context import EngineContext
from flowlang.runtime.in_queue_run import run_beside
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import ConversationView
from flowlang.runtime.state import FlowState

EVENT = "window closing"
PREFIX = "window_closing|"
KEPT = "window_warning"
"""The `channel_state` key of the armed warning's moment (ISO text)."""


def is_window_timer(timer: str | None) -> bool:
    return bool(timer) and str(timer).startswith(PREFIX)


def arm(ctx: EngineContext, conv: ConversationView) -> None:
    """After a customer message: the warning for the window it opened, when the flow has an
    `on window closing` block and the channel a warning time."""
    if conv.status == "closed":
        return
    if conv.waiting() is not None:
        program = ctx.program_for(conv.resume_point(), conv)
    else:  # a flow that waits for nothing starts on the current version
        program = ctx.starting_program(conv, None)
    if EVENT not in program.graph.handlers:
        return
    at = ctx.policy.window_warning_at(conv)
    if at is None:
        conv.channel_state.pop(KEPT, None)
        return
    conv.channel_state[KEPT] = at.isoformat()
    ctx.start_timer(at, conv.id, PREFIX + at.isoformat())


def is_current(conv: ConversationView, timer: str) -> bool:
    """The warning is the conversation's latest and the conversation goes on."""
    return conv.status != "closed" and conv.channel_state.get(KEPT) == timer.removeprefix(PREFIX)


def fire(ctx: EngineContext, event: TimerEvent, now: datetime) -> Outcome:
    """The window closes soon: run `on window closing` beside the flow's wait, at `now` (when
    it really runs: a warning that runs late, the engine down past it, has its reply held back
    by the channel's rules once the window has closed)."""
    outcome = Outcome(event=event, conversation_id=event.conversation_id)
    conv = ctx.store.get_conversation(event.conversation_id)
    if conv is None or not is_current(conv, event.timer or ""):
        outcome.note = "the customer wrote since: this window warning is stale"
        return outcome
    conv.channel_state.pop(KEPT, None)  # once per window
    program = ctx.program_for(FlowState.resumes_at(conv.flow_state), conv)
    ctx.events.append("flow_event", now, conv.id, {"event": EVENT})
    run_beside(ctx, conv, program, EVENT, None, now, outcome)
    ctx.store.save_conversation(conv)
    outcome.note = outcome.note or "the reply window closes soon: on window closing ran"
    return outcome


def kept_warning(channel_state: dict[str, object]) -> datetime | None:
    """The warning a stored conversation keeps (for the store's `waiting_timers`)."""
    at = channel_state.get(KEPT)
    return datetime.fromisoformat(at) if isinstance(at, str) else None
