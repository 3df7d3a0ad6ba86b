"""What a dry-run did, for people and for tools: takes each sample event with the Engine's
outcome, gives the text report (`DryRunReport.render`: each event's path, replies sent and
blocked, ACD notices, deliveries that failed) and its JSON form (`to_dict`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flowlang.durations import format_duration
from flowlang.harness.samples import SampleEvent
from flowlang.runtime.delivery import FailedSend
from flowlang.runtime.engine import Outcome
from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.ports import RoutingNotice


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

    def blocked_count(self) -> int:
        """Replies the channel policy refused (not those the flow chose to skip or record when
        the window was closed): what makes `flowlang dry-run` exit 1."""
        return sum(d.status == "blocked" for s in self.steps for d in s.outcome.deliveries)

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


def describe(event: SampleEvent, info: dict[str, Any]) -> str:
    """One line for a sample event: who did what (`whatsapp message from Ana: 'Hi'`)."""
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
