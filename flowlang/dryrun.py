"""Dry-runs: sample conversations (YAML) through the real Engine, with a readable report.

A sample file lists conversations; each has a channel, a customer and timed events (customer
messages, posts and deletions, bot outcomes, agent replies, transfers and completions, agent
availability). Times are absolute (ISO 8601) or relative to the previous event (`+25h`), so
windows and timeouts can be tried out. Every event goes through `Engine.handle`, exactly as in
production; due timers fire before each event.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from flowlang.diagnostics import Diagnostic, Span, error
from flowlang.durations import format_duration, parse_duration
from flowlang.errors import InputError
from flowlang.events import (
    AgentAction,
    AgentEvent,
    Attachment,
    BotEvent,
    EventKind,
    InboundEvent,
    TimerEvent,
)
from flowlang.project import Project
from flowlang.runtime.delivery import FailedSend
from flowlang.runtime.engine import Engine, Outcome
from flowlang.runtime.memory import RecordingAdapter, ScriptedDataActions
from flowlang.runtime.ports import ConversationStore, DataResult, OutboundAdapter, RoutingNotice

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BOT_OUTCOMES = ("resolved", "escalate", "failure")


class SampleError(InputError):
    """A sample file that cannot be used; `diagnostics` say where and why."""


@dataclass
class SampleEvent:
    at: datetime
    conversation: str
    kind: str  # message | inbound (from a webhook payload) | bot | agent | agent_state | wait
    data: dict[str, Any]
    line: int


@dataclass
class Samples:
    path: str
    events: list[SampleEvent]
    conversations: dict[str, dict[str, Any]]
    data_actions: dict[str, DataResult] = field(default_factory=dict)
    agents_away: list[str] = field(default_factory=list)


_KINDS = {"message", "post", "comment", "delete", "edit", "postback", "close"}


def load_samples(path: Path) -> Samples:
    """Read a sample file; raises SampleError with located diagnostics."""
    name = str(path)
    try:
        text = path.read_text("utf-8")
        data = YAML(typ="rt").load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise SampleError(
            f"cannot read {name}",
            [error("FL701", f"cannot read {name}: {exc}", Span.whole_file(name))],
        ) from exc
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        span = Span.from_yaml(name, mark.line, mark.column) if mark else Span.whole_file(name)
        raise SampleError("bad YAML", [error("FL701", f"invalid YAML: {exc}", span)]) from exc
    return _Reader(name).read(data)


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.folder = Path(name).parent
        self.problems: list[Diagnostic] = []

    def span(self, node: Any, key: str | int | None = None) -> Span:
        lc = getattr(node, "lc", None)
        if lc is None:
            return Span.whole_file(self.name)
        if key is not None:
            try:
                line, col = lc.key(key) if isinstance(key, str) else lc.item(key)
                return Span.from_yaml(self.name, line, col)
            except (KeyError, IndexError, TypeError):
                pass
        return Span.from_yaml(self.name, lc.line, lc.col)

    def fail(self, message: str, node: Any, key: str | int | None = None, hint: str = "") -> None:
        self.problems.append(error("FL702", message, self.span(node, key), hint=hint))

    def read(self, data: Any) -> Samples:
        if not isinstance(data, dict) or "conversations" not in data:
            self.fail("a sample file needs a 'conversations:' list", data)
            raise SampleError("bad samples", self.problems)
        clock = _parse_time(data.get("start")) or DEFAULT_START
        events: list[SampleEvent] = []
        conversations: dict[str, dict[str, Any]] = {}
        for index, conv in enumerate(data["conversations"] or []):
            if not isinstance(conv, dict):
                self.fail("each conversation is a mapping", data["conversations"], index)
                continue
            label = str(conv.get("name") or f"conversation {index + 1}")
            if "channel" not in conv:
                self.fail(f"{label}: missing 'channel'", conv)
            customer = conv.get("customer") or {}
            conversations[label] = {
                "channel": str(conv.get("channel", "web")),
                "account": str(conv.get("account", "")),
                "sender": str(customer.get("id", f"customer-{index + 1}")),
                "phone": customer.get("phone"),
                "name": customer.get("name"),
            }
            previous = _parse_time(conv.get("start")) or clock
            for position, item in enumerate(conv.get("events") or []):
                if isinstance(item, dict) and "webhook" in item:
                    channel = conversations[label]["channel"]
                    arrived = self._webhook(item, label, channel, previous)
                    self._same_customer(conversations[label], arrived, conv, item)
                    events.extend(arrived)
                    previous = arrived[-1].at if arrived else previous
                    continue
                parsed = self._event(item, label, previous, conv.get("events"), position)
                if parsed is not None:
                    events.append(parsed)
                    previous = parsed.at
        data_actions = {}
        for action, result in (data.get("data_actions") or {}).items():
            result = result or {}
            data_actions[str(action)] = DataResult(
                str(result.get("status", "success")), dict(result.get("outputs") or {})
            )
        if self.problems:
            raise SampleError("bad samples", self.problems)
        events.sort(key=lambda e: e.at)
        away = [str(a) for a in (data.get("agents_away") or [])]
        return Samples(self.name, events, conversations, data_actions, away)

    def _at(self, item: dict[str, Any], previous: datetime) -> datetime | None:
        """The event's time: `at:` as an ISO time or +duration after the previous event."""
        raw_at = item.get("at")
        if raw_at is None:
            return previous
        text = str(raw_at)
        try:
            if text.startswith("+"):
                return previous + parse_duration(text[1:])
            return _parse_time(raw_at) or previous
        except ValueError as exc:
            self.fail(
                f"bad time {text!r}: {exc}",
                item,
                "at",
                hint="write an ISO time like 2026-01-05T09:00:00Z or +10m",
            )
            return None

    def _same_customer(
        self,
        info: dict[str, Any],
        arrived: list[SampleEvent],
        conv: dict[str, Any],
        item: dict[str, Any],
    ) -> None:
        """A conversation is one customer: its `message:` events come from the sender of its
        webhook payloads; a `customer: {id}` naming someone else is a mistake."""
        for sample in arrived:
            event = sample.data["event"]
            if event.kind is EventKind.RECEIPT or not event.sender_id:
                continue
            given = (conv.get("customer") or {}).get("id")
            if given is not None and str(given) != event.sender_id:
                self.fail(
                    f"the webhook payload comes from {event.sender_id!r}, but this "
                    f"conversation's customer is {str(given)!r}",
                    item,
                    "webhook",
                    hint="one conversation is one customer: drop customer.id, or set it to "
                    "the payload's sender",
                )
                return
            if info.get("from_webhook"):
                continue
            info.update(sender=event.sender_id, from_webhook=True)
            info["account"] = info["account"] or event.account
            info["phone"] = info["phone"] or event.sender_phone
            info["name"] = info["name"] or event.sender_name

    def _webhook(
        self, item: dict[str, Any], label: str, channel: str, previous: datetime
    ) -> list[SampleEvent]:
        """`webhook: FILE` (relative to the sample file): a raw channel payload, normalised."""
        from flowlang.channels.inbound import PayloadError, normalise

        path = self.folder / str(item["webhook"])
        line = self.span(item, "webhook").line
        received = self._at(item, previous)
        if received is None:
            return []
        try:
            body = path.read_bytes()
        except OSError as exc:
            self.fail(f"cannot read webhook payload {path}: {exc.strerror}", item, "webhook")
            return []
        try:
            inbound = normalise(channel, body, received_at=received)
        except PayloadError as exc:
            self.fail(f"{path}: {exc}", item, "webhook", hint="the payload is the channel's own")
            return []
        data = {"source": str(item["webhook"])}
        if item.get("at") is not None:  # `at:` replaces the time the payload gives
            inbound = [e.model_copy(update={"timestamp": received}) for e in inbound]
        return [
            SampleEvent(e.timestamp, label, "inbound", {**data, "event": e}, line) for e in inbound
        ]

    def _event(
        self, item: Any, label: str, previous: datetime, parent: Any, position: int
    ) -> SampleEvent | None:
        if not isinstance(item, dict):
            self.fail("an event is a mapping like {message: 'Hi'}", parent, position)
            return None
        raw_at = item.get("at")
        at = self._at(item, previous)
        if at is None:
            return None
        line = self.span(item).line
        for kind in ("message", "post", "comment", "delete", "edit", "postback", "close"):
            if kind in item:
                data = {
                    "kind": kind,
                    "text": str(item.get(kind) or ""),
                    "post_id": item.get("post_id"),
                    "attachments": item.get("attachments"),
                    "id": item.get("id"),
                }
                return SampleEvent(at, label, "message", data, line)
        if "bot" in item:
            if str(item["bot"]) not in BOT_OUTCOMES:
                self.fail(
                    f"a bot outcome is {', '.join(BOT_OUTCOMES)}, not {item['bot']!r}",
                    item,
                    "bot",
                    hint="a bot timeout is not an event: let time pass with `at: +20m` and `wait`"
                    if str(item["bot"]) == "timeout"
                    else "",
                )
                return None
            return SampleEvent(
                at,
                label,
                "bot",
                {
                    "outcome": str(item["bot"]),
                    "intent": item.get("intent"),
                    "slots": dict(item.get("slots") or {}),
                },
                line,
            )
        if "privately" in item and (not isinstance(item["privately"], bool) or "reply" not in item):
            self.fail(
                "`privately: true` marks an agent's reply private",
                item,
                "privately",
                hint="write it beside `reply:`, as true or false",
            )
            return None
        for action in ("accept", "decline", "reply", "transfer", "complete", "wrap_up"):
            if action in item:
                return SampleEvent(
                    at,
                    label,
                    "agent",
                    {
                        "action": action,
                        "value": item[action],
                        "agent": item.get("agent"),
                        "privately": item.get("privately") is True,
                    },
                    line,
                )
        for state in ("available", "away", "offline"):
            if state in item:
                return SampleEvent(
                    at, label, "agent_state", {"agent": str(item[state]), "state": state}, line
                )
        if "wait" in item or raw_at is not None:
            return SampleEvent(at, label, "wait", {}, line)
        self.fail(
            "unknown event: use message, post, comment, edit, delete, postback, close, webhook, "
            "bot, accept, decline, reply, transfer, complete, wrap_up, available, away, "
            "offline or wait",
            item,
        )
        return None


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    # ruamel's TimeStamp (a datetime subclass) loses its zone when copied: keep a plain one.
    text = value.isoformat() if isinstance(value, datetime) else str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class StepReport:
    event: SampleEvent
    outcome: Outcome
    label: str


