"""Running a conversation's flow and applying what it does: replies, routing, bot hand-offs,
data actions (answered at once, so the flow resumes in the same event), identity links and
timers; and the ACD's notices, which resume the flows that wait for them."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flowlang.events import EventKind, InboundEvent, media_type
from flowlang.runtime import effects as fx
from flowlang.runtime import in_queue
from flowlang.runtime.context import EngineContext
from flowlang.runtime.interpreter import run
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import AgentStep, ConversationView, RoutingNotice, RoutingRequest
from flowlang.runtime.program import Program
from flowlang.runtime.replies import send
from flowlang.runtime.state import Facts, FlowState, Trigger, Waiting

_log = logging.getLogger("flowlang.flow")
_new = object.__new__
_MESSAGE = EventKind.MESSAGE  # (read once: a member read from its enum is a look-up each time)


def resume(
    ctx: EngineContext, conversation_id: str, event: Any, now: datetime, trigger: Trigger
) -> Outcome:
    """Resume a conversation's flow with a trigger that is not a customer message (a bot's
    outcome, a timer); an unknown conversation is kept as a dead letter."""
    outcome = Outcome(event=event, conversation_id=conversation_id)
    conv = ctx.store.get_conversation(conversation_id)
    if conv is None:
        outcome.note = f"unknown conversation {conversation_id}"
        ctx.store.dead_letter(trigger.kind, {"conversation_id": conversation_id}, outcome.note, now)
        return outcome
    state = FlowState.from_json(conv.flow_state)
    timed_out = (
        state.waiting
        if trigger.kind == "timer"
        and state.waiting is not None
        and state.waiting.kind in ("queue", "agent")
        and state.waiting.timer == trigger.timer
        else None
    )
    run_flow(ctx, conv, state, trigger, None, now, outcome, timed_out)
    ctx.store.save_conversation(conv)
    return outcome


def run_event(
    ctx: EngineContext,
    conv: ConversationView,
    name: str,
    now: datetime,
    outcome: Outcome,
    **details: str | None,
) -> None:
    """Run the flow's `on <name>` block for `conv`, when its flow has one (`details`, e.g. the
    wrap-up code, are the block's `event` fields)."""
    state = FlowState.from_json(conv.flow_state)
    program = ctx.program_for(state, conv)
    if name not in program.graph.handlers:
        return
    event = {"name": name, "wrap_up": None, "agent": None, **details}
    state.message = {}  # no message started this run: the customer's next one will be `message`
    ctx.events.append("flow_event", now, conv.id, {"event": name})
    run_flow(ctx, conv, state, Trigger(kind="event", event=event), None, now, outcome)


def run_flow(
    ctx: EngineContext,
    conv: ConversationView,
    state: FlowState,
    trigger: Trigger,
    event: InboundEvent | None,
    now: datetime,
    outcome: Outcome,
    timed_out: Waiting | None = None,
) -> None:
    """Run the flow from `state` with `trigger` and apply its effects to `conv`."""
    starts_run = state.waiting is None and trigger.kind == "message"
    program = ctx.program_for(state, conv, event.kind if event is not None else None)
    chain: tuple[str, ...] = (program.graph.name,)
    facts = _facts(ctx, conv, event, state, now, starts_run, chain)
    started_on = facts.message if trigger.kind != "event" else {}
    path: list[str] = []
    for _round in range(100):  # data actions answer at once and resume the flow
        result = run(program, state, trigger, facts)
        if timed_out is not None:
            _time_out(ctx, conv, timed_out, result.effects, now, outcome)
            timed_out = None
        state = result.state
        state.message = started_on
        outcome.add_run(result)
        path.extend(result.path)
        conv.keep_state(state)
        follow_up = _apply(ctx, conv, state, result.effects, now, outcome)
        transfer = _transfer_in(result.effects)
        if transfer is not None:
            _flow_path(ctx, conv, program, path, now)
            program, state = _transferred(ctx, conv, transfer, state, now)
            chain, path = (*chain, program.graph.name), []
            state.message = started_on
            conv.keep_state(state)
            trigger = Trigger(kind="message", text=str(started_on.get("text") or ""))
            facts = _facts(ctx, conv, event, state, now, transfers=chain)
            continue
        if follow_up is None:
            break
        trigger = follow_up
        facts = _facts(ctx, conv, event, state, now, transfers=chain)
    _flow_path(ctx, conv, program, path, now)


def _transfer_in(effects: list[Any]) -> fx.TransferToFlow | None:
    for effect in effects:
        if isinstance(effect, fx.TransferToFlow):
            return effect
    return None


