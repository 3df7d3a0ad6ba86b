"""Time passing: the flows' timers (waits with a limit) and the ACD's deadlines, fired in the
order they are due, one unit of work each."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime, timedelta

from flowlang.events import TimerEvent
from flowlang.runtime import in_queue, window_warning
from flowlang.runtime.context import EngineContext
from flowlang.runtime.flow_run import notices, resume
from flowlang.runtime.in_queue_run import fire
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.state import FlowState, Trigger


def handle_timer(ctx: EngineContext, event: TimerEvent) -> Outcome:
    """Resume the flow waiting on the timer (its `on timeout` runs), or run the part of a
    `while queued` block that is due. The event's time is when it was due; it runs at the time
    it really runs (`EngineContext.running_at`), and says so when that is later."""
    now = ctx.running_at(event.timestamp)
    if in_queue.is_in_queue_timer(event.timer):
        outcome = fire(ctx, event, now)
    elif window_warning.is_window_timer(event.timer):
        outcome = window_warning.fire(ctx, event, now)
    else:
        trigger = Trigger(kind="timer", timer=event.timer)
        outcome = resume(ctx, event.conversation_id, event, now, trigger)
    _say_late(outcome, event.timestamp, now)
    return outcome


# A timer runs a little after it is due even on time (the service wakes, then takes its turn):
# only a delay of this much or more is said in its outcome's note.
SAID_LATE = timedelta(seconds=1)


def _say_late(outcome: Outcome, due: datetime, now: datetime) -> None:
    if now - due >= SAID_LATE:
        late = f"ran {_duration(now - due)} late (due {due.isoformat()})"
        outcome.note = f"{outcome.note}; {late}" if outcome.note else late


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def due_timers(ctx: EngineContext, now: datetime, limit: int | None = None) -> list[TimerEvent]:
    """Timers whose deadline has passed, as events (oldest first, at most `limit`); they leave
    the timer queue, and those whose wait is over already are dropped."""
    due: list[TimerEvent] = []
    while ctx.timers and ctx.timers[0][0] <= now and (limit is None or len(due) < limit):
        at, conversation_id, timer = heapq.heappop(ctx.timers)
        if not _still_waiting_for(ctx, conversation_id, timer):
            continue  # what the timer guarded has happened; it has nothing left to do
        due.append(
            TimerEvent(
                event_id=f"timer:{timer}",
                conversation_id=conversation_id,
                timer=timer,
                timestamp=at,
            )
        )
    return due


def advance(
    ctx: EngineContext, now: datetime, handle: Callable[[TimerEvent], Outcome]
) -> list[Outcome]:
    """Fire what is due by `now`, the flows' timers (through `handle`, which keeps a failing
    one as a dead letter) and the ACD's deadlines alike, then retry the outbox."""
    outcomes: list[Outcome] = []
    # In the order they are due, one at a time: what one does (a window expiry ends a flow)
    # may void or set another.
    while True:
        flow_at = _next_timer_at(ctx, now)
        acd_at = ctx.acd.next_deadline()
        if acd_at is not None and acd_at <= now and (flow_at is None or acd_at <= flow_at):
            tick = ticked(ctx, acd_at)
            if tick.notices or tick.failed_sends:
                outcomes.append(tick)
        elif flow_at is not None:
            outcomes.append(handle(due_timers(ctx, now, limit=1)[0]))
        else:
            break
    tick = ticked(ctx, now)
    tick.failed_sends.extend(ctx.deliverer.deliver_pending(now))
    if tick.notices or tick.failed_sends:
        outcomes.append(tick)
    return outcomes


def ticked(ctx: EngineContext, at: datetime) -> Outcome:
    """Let the ACD act on its deadlines passed by `at`, as one unit of work. The ACD decides
    each at its own time; what its notices run (a flow's block, a reply judged by the
    channel's rules) runs when it really runs, as a flow's own timer does (`running_at`)."""
    tick = Outcome(event={"type": "tick", "at": at})
    now = ctx.running_at(at)
    ticked = ctx.committed(lambda: tick_acd(ctx, at, tick, now), now)
    if ticked.notices:
        _say_late(ticked, at, now)
    return ticked


def tick_acd(
    ctx: EngineContext, due: datetime, outcome: Outcome, now: datetime | None = None
) -> Outcome:
    """The ACD's deadlines passed by `due` acted on; their notices applied at `now` (`due`
    when not given)."""
    notices(ctx, ctx.acd.tick(due), now or due, outcome)
    return outcome


def _next_timer_at(ctx: EngineContext, now: datetime) -> datetime | None:
    """When the next flow timer due by `now` is due (stale ones are dropped)."""
    while ctx.timers and ctx.timers[0][0] <= now:
        at, conversation_id, timer = ctx.timers[0]
        if _still_waiting_for(ctx, conversation_id, timer):
            return at
        heapq.heappop(ctx.timers)
    return None


def _still_waiting_for(ctx: EngineContext, conversation_id: str, timer: str) -> bool:
    conv = ctx.store.get_conversation(conversation_id)
    if conv is not None and in_queue.is_in_queue_timer(timer):
        return in_queue.is_current(conv, timer)
    if conv is not None and window_warning.is_window_timer(timer):
        return window_warning.is_current(conv, timer)
    if conv is None or not conv.flow_state:
        return False
    waiting = FlowState.resumes_at(conv.flow_state).waiting
    return waiting is not None and waiting.timer == timer