@dataclass
class DryRunReport:
    steps: list[StepReport]
    sent: RecordingAdapter
    # messages an `--outbound` adapter did not take by the end of the run (given up on, or
    # still waiting for a retry): the last failure of each
    undelivered: list[FailedSend] = field(default_factory=list)

    def visited_nodes(self) -> set[str]:
        return {t.node for s in self.steps for t in s.outcome.trace if t.node != "-"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": [_step_dict(s) for s in self.steps],
            "not_delivered": [_failure_dict(f) for f in self.undelivered],
        }

    def render(self) -> str:
        lines: list[str] = []
        for step in self.steps:
            lines.append(f"[{step.event.at:%Y-%m-%d %H:%M}] {step.label}")
            lines.extend(f"    {t}" for t in step.outcome.trace)
            for delivery in step.outcome.deliveries:
                content = delivery.message.content
                shown = content.get("text") or content.get("name") or content.get("url") or ""
                who = delivery.message.sender
                if delivery.status in ("sent", "degraded"):
                    noted = delivery.status == "degraded" or delivery.reason_code == "private_reply"
                    extra = f" ({delivery.reason})" if noted else ""
                    lines.append(f"    -> {who} reply sent{extra}: {shown!r}")
                else:
                    lines.append(
                        f"    xx {who} reply {delivery.status} [{delivery.reason_code}]: "
                        f"{delivery.reason}"
                    )
                    if delivery.suggestion:
                        lines.append(f"       suggestion: {delivery.suggestion}")
            for failed in step.outcome.failed_sends:
                lines.append(f"    !! not delivered: {_failure_text(failed)}")
            for notice in step.outcome.notices:
                lines.append(f"    acd: {_notice_text(notice)}")
            if step.outcome.note:
                lines.append(f"    note: {step.outcome.note}")
            lines.append("")
        blocked = sum(len(s.outcome.blocked) for s in self.steps)
        summary = (
            f"{len(self.steps)} event(s), {len(self.sent.sent)} message(s) sent, "
            f"{blocked} blocked or held back"
        )
        if self.undelivered:
            summary += f", {len(self.undelivered)} not delivered by an --outbound adapter"
        lines.append(summary)
        return "\n".join(lines)


