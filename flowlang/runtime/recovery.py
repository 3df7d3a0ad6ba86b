"""After a restart: the flows' timers rebuilt from the store, the routed conversations given
back to the ACD, the inbound events a crash left unprocessed processed, the outbox retried."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

from flowlang.events import InboundEvent
from flowlang.runtime import in_queue
from flowlang.runtime.context import EngineContext
from flowlang.runtime.flow_run import notices, request_from
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.timers import tick_acd


def recover(
    ctx: EngineContext, now: datetime | None, process: Callable[[InboundEvent], Outcome]
) -> list[Outcome]:
    """`Engine.recover`; `process` handles one accepted inbound event."""
    _rearm_timers(ctx)
    _restore_presence(ctx, now)
    outcomes = _restore_routing(ctx, now)
    pending = ctx.store.pending_inbound()
    outcomes += [process(InboundEvent.model_validate(p)) for p in pending]
    failed = ctx.deliverer.deliver_pending(now)
    if failed:
        outcomes.append(Outcome(event={"type": "deliver", "at": now}, failed_sends=failed))
    return outcomes


def rebuild(ctx: EngineContext, now: datetime | None) -> None:
    """The store undid work the in-memory state had done (a unit of work or a group that
    failed, or its commit): the flows' timers and the ACD are taken back from the store as a
    restart takes them (what the ACD decides on them, offers to agents free now, is a unit of
    work of its own). Events stored and not processed are the host's to process, as before."""
    now = ctx.now_or_clock(now, "rebuild")
    ctx.timers.clear()
    _rearm_timers(ctx)
    ctx.acd.reset()
    _restore_presence(ctx, now)
    _restore_routing(ctx, now)


def _rearm_timers(ctx: EngineContext) -> None:
    for deadline, conversation_id, timer in ctx.store.waiting_timers():
        ctx.start_timer(deadline, conversation_id, timer)


def _restore_presence(ctx: EngineContext, now: datetime | None) -> None:
    """Agents as they last set themselves (before any work is given back: nothing to hand
    out yet, so nothing is logged)."""
    at = now or datetime.now(UTC)
    for agent, state in ctx.store.agent_states().items():
        # ValueError: an agent no longer on the deployment, or a state it no longer takes.
        with suppress(ValueError):
            ctx.acd.set_agent_state(agent, state, at)


def _restore_routing(ctx: EngineContext, now: datetime | None) -> list[Outcome]:
    # Those an agent holds first: they take their agent's capacity before the queued ones
    # are offered (else an agent could be offered work beside what they already hold).
    routed = sorted(ctx.store.routed_conversations(), key=lambda c: c.status != "with_agent")
    if not routed:
        return []
    entered = [datetime.fromisoformat(c.routing["entered_at"]) for c in routed]
    resume_at = max(now, *entered) if now is not None else max(entered)
    outcome = Outcome(event={"type": "recover", "at": resume_at})

    def give_back() -> Outcome:
        for conv, entered_at in zip(routed, entered, strict=True):
            agent = conv.agent if conv.status == "with_agent" else None
            taken = ctx.acd.restore(request_from(conv), entered_at, agent, resume_at)
            notices(ctx, taken, resume_at, outcome)
            if conv.status == "queued":
                in_queue.arm(ctx, conv, resume_at)
        return tick_acd(ctx, resume_at, outcome)

    ctx.committed(give_back, resume_at)
    outcome.note = f"{len(routed)} routed conversation(s) given back to the ACD"
    return [outcome]