def _flow_path(
    ctx: EngineContext, conv: ConversationView, program: Program, path: list[str], now: datetime
) -> None:
    """The steps one flow's run passed, in the event log (for coverage and the reports)."""
    if path:
        ctx.events.append(
            "flow_path", now, conv.id, {"version": program.graph.version, "nodes": path}
        )


def _transferred(
    ctx: EngineContext,
    conv: ConversationView,
    transfer: fx.TransferToFlow,
    state: FlowState,
    now: datetime,
) -> tuple[Program, FlowState]:
    """The flow a `transfer to flow` names (its step checked it is loaded) and the state it
    starts from: its own, with what routing asks for (skills, priority, language, the data
    stored) kept from the flow it leaves."""
    target = ctx.flows[transfer.flow]
    _log.info(
        "conversation %s, line %d: transferred from flow %r to flow %r",
        conv.id,
        transfer.line,
        transfer.source,
        transfer.flow,
    )
    ctx.events.append(
        "flow_transferred", now, conv.id, {"from": transfer.source, "to": transfer.flow}
    )
    fresh = FlowState(graph_version=target.graph.version)
    fresh.interaction = state.clone().interaction
    return target, fresh


def _facts(
    ctx: EngineContext,
    conv: ConversationView,
    event: InboundEvent | None,
    state: FlowState,
    now: datetime,
    starts_run: bool = False,
    transfers: tuple[str, ...] = (),
) -> Facts:
    customer = ctx.customers.get(conv.id) or ctx.customer(conv.customer_id)
    open_, remaining = ctx.policy.window_open(conv, now)
    message = (
        _message_facts(conv, event) if starts_run or not state.message else dict(state.message)
    )
    accounts = ctx.ports.accounts
    if starts_run and event is not None:
        message["actionable"] = accounts.actionable(conv.channel, conv.account, event.text)
    params = ctx.params
    if by_account := accounts.params(conv.channel, conv.account):
        params = {**by_account, **ctx.params}  # the environment's values still win
    # `Facts(...)` with every field given, without the dataclass's `__init__` (twice the
    # cost; a test compares the two): a message's run, and each run it resumes, makes one
    facts = _new(Facts)
    facts.now, facts.message = now, message
    facts.customer = {
        "known": bool(customer.known_by),
        "new": customer.new,
        "id": customer.id,
        "name": customer.name,
        "phone": customer.phone,
    }
    facts.conversation = {
        "ongoing": conv.ongoing,
        "id": conv.id,
        "last_agent": conv.last_agent,
        "messages": conv.messages,
        "idle": now - conv.last_activity_at,
    }
    facts.window = {"open": open_, "remaining": remaining}
    facts.known_by = customer.known_by
    facts.schedule_state = ctx.ports.schedule_state
    facts.queue_status = ctx.acd.queue_status
    facts.known = ctx.ports.names
    facts.params, facts.data = params, conv.data
    facts.flows, facts.transfers = ctx.flow_names, transfers
    return facts


def _time_out(
    ctx: EngineContext,
    conv: ConversationView,
    waited: Waiting,
    effects: list[Any],
    now: datetime,
    outcome: Outcome,
) -> None:
    """A queue or agent wait timed out and the flow's `on timeout` has run (its effects not
    yet applied). The conversation stays in its queue, keeping its place and its wait, when
    the branch routes it to that queue again (`keep waiting` does); otherwise it leaves."""
    if waited.kind == "queue" and any(
        isinstance(e, fx.RouteToQueue) and e.queue == conv.queue for e in effects
    ):
        return
    ctx.events.append(
        "queue_timeout", now, conv.id, {"queue": conv.queue, "waiting_for": waited.kind}
    )
    notices(ctx, ctx.acd.withdraw(conv.id, now), now, outcome, conv)
    conv.status = "open"


