"""Driving the Engine with samples: takes a project and `Samples`, gives a `DryRunReport`.

Every event goes through `Engine.handle`, exactly as in production; due timers fire before each
event, at their own time.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from flowlang.events import (
    AgentAction,
    AgentEvent,
    Attachment,
    BotEvent,
    EventKind,
    InboundEvent,
    TimerEvent,
)
from flowlang.harness.report import DryRunReport, StepReport, describe
from flowlang.harness.samples import DEFAULT_START, SampleEvent, Samples
from flowlang.project import Project
from flowlang.runtime.delivery import FailedSend
from flowlang.runtime.engine import Engine, Outcome
from flowlang.runtime.memory import RecordingAdapter, ScriptedDataActions
from flowlang.runtime.ports import ConversationStore, OutboundAdapter
from flowlang.runtime.program import Program


def run_samples(
    project: Project,
    samples: Samples,
    store: ConversationStore | None = None,
    adapters: Sequence[OutboundAdapter] = (),
    progress: Callable[[int], None] | None = None,
    flows: Sequence[Program] = (),
) -> DryRunReport:
    """Run every sample event through one Engine; returns what each did. `progress` is told
    after each sample event (with 1) so a command can show how far the run is.

    With a `store` (a SqliteStore file) the run continues what earlier runs left there:
    customers, open conversations, history and waiting timers. `flows` are loaded beside the
    project's for `transfer to flow`; every conversation starts on the project's flow.
    """
    recorder = RecordingAdapter()
    parts: dict[str, Any] = {"store": store} if store is not None else {}
    if flows:
        name = project.graph.name
        parts["flows"] = list(flows)
        parts["choose_flow"] = lambda _programs, _channel, _account, _kind: name
    engine = project.engine(
        adapters=[recorder, *adapters],
        data_actions=ScriptedDataActions(samples.data_actions),
        **parts,
    )
    first_at = samples.events[0].at if samples.events else DEFAULT_START
    for agent in samples.agents_away:
        engine.set_agent_state(agent, "away", first_at)
    if store is not None:
        engine.recover(first_at)
    conv_ids: dict[str, str] = {}
    # A store remembers event ids (webhook retries are dropped), so each run numbers its own.
    counter: Iterator[str] = (
        (f"{uuid.uuid4().hex[:8]}-{n}" for n in itertools.count(1))
        if store is not None
        else (str(n) for n in itertools.count(1))
    )
    steps: list[StepReport] = []
    for event in samples.events:
        for outcome in engine.advance(event.at):
            fired = _when(outcome, event.at)
            timed = SampleEvent(fired, event.conversation, "timer", {}, event.line)
            label = "timer" if isinstance(outcome.event, TimerEvent) else "queue"
            steps.append(StepReport(timed, outcome, f"({label}) {outcome.note}".strip()))
        info = samples.conversations[event.conversation]
        outcome = _dispatch(engine, event, info, conv_ids, counter)
        if outcome.conversation_id:
            conv_ids[event.conversation] = outcome.conversation_id
        steps.append(StepReport(event, outcome, describe(event, info)))
        if progress is not None:
            progress(1)
    return DryRunReport(steps, recorder, _undelivered(engine, steps))


def _when(outcome: Outcome, default: datetime) -> datetime:
    """When a timer or queue outcome happened (its own deadline, not the next sample's time)."""
    event = outcome.event
    if isinstance(event, TimerEvent):
        return event.timestamp
    at = event.get("at") if isinstance(event, dict) else None
    return at if isinstance(at, datetime) else default


def _dispatch(
    engine: Engine,
    event: SampleEvent,
    info: dict[str, Any],
    conv_ids: dict[str, str],
    counter: Iterator[str],
) -> Outcome:
    data = event.data
    conversation_id = conv_ids.get(event.conversation, "")
    if event.kind == "inbound":
        return engine.handle(data["event"])
    if event.kind == "message":
        kind = {
            "message": EventKind.MESSAGE,
            "post": EventKind.POST,
            "comment": EventKind.COMMENT,
            "delete": EventKind.DELETE,
            "edit": EventKind.EDIT,
            "postback": EventKind.POSTBACK,
            "close": EventKind.CLOSE,
        }[data["kind"]]
        attachments = tuple(
            Attachment(type=str(a.get("type", "other")), url=a.get("url"))
            for a in data.get("attachments") or []
        )
        event_id = str(data.get("id") or f"sample-{next(counter)}")
        inbound = InboundEvent(
            event_id=event_id,
            channel=info["channel"],
            kind=kind,
            account=info["account"],
            sender_id=info["sender"],
            sender_phone=info["phone"],
            sender_name=info["name"],
            text=data["text"],
            attachments=attachments,
            post_id=data.get("post_id"),
            comment_id=event_id if kind is EventKind.COMMENT else None,
            timestamp=event.at,
        )
        return engine.handle(inbound)
    if event.kind == "bot":
        return engine.handle(
            BotEvent(
                event_id=f"bot-{next(counter)}",
                conversation_id=conversation_id,
                outcome=data["outcome"],
                intent=data.get("intent"),
                slots=data.get("slots", {}),
                timestamp=event.at,
            )
        )
    if event.kind == "agent":
        conv = engine.store.get_conversation(conversation_id)
        action = AgentAction(data["action"])
        value = data["value"]
        if action in (AgentAction.ACCEPT, AgentAction.DECLINE):
            agent = str(value)
        else:
            agent = (
                data.get("agent") or (conv.agent or conv.last_agent if conv else None) or "agent"
            )
        return engine.handle(
            AgentEvent(
                event_id=f"agent-{next(counter)}",
                conversation_id=conversation_id,
                agent_id=agent,
                action=action,
                text=str(value) if action is AgentAction.REPLY and isinstance(value, str) else "",
                visibility="privately" if data.get("privately") else "default",
                content=dict(value) if isinstance(value, dict) else {},
                transfer_queue=str(value) if action is AgentAction.TRANSFER else None,
                wrap_up=str(value)
                if action in (AgentAction.COMPLETE, AgentAction.WRAP_UP) and value is not None
                else None,
                timestamp=event.at,
            )
        )
    if event.kind == "agent_state":
        outcome = engine.set_agent_state(data["agent"], data["state"], event.at)
        outcome.conversation_id = conversation_id
        return outcome
    return Outcome(event=event, conversation_id=conversation_id, note="time passes")


def _undelivered(engine: Engine, steps: list[StepReport]) -> list[FailedSend]:
    """The last failure of each message that no retry delivered by the end of the run."""
    last = {f.message.message_id: f for s in steps for f in s.outcome.failed_sends}
    waiting = {p.message.get("message_id") for p in engine.deliverer.outbox.pending_outbound()}
    return [f for key, f in last.items() if f.retry_at is None or key in waiting]
