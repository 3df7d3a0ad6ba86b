"""Running a `while queued` block beside a conversation's wait: its `every` and `after` parts
when their timers fire, `when customer writes` when the customer writes while waiting.

The block runs on the conversation's flow state without disturbing what the flow waits for:
its replies are sent (through the channel's rules), its data set, and what it changes of the
variables, priority and skills is kept. A changed priority or skill routes the conversation
again to the queue it waits in (it keeps its place and wait: the ACD re-ranks it). `end` takes
it out of the queue and closes it. `in_queue` (queue, position, estimated wait, time waited)
comes from the ACD (`Acd.queue_status` for the conversation).
"""

from __future__ import annotations

from datetime import datetime
from math import ceil
from typing import Any

from flowlang.compiler import ir
from flowlang.events import InboundEvent, TimerEvent
from flowlang.runtime import effects as fx
from flowlang.runtime import in_queue
from flowlang.runtime.context import EngineContext
from flowlang.runtime.flow_run import (
    apply_effects,
    facts_for,
    notices,
    route_again,
    run_flow,
    stop_waiting,
)
from flowlang.runtime.interpreter import run
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import ConversationView
from flowlang.runtime.program import Program
from flowlang.runtime.state import FlowState, Trigger


def fire(ctx: EngineContext, event: TimerEvent, now: datetime) -> Outcome:
    """An `every` or `after` part is due: run it at `now` (when it really runs), and arm the
    next repeat after `now`: the repeats missed while the engine was down are not sent late,
    one after another (the latest runs, once)."""
    outcome = Outcome(event=event, conversation_id=event.conversation_id)
    conv = ctx.store.get_conversation(event.conversation_id)
    timer = event.timer or ""
    if conv is None or not in_queue.is_current(conv, timer):
        outcome.note = "the wait this in-queue timer belongs to is over"
        return outcome
    state = FlowState.from_json(conv.flow_state)
    program = ctx.program_for(state, conv)
    found = in_queue.block_for(program.graph, conv.queue)
    if found is None:
        return outcome
    key, spec = found
    entered, kind, number = in_queue.parts(timer)
    if kind == "every" and spec["every"]:
        at, name = in_queue.next_every(entered, spec["every"], now)
        ctx.start_timer(at, conv.id, name)
        handler = ir.queue_handler(key, "every")
    else:
        conv.routing[in_queue.DONE] = [*(conv.routing.get(in_queue.DONE) or []), f"after|{number}"]
        handler = ir.queue_handler(key, "after", number)
    run_beside(ctx, conv, program, handler, None, now, outcome)
    ctx.store.save_conversation(conv)
    return outcome


def customer_wrote(
    ctx: EngineContext,
    conv: ConversationView,
    event: InboundEvent,
    now: datetime,
    outcome: Outcome,
) -> None:
    """The customer wrote while waiting in a queue: the block's `when customer writes` runs
    (its `message` is what they wrote)."""
    program = ctx.program_for(conv.resume_point(), conv)
    found = in_queue.block_for(program.graph, conv.queue)
    if found is None or not found[1]["writes"]:
        return
    run_beside(ctx, conv, program, ir.queue_handler(found[0], "writes"), event, now, outcome)


def run_beside(
    ctx: EngineContext,
    conv: ConversationView,
    program: Program,
    handler: str,
    message: InboundEvent | None,
    now: datetime,
    outcome: Outcome,
) -> None:
    """Run one part of the block and apply what it did; the flow's wait is left as it was."""
    state = FlowState.from_json(conv.flow_state)
    before = state.interaction
    trigger = Trigger(kind="event", event={"name": handler, "in_queue": _position(ctx, conv, now)})
    result = run(program, state, trigger, facts_for(ctx, conv, message, state, now))
    outcome.add_run(result)
    if result.path:
        ctx.events.append(
            "flow_path", now, conv.id, {"version": program.graph.version, "nodes": result.path}
        )
    # What the block changed is kept; where the flow waits is not the block's to change.
    changed = result.state
    state.variables, state.records = changed.variables, changed.records
    state.interaction = changed.interaction
    conv.flow_state = state.to_json()
    ended = [e for e in result.effects if isinstance(e, fx.EndFlow) and not _implicit(program, e)]
    others = [e for e in result.effects if not isinstance(e, fx.EndFlow)]
    apply_effects(ctx, conv, state, others, now, outcome)
    if ended:
        notices(ctx, ctx.acd.withdraw(conv.id, now), now, outcome, conv)
        conv.status = "open"
        stop_waiting(conv, ended[0].reason or "ended while queued")
        apply_effects(ctx, conv, state, ended, now, outcome)
    elif (changed.interaction.priority, changed.interaction.skills) != (
        before.priority,
        before.skills,
    ):
        _reroute(ctx, conv, changed.interaction.skills, before.skills, changed, now, outcome)


def _reroute(
    ctx: EngineContext,
    conv: ConversationView,
    skills: dict[str, int | None],
    before: dict[str, int | None],
    changed: FlowState,
    now: datetime,
    outcome: Outcome,
) -> None:
    """The block changed the priority or skills: the same queue asked again (the conversation
    keeps its place and wait); an agent who takes it at once resumes the flow's wait."""
    routing = conv.routing
    asked = routing.get("skills") or {}
    wanted = {k: v for k, v in asked.items() if k not in before or k in skills}
    wanted.update({k: v for k, v in skills.items() if k not in before})
    effect = fx.RouteToQueue(
        step="in_queue",
        queue=conv.queue or "",
        skills=[{"skill": k, "min": v} for k, v in wanted.items()],
        language=routing.get("language"),
        priority=changed.interaction.priority,
        preferred_agents=[
            {"agent": agent, "score": score}
            for agent, score in routing.get("preferred_agents") or []
        ],
        prefer_last_agent=routing.get("last_agent") is not None,
        timeout_seconds=routing.get("timeout_seconds"),
        agent_steps=[{"condition": c, "seconds": s} for c, s in routing.get("agent_steps") or []],
    )
    follow_up = route_again(ctx, conv, effect, now, outcome)
    if follow_up is not None:
        run_flow(ctx, conv, FlowState.from_json(conv.flow_state), follow_up, None, now, outcome)


def _position(ctx: EngineContext, conv: ConversationView, now: datetime) -> dict[str, Any]:
    """`in_queue`: the queue, the place in line and the estimated wait (the ACD's), the time
    waited; the two durations in whole minutes too (for texts)."""
    found = ctx.acd.queue_status(conv.queue, now, conv.id) if conv.queue else None
    if found is not None and found.position is None:
        found = None  # no longer waiting there (an agent has it): no place, no estimate
    entered = (conv.routing or {}).get("entered_at")
    estimate = found.estimated_wait if found is not None else None
    waited = now - datetime.fromisoformat(entered) if entered else None
    return {
        "queue": conv.queue,
        "position": found.position if found is not None else None,
        "estimated_wait": estimate,
        "estimated_minutes": None if estimate is None else ceil(estimate.total_seconds() / 60),
        "waited": waited,
        "waited_minutes": None if waited is None else int(waited.total_seconds() // 60),
    }


def _implicit(program: Program, effect: fx.EndFlow) -> bool:
    """The end of the block's last step, not an `end` written in it."""
    node = program.graph.nodes.get(effect.step)
    return node is not None and isinstance(node.args, ir.EndArgs) and node.args.implicit