def _apply(
    ctx: EngineContext,
    conv: ConversationView,
    state: FlowState,
    effects: list[Any],
    now: datetime,
    outcome: Outcome,
) -> Trigger | None:
    follow_up: Trigger | None = None
    for effect in effects:
        if isinstance(effect, fx.SendReply):
            send(
                ctx,
                conv,
                effect.content,
                "flow",
                effect.visibility,
                effect.guard,
                now,
                outcome,
                effect.step,
                effect.line,
            )
        elif isinstance(effect, fx.RouteToQueue):
            follow_up = _route_queue(ctx, conv, effect, now, outcome) or follow_up
        elif isinstance(effect, fx.RouteToAgent):
            agent = effect.agent or ""
            # Waiting for that one agent: not closed, and no longer with the last one. A
            # wait for one agent is not kept for a restart (no routing to restore).
            conv.status, conv.agent, conv.queue, conv.routing = "queued", None, None, {}
            ctx.events.append("agent_requested", now, conv.id, {"agent": agent})
            asked = ctx.acd.request_agent(
                conv.id,
                agent,
                ctx.ports.media_of(conv.channel, _MESSAGE),
                effect.wait_seconds,
                now,
            )
            follow_up = notices(ctx, asked, now, outcome, conv) or follow_up
        elif isinstance(effect, fx.HandOffToBot):
            conv.status = "bot"
            ctx.ports.bots.start(conv.id, effect.bot, {"customer": conv.customer_id})
            ctx.events.append("bot_started", now, conv.id, {"bot": effect.bot})
        elif isinstance(effect, fx.CallDataAction):
            result = ctx.ports.data_actions.call(
                effect.action, effect.inputs, effect.timeout_seconds
            )
            follow_up = Trigger(kind="data", outcome=result.status, outputs=result.outputs)
        elif isinstance(effect, fx.SetData):
            conv.data[f"{effect.scope}.{effect.key}"] = effect.value
        elif isinstance(effect, fx.LinkIdentity):
            _link(ctx, conv, effect, now)
        elif isinstance(
            effect, fx.SplitTaken | fx.MilestoneReached | fx.LogMessage | fx.SurveyAnswer
        ):
            _record(ctx, conv, effect, now)
        elif isinstance(effect, fx.StartTimer):
            ctx.start_timer(effect.at, conv.id, effect.timer)
        elif isinstance(effect, fx.MarkNotActionable):
            conv.status = "closed"
            ctx.events.append("not_actionable", now, conv.id, {"reason": effect.reason})
        elif isinstance(effect, fx.EndFlow):
            if conv.status not in ("with_agent", "queued"):
                conv.status = "closed"
            ctx.events.append("flow_ended", now, conv.id, {"reason": effect.reason})
        elif isinstance(effect, fx.FlowFailed):
            ctx.events.append(
                "flow_error",
                now,
                conv.id,
                {
                    "code": effect.code,
                    "message": effect.message,
                    "line": effect.line,
                    "file": effect.file,
                },
            )
    return follow_up


def _record(
    ctx: EngineContext,
    conv: ConversationView,
    effect: fx.SplitTaken | fx.MilestoneReached | fx.LogMessage | fx.SurveyAnswer,
    now: datetime,
) -> None:
    """A split branch taken or a milestone reached, in the event log for the flow reports; a
    flow's `log` line (or an unknown routing target's) in the `flowlang.flow` log; a survey
    answer (see _survey_answer)."""
    if isinstance(effect, fx.SurveyAnswer):
        _survey_answer(ctx, conv, effect, now)
    elif isinstance(effect, fx.LogMessage):
        _log.info("conversation %s, line %d: %s", conv.id, effect.line, effect.message)
    elif isinstance(effect, fx.SplitTaken):
        data = {"flow": effect.flow, "split": effect.split, "branch": effect.branch}
        ctx.events.append("split_taken", now, conv.id, data)
    else:
        data = {"flow": effect.flow, "milestone": effect.milestone}
        ctx.events.append("milestone", now, conv.id, data)


def _link(
    ctx: EngineContext, conv: ConversationView, effect: fx.LinkIdentity, now: datetime
) -> None:
    """A proven identity joins the customer to whoever has it; a claim only is recorded,
    so a stranger who types another customer's number sees none of their history."""
    if effect.verified_by:
        customer = ctx.store.link_identity(conv.customer_id, effect.kind, effect.value)
        conv.customer_id = customer.id
        ctx.customers[conv.id] = customer
        verified = True
    else:
        verified = not ctx.store.claim_identity(
            conv.customer_id, effect.kind, effect.value, conv.id, now
        )
    # What the agent is shown with the conversation: the value, and whether it is proven.
    conv.data[f"identity.{effect.kind}"] = {"value": effect.value, "verified": verified}
    ctx.events.append(
        "identity_linked" if verified else "identity_claimed",
        now,
        conv.id,
        {"kind": effect.kind, "verified_by": effect.verified_by},
    )