def _step_dict(step: StepReport) -> dict[str, Any]:
    o = step.outcome
    return {
        "at": step.event.at.isoformat(),
        "event": step.label,
        "conversation_id": o.conversation_id,
        "path": [
            {"line": t.line, "step": t.op, "node": t.node, "detail": t.detail} for t in o.trace
        ],
        "effects": [e.model_dump(mode="json") for e in o.effects],
        "deliveries": [
            {
                "status": d.status,
                "sender": d.message.sender,
                "content": d.message.content,
                "reason_code": d.reason_code,
                "reason": d.reason,
                "suggestion": d.suggestion,
            }
            for d in o.deliveries
        ],
        "acd": [{"kind": n.kind, "agent": n.agent, "queue": n.queue} for n in o.notices],
        "failed_sends": [_failure_dict(f) for f in o.failed_sends],
        "note": o.note,
        "refusal": (
            {
                "agent": o.refusal.agent,
                "action": o.refusal.action.value,
                "code": o.refusal.code,
                "reason": o.refusal.reason,
            }
            if o.refusal is not None
            else None
        ),
    }


def _failure_text(failed: FailedSend) -> str:
    then = (
        f"retried at {failed.retry_at:%Y-%m-%d %H:%M}"
        if failed.retry_at is not None
        else "given up on, kept in the dead letters"
    )
    return f"{failed.reason} (attempt {failed.attempts}; {then})"


