"""Sample conversations (YAML) for dry-runs and flow tests: takes a sample file, or one test of a
test file, gives `Samples` (the events in time order), or a `SampleError` whose diagnostics say
where (line:col) and what.

A sample file lists conversations; each has a channel, a customer and timed events (customer
messages, posts and deletions, webhook payloads, bot outcomes, agent replies, transfers and
completions, agent availability). Times are absolute (ISO 8601) or relative to the previous event
(`+25h`), so windows and timeouts can be tried out. Positions come from the deployment loader's
position index (`config.positions`), so a sample's line:col is found as a deployment's is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from flowlang import codes
from flowlang.config.positions import PositionIndex, build
from flowlang.diagnostics import Diagnostic, Span, error
from flowlang.durations import parse_duration
from flowlang.errors import InputError
from flowlang.events import EventKind
from flowlang.runtime.ports import DataResult

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BOT_OUTCOMES = ("resolved", "escalate", "failure")

YamlPath = Sequence[str | int]
"""Keys and list positions from the top of a YAML file: `("conversations", 0, "events", 2)`."""


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


def read_yaml(path: Path) -> tuple[Any, PositionIndex]:
    """A YAML file's round-trip tree and the position of each of its keys and items; raises
    SampleError (FL701) when it cannot be read or is not YAML."""
    name = str(path)
    try:
        text = path.read_text("utf-8")
        data = YAML(typ="rt").load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise SampleError(
            f"cannot read {name}",
            [error(codes.BAD_SAMPLE_FILE, f"cannot read {name}: {exc}", Span.whole_file(name))],
        ) from exc
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        span = Span.from_yaml(name, mark.line, mark.column) if mark else Span.whole_file(name)
        raise SampleError(
            "bad YAML", [error(codes.BAD_SAMPLE_FILE, f"invalid YAML: {exc}", span)]
        ) from exc
    return data, build(data, text, name)


def load_samples(path: Path) -> Samples:
    """Read a sample file; raises SampleError with located diagnostics."""
    data, index = read_yaml(path)
    return SampleReader(index).read(data)


class SampleReader:
    """Reads sample conversations from a YAML tree whose positions `index` holds; `prefix` is
    where they sit in the file (a flow test's samples are one item of its `tests:` list)."""

    def __init__(self, index: PositionIndex, prefix: YamlPath = ()) -> None:
        self.name = index.filename
        self.index = index
        self.prefix = tuple(prefix)
        self.folder = Path(self.name).parent
        self.problems: list[Diagnostic] = []

    def span(self, path: YamlPath) -> Span:
        """Where the key or item at `path` (below the prefix) is written."""
        return self.index.key_span((*self.prefix, *path))

    def fail(self, message: str, path: YamlPath, hint: str = "") -> None:
        self.problems.append(error(codes.BAD_SAMPLE_FIELD, message, self.span(path), hint=hint))

    def read(self, data: Any) -> Samples:
        if not isinstance(data, dict) or "conversations" not in data:
            self.fail("a sample file needs a 'conversations:' list", ())
            raise SampleError("bad samples", self.problems)
        clock = _parse_time(data.get("start")) or DEFAULT_START
        events: list[SampleEvent] = []
        conversations: dict[str, dict[str, Any]] = {}
        for index, conv in enumerate(data["conversations"] or []):
            at_conv = ("conversations", index)
            if not isinstance(conv, dict):
                self.fail("each conversation is a mapping", at_conv)
                continue
            label = str(conv.get("name") or f"conversation {index + 1}")
            if "channel" not in conv:
                self.fail(f"{label}: missing 'channel'", at_conv)
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
                at_event = (*at_conv, "events", position)
                if isinstance(item, dict) and "webhook" in item:
                    channel = conversations[label]["channel"]
                    arrived = self._webhook(item, at_event, label, channel, previous)
                    self._same_customer(conversations[label], arrived, conv, at_event)
                    events.extend(arrived)
                    previous = arrived[-1].at if arrived else previous
                    continue
                parsed = self._event(item, at_event, label, previous)
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

    def _at(self, item: dict[str, Any], at_event: YamlPath, previous: datetime) -> datetime | None:
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
                (*at_event, "at"),
                hint="write an ISO time like 2026-01-05T09:00:00Z or +10m",
            )
            return None

    def _same_customer(
        self,
        info: dict[str, Any],
        arrived: list[SampleEvent],
        conv: dict[str, Any],
        at_event: YamlPath,
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
                    (*at_event, "webhook"),
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
        self,
        item: dict[str, Any],
        at_event: YamlPath,
        label: str,
        channel: str,
        previous: datetime,
    ) -> list[SampleEvent]:
        """`webhook: FILE` (relative to the sample file): a raw channel payload, normalised."""
        from flowlang.channels.inbound import PayloadError, normalise

        path = self.folder / str(item["webhook"])
        line = self.span((*at_event, "webhook")).line
        received = self._at(item, at_event, previous)
        if received is None:
            return []
        try:
            body = path.read_bytes()
        except OSError as exc:
            self.fail(f"cannot read webhook payload {path}: {exc.strerror}", (*at_event, "webhook"))
            return []
        try:
            inbound = normalise(channel, body, received_at=received)
        except PayloadError as exc:
            self.fail(
                f"{path}: {exc}", (*at_event, "webhook"), hint="the payload is the channel's own"
            )
            return []
        data = {"source": str(item["webhook"])}
        if item.get("at") is not None:  # `at:` replaces the time the payload gives
            inbound = [e.model_copy(update={"timestamp": received}) for e in inbound]
        return [
            SampleEvent(e.timestamp, label, "inbound", {**data, "event": e}, line) for e in inbound
        ]

    def _event(
        self, item: Any, at_event: YamlPath, label: str, previous: datetime
    ) -> SampleEvent | None:
        if not isinstance(item, dict):
            self.fail("an event is a mapping like {message: 'Hi'}", at_event)
            return None
        raw_at = item.get("at")
        at = self._at(item, at_event, previous)
        if at is None:
            return None
        line = self.span(at_event).line
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
                    (*at_event, "bot"),
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
                (*at_event, "privately"),
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
            at_event,
        )
        return None


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    # ruamel's TimeStamp (a datetime subclass) loses its zone when copied: keep a plain one.
    text = value.isoformat() if isinstance(value, datetime) else str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