def _survey_answer(
    ctx: EngineContext, conv: ConversationView, effect: fx.SurveyAnswer, now: datetime
) -> None:
    """A survey answer: kept with the conversation (what agents and supervisors see) and in
    the event log (what the reports count)."""
    answer: dict[str, Any] = {"kind": effect.kind, "value": effect.value}
    if effect.kind == "rating":
        answer.update(low=effect.low, high=effect.high)
    conv.data[f"survey.{effect.survey}.{effect.question}"] = answer
    ctx.events.append(
        "survey_answer",
        now,
        conv.id,
        {
            "survey": effect.survey,
            "question": effect.question,
            "answer": effect.kind,  # `kind` is the log's own key: the event's kind
            "value": effect.value,
            "low": effect.low,
            "high": effect.high,
            "agent": conv.last_agent,
            "queue": conv.queue,
        },
    )


def _route_queue(
    ctx: EngineContext,
    conv: ConversationView,
    effect: fx.RouteToQueue,
    now: datetime,
    outcome: Outcome,
) -> Trigger | None:
    # Routed again to the queue it waits in: it keeps its place, and its wait counts on.
    entered_at = (
        conv.routing_entered_at()
        if conv.status == "queued" and conv.queue == effect.queue
        else None
    )
    again = entered_at is not None
    conv.status = "queued"
    conv.queue = effect.queue
    # (positional: a dataclass's `__init__` given keywords costs three times as much; most
    # routes name no skills, agents or steps, and no comprehension runs for those)
    request = RoutingRequest(
        conv.id,  # conversation_id
        effect.queue,  # queue
        ctx.ports.media_of(conv.channel, _MESSAGE),  # media
        {s["skill"]: s.get("min") for s in effect.skills} if effect.skills else {},  # skills
        effect.language,  # language
        effect.priority,  # priority
        (  # preferred_agents
            [(p["agent"], p.get("score")) for p in effect.preferred_agents]
            if effect.preferred_agents
            else []
        ),
        conv.last_agent if effect.prefer_last_agent else None,  # last_agent
        effect.timeout_seconds,  # timeout_seconds
        ctx.policy.window_closes_at(conv),  # window_closes_at
        (  # agent_steps
            tuple(AgentStep(s["condition"], s["seconds"]) for s in effect.agent_steps)
            if effect.agent_steps
            else ()
        ),
    )
    conv.keep_routing(request, entered_at or now)
    ctx.events.append(
        "queued",
        now,
        conv.id,
        {
            "queue": effect.queue,
            "skills": list(request.skills),
            "priority": effect.priority,
            "channel": conv.channel,
        },
    )
    found = notices(ctx, ctx.acd.enqueue(request, now), now, outcome, conv)
    if not again and conv.status == "queued":
        in_queue.arm(ctx, conv, now)
    return found


def route_again(
    ctx: EngineContext,
    conv: ConversationView,
    effect: fx.RouteToQueue,
    now: datetime,
    outcome: Outcome,
) -> Trigger | None:
    """Route a conversation to a queue as the flow's `route to queue` does (one that waits
    in that queue keeps its place)."""
    return _route_queue(ctx, conv, effect, now, outcome)


def apply_effects(
    ctx: EngineContext,
    conv: ConversationView,
    state: FlowState,
    effects: list[Any],
    now: datetime,
    outcome: Outcome,
) -> Trigger | None:
    """Apply a run's effects to `conv` (what `run_flow` does after each run)."""
    return _apply(ctx, conv, state, effects, now, outcome)


def facts_for(
    ctx: EngineContext,
    conv: ConversationView,
    event: InboundEvent | None,
    state: FlowState,
    now: datetime,
) -> Facts:
    """What a run knows: `message` is `event`'s when given, else the state's."""
    return _facts(ctx, conv, event, state, now, starts_run=event is not None)