def _failure_dict(failed: FailedSend) -> dict[str, Any]:
    return {
        "conversation_id": failed.message.conversation_id,
        "sender": failed.message.sender,
        "content": failed.message.content,
        "reason": failed.reason,
        "attempts": failed.attempts,
        "retry_at": failed.retry_at.isoformat() if failed.retry_at else None,
    }


def _undelivered(engine: Engine, steps: list[StepReport]) -> list[FailedSend]:
    """The last failure of each message that no retry delivered by the end of the run."""
    last = {f.message.message_id: f for s in steps for f in s.outcome.failed_sends}
    waiting = {p.message.get("message_id") for p in engine.deliverer.outbox.pending_outbound()}
    return [f for key, f in last.items() if f.retry_at is None or key in waiting]


def run_samples(
    project: Project,
    samples: Samples,
    store: ConversationStore | None = None,
    adapters: Sequence[OutboundAdapter] = (),
) -> DryRunReport:
    """Run every sample event through one Engine; returns what each did.

    With a `store` (a SqliteStore file) the run continues what earlier runs left there:
    customers, open conversations, history and waiting timers.
    """
    recorder = RecordingAdapter()
    parts: dict[str, Any] = {"store": store} if store is not None else {}
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
        steps.append(StepReport(event, outcome, _label(event, info)))
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


def _notice_text(notice: RoutingNotice) -> str:
    """`offered to frank in Overflow`, `accepted by alice in Retail Banking (waited 2m10s)`."""
    text = notice.kind.replace("_", " ")
    if notice.agent:
        text += f" {'to' if notice.kind == 'offered' else 'by'} {notice.agent}"
    if notice.queue:
        text += f" in {notice.queue}"
    details = []
    if "waited_seconds" in notice.data:
        details.append(
            f"waited {format_duration(timedelta(seconds=notice.data['waited_seconds']))}"
        )
    for key in ("reason", "ring", "wrap_up", "for_agent"):
        if notice.data.get(key) is not None:
            details.append(f"{key.replace('_', ' ')} {notice.data[key]}")
    return text + (f" ({', '.join(details)})" if details else "")


def _label(event: SampleEvent, info: dict[str, Any]) -> str:
    data = event.data
    if event.kind == "inbound":
        inbound = data["event"]
        who = inbound.sender_name or inbound.sender_id
        said = f": {inbound.text!r}" if inbound.text else ""
        extras = "".join(f" [{a.type}]" for a in inbound.attachments)
        return f"{inbound.channel} {inbound.kind.value} from {who}{said}{extras} ({data['source']})"
    who = info.get("name") or info["sender"]
    if event.kind == "message":
        return f"{info['channel']} {data['kind']} from {who}: {data['text']!r}"
    if event.kind == "bot":
        return f"bot outcome: {data['outcome']}" + (
            f" ({data['intent']})" if data.get("intent") else ""
        )
    if event.kind == "agent":
        value = data["value"]
        shown = (
            " ".join(f"{k}={v}" for k, v in value.items())
            if isinstance(value, dict)
            else repr(value)
        )
        action = f"{data['action']} privately" if data.get("privately") else data["action"]
        return f"agent {data.get('agent') or ''} {action}: {shown}".replace("  ", " ")
    if event.kind == "agent_state":
        return f"agent {data['agent']} is {data['state']}"
    return "time passes"