def notices(
    ctx: EngineContext,
    found: list[RoutingNotice],
    now: datetime,
    outcome: Outcome,
    current: ConversationView | None = None,
) -> Trigger | None:
    """Apply ACD notices; a notice about `current` comes back as a trigger to run."""
    follow_up: Trigger | None = None
    for notice in found:
        outcome.notices.append(notice)
        conv = (
            current
            if current is not None and current.id == notice.conversation_id
            else ctx.store.get_conversation(notice.conversation_id)
        )
        if conv is None:
            continue
        ctx.events.append(
            notice.kind,
            notice.at or now,
            conv.id,
            {"agent": notice.agent, "queue": notice.queue, **notice.data},
        )
        if notice.kind == "accepted":
            conv.status = "with_agent"
            conv.agent = conv.last_agent = notice.agent
            outcome_of = "routed"
        elif notice.kind == "agent_unavailable":
            conv.status = "open"
            outcome_of = "unavailable"
        else:
            _apply_notice(conv, notice)
            if notice.kind == "disconnected":
                run_event(ctx, conv, "agent disconnected", now, outcome, agent=notice.agent)
            if conv is not current:
                ctx.store.save_conversation(conv)
            continue
        # What the flow waits for, without decoding the rest of its state.
        waiting = conv.waiting()
        if waiting is None:
            if conv is not current:
                ctx.store.save_conversation(conv)
            continue
        if waiting.kind in ("agent", "queue"):
            trigger = _ROUTING_TRIGGERS[waiting.kind, outcome_of]
        elif notice.kind == "accepted" and conv.queue and notice.queue:
            trigger = _ROUTING_TRIGGERS["queue", outcome_of]
        else:
            trigger = _ROUTING_TRIGGERS["agent", outcome_of]
        if conv is current:
            follow_up = trigger
        else:
            run_flow(ctx, conv, conv.state(), trigger, None, now, outcome)
            ctx.store.save_conversation(conv)
    return follow_up


# A trigger holds nothing a run changes (it copies what it keeps): these are shared.
_ROUTING_TRIGGERS = {
    (kind, result): Trigger(kind=kind, outcome=result)
    for kind in ("agent", "queue")
    for result in ("routed", "unavailable")
}


def _apply_notice(conv: ConversationView, notice: RoutingNotice) -> None:
    """What an ACD notice other than accepted / agent_unavailable changes."""
    if notice.kind == "requeued":
        conv.status, conv.agent = "queued", None
    elif notice.kind == "after_call_work":
        conv.wrap_up_agent = notice.agent
    elif notice.kind == "wrap_up_ended":
        conv.wrap_up_agent = None
    elif notice.kind in ("expired", "disconnected"):
        conv.status, conv.agent = "closed", None
        stop_waiting(conv, notice.kind)


def customer_wrote_while_routed(ctx: EngineContext, conv: ConversationView, now: datetime) -> None:
    """The customer wrote to a conversation that is queued or with an agent: the ACD's
    inactivity clock starts again and the reply window it expires the conversation at moves with
    the message; the stored request keeps the new window for a restart (`request_from`)."""
    closes = ctx.policy.window_closes_at(conv)
    ctx.acd.customer_activity(conv.id, now, closes)
    if conv.routing and closes is not None:
        conv.routing["window_closes_at"] = closes.isoformat()


def stop_waiting(conv: ConversationView, reason: str) -> None:
    """End a flow that waits for something that can no longer come; its timers lapse."""
    state = FlowState.from_json(conv.flow_state) if conv.flow_state else None
    if state is not None and state.waiting is not None:
        state.waiting = None
        state.status, state.ended_reason = "ended", reason
        conv.flow_state = state.to_json()


def request_from(conv: ConversationView) -> RoutingRequest:
    """The routing request a conversation stored (an ACD takes it back after a restart)."""
    data = conv.routing
    closes = data.get("window_closes_at")
    return RoutingRequest(
        conversation_id=conv.id,
        queue=data.get("queue") or conv.queue or "",
        media=data.get("media") or media_type(conv.channel),
        skills=dict(data.get("skills") or {}),
        language=data.get("language"),
        priority=data.get("priority") or 0,
        preferred_agents=[(a, s) for a, s in data.get("preferred_agents") or []],
        last_agent=data.get("last_agent"),
        timeout_seconds=data.get("timeout_seconds"),
        window_closes_at=datetime.fromisoformat(closes) if closes else None,
        agent_steps=tuple(AgentStep(c, s) for c, s in data.get("agent_steps") or []),
    )


def _message_facts(conv: ConversationView, event: InboundEvent | None) -> dict[str, Any]:
    """`message` in a flow is the customer message that started this run of the flow: answers
    to `ask` go into their variable, and a run resumed by a bot, agent or timer still sees it
    (kept in the flow state)."""
    if event is None:
        return {"channel": conv.channel, "account": conv.account, "actionable": True}
    return {
        "channel": conv.channel,
        "account": conv.account,
        "actionable": True,
        "text": event.text,
        "kind": _FLOW_KINDS[event.kind],
        "has_attachment": bool(event.attachments),
        "sender_name": event.sender_name,
        "postback": event.postback,
        "post_id": event.post_id,
        "data": event.data or {},
    }


_FLOW_KINDS = {
    kind: "message" if kind in (EventKind.MESSAGE, EventKind.POSTBACK) else kind.value
    for kind in EventKind
}
