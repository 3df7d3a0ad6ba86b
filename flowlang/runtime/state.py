"""The serialisable state of one conversation's flow, and what a run is given.

`FlowState` is what the store keeps between events: the graph version the conversation started
on, where it is suspended and what it waits for, variables, the task call stack, and the
interaction being prepared for routing (skills, priority, language, data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, NamedTuple

WaitKind = Literal["answer", "bot", "agent", "queue", "data"]


_PLAIN = frozenset({str, int, float, bool, type(None)})


def encode_value(value: Any) -> Any:
    if value.__class__ in _PLAIN:  # most values: as they are, without the tests below
        return value
    if isinstance(value, dict):
        if not value:
            return {}
        plain = _PLAIN  # (a plain value is kept without a call for it)
        return {k: v if v.__class__ in plain else encode_value(v) for k, v in value.items()}
    if isinstance(value, timedelta):
        return {"$duration": value.total_seconds()}
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return {"$time": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    if value.__class__ in _PLAIN:
        return value
    if isinstance(value, dict):
        if len(value) == 1:  # a duration, a time or a date is a dictionary of one key
            if "$duration" in value:
                return timedelta(seconds=value["$duration"])
            if "$time" in value:
                return datetime.fromisoformat(value["$time"])
            if "$date" in value:
                return date.fromisoformat(value["$date"])
        plain = _PLAIN
        return {k: v if v.__class__ in plain else decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


class Frame(NamedTuple):
    """A task call in progress: which task, and the call step its outcome returns to."""

    task: str
    call_node: str


class Waiting(NamedTuple):
    """What a suspended flow waits for, at which step, until when, and the timer that ends it."""

    kind: WaitKind
    node: str
    deadline: datetime | None = None
    timer: str | None = None


@dataclass(slots=True)
class Interaction:
    """What routing will ask for: built up by add skill, set priority, set language, ..."""

    skills: dict[str, int | None] = field(default_factory=dict)
    priority: float = 0
    language: str | None = None
    participant_data: dict[str, Any] = field(default_factory=dict)
    conversation_data: dict[str, Any] = field(default_factory=dict)


def _new_interaction(
    skills: dict[str, int | None],
    priority: float,
    language: str | None,
    participant_data: dict[str, Any],
    conversation_data: dict[str, Any],
) -> Interaction:
    """`Interaction(...)` without the dataclass's `__init__`, which costs twice as much."""
    i = _new(Interaction)
    i.skills, i.priority, i.language = skills, priority, language
    i.participant_data, i.conversation_data = participant_data, conversation_data
    return i


_new = object.__new__

Status = Literal["new", "running", "waiting", "routed", "ended", "failed"]


@dataclass(slots=True)
class FlowState:
    """A plain dataclass (cheap to copy and change on the hot path); `to_json`/`from_json`
    give the JSON form the store keeps."""

    graph_version: str = ""
    status: Status = "new"
    position: str | None = None
    waiting: Waiting | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    stack: list[Frame] = field(default_factory=list)
    loops: dict[str, int] = field(default_factory=dict)
    matches: dict[str, list[int]] = field(default_factory=dict)
    interaction: Interaction = field(default_factory=Interaction)
    bot: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] = field(default_factory=dict)
    in_error_handler: bool = False
    timers: int = 0
    ended_reason: str | None = None
    message: dict[str, Any] = field(default_factory=dict)  # the message this run started on
    event: dict[str, Any] = field(default_factory=dict)  # the event an `on` block runs for

    @property
    def active(self) -> bool:
        return self.status in ("running", "waiting")

    @classmethod
    def fresh(cls, graph_version: str, variables: dict[str, Any]) -> FlowState:
        """A new conversation's state on `graph_version` with these `variables` (taken, not
        copied): `FlowState(graph_version=..., variables=...)`, made at half its cost, since
        every first message makes one (a test keeps the two equal)."""
        s = _new(cls)
        s.graph_version, s.status, s.position, s.waiting = graph_version, "new", None, None
        s.variables, s.records, s.stack, s.loops, s.matches = variables, {}, [], {}, {}
        s.interaction = _new_interaction({}, 0, None, {}, {})
        s.bot, s.error, s.in_error_handler, s.timers = {}, {}, False, 0
        s.ended_reason, s.message, s.event = None, {}, {}
        return s

    def clone(self) -> FlowState:
        """A copy whose containers can be changed without touching this one."""
        i = self.interaction
        interaction = _new_interaction(
            dict(i.skills),
            i.priority,
            i.language,
            dict(i.participant_data) if i.participant_data else {},
            dict(i.conversation_data) if i.conversation_data else {},
        )
        # empty containers (most of them, on most runs) are made afresh rather than copied;
        # every field is set here, as in `fresh` (a test compares a clone with its original)
        s = _new(FlowState)
        s.graph_version, s.status = self.graph_version, self.status
        s.position, s.waiting = self.position, self.waiting
        s.variables = dict(self.variables)
        s.records = {k: dict(v) for k, v in self.records.items()} if self.records else {}
        s.stack = list(self.stack) if self.stack else []
        s.loops = dict(self.loops) if self.loops else {}
        s.matches = dict(self.matches) if self.matches else {}
        s.interaction = interaction
        s.bot = dict(self.bot) if self.bot else {}
        s.error = dict(self.error) if self.error else {}
        s.in_error_handler, s.timers = self.in_error_handler, self.timers
        s.ended_reason = self.ended_reason
        s.message = dict(self.message) if self.message else {}
        s.event = dict(self.event) if self.event else {}
        return s

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (durations as {"$duration": seconds}, times as ISO text)."""
        waiting = None
        if self.waiting is not None:
            w = self.waiting
            waiting = {
                "kind": w.kind,
                "node": w.node,
                "timer": w.timer,
                "deadline": w.deadline.isoformat() if w.deadline else None,
            }
        i = self.interaction
        return {
            "graph_version": self.graph_version,
            "status": self.status,
            "position": self.position,
            "waiting": waiting,
            "variables": encode_value(self.variables) if self.variables else {},
            "records": encode_value(self.records) if self.records else {},
            "stack": [{"task": f.task, "call_node": f.call_node} for f in self.stack]
            if self.stack
            else [],
            "loops": dict(self.loops) if self.loops else {},
            "matches": dict(self.matches) if self.matches else {},
            "interaction": {
                "skills": dict(i.skills),
                "priority": i.priority,
                "language": i.language,
                "participant_data": encode_value(i.participant_data) if i.participant_data else {},
                "conversation_data": encode_value(i.conversation_data)
                if i.conversation_data
                else {},
            },
            "bot": encode_value(self.bot) if self.bot else {},
            "error": dict(self.error) if self.error else {},
            "in_error_handler": self.in_error_handler,
            "timers": self.timers,
            "ended_reason": self.ended_reason,
            "message": encode_value(self.message),
            **({"event": dict(self.event)} if self.event else {}),
        }

    @classmethod
    def resumes_at(cls, data: dict[str, Any] | None) -> FlowState:
        """Only where a stored state resumes, its version and what it waits for (the rest
        left at their defaults): what choosing its program reads, without decoding its values
        as `from_json` does."""
        if not data:
            return cls()
        return cls(data.get("graph_version", ""), waiting=_waiting(data.get("waiting")))

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> FlowState:
        if not data:
            return cls()
        waiting = _waiting(data.get("waiting"))
        i = data.get("interaction") or {}
        interaction = Interaction(
            dict(i.get("skills") or {}),
            i.get("priority", 0),
            i.get("language"),
            decode_value(i.get("participant_data") or {}),
            decode_value(i.get("conversation_data") or {}),
        )
        return cls(
            data.get("graph_version", ""),
            data.get("status", "new"),
            data.get("position"),
            waiting,
            decode_value(data.get("variables") or {}),
            decode_value(data.get("records") or {}),
            [Frame(f["task"], f["call_node"]) for f in data.get("stack") or []],
            dict(data.get("loops") or {}),
            dict(data.get("matches") or {}),
            interaction,
            decode_value(data.get("bot") or {}),
            dict(data.get("error") or {}),
            bool(data.get("in_error_handler")),
            int(data.get("timers") or 0),
            data.get("ended_reason"),
            decode_value(data.get("message") or {}),
            dict(data.get("event") or {}),
        )


def _waiting(w: dict[str, Any] | None) -> Waiting | None:
    if not w:
        return None
    deadline = datetime.fromisoformat(w["deadline"]) if w.get("deadline") else None
    return Waiting(w["kind"], w["node"], deadline, w.get("timer"))


@dataclass(slots=True)
class Trigger:
    """What happened, from the flow's point of view (built by the engine from events that
    were validated where they came in: a plain value, not validated again). Nothing changes
    a trigger once made (a run copies what it keeps); it is not frozen only because a frozen
    dataclass is made four times slower, once for every message."""

    kind: Literal["message", "bot", "agent", "queue", "data", "timer", "event"]
    text: str = ""
    outcome: str | None = None  # bot outcome, agent/queue result, data action status
    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    timer: str | None = None
    event: dict[str, Any] = field(default_factory=dict)  # kind "event": its name and details


ScheduleOracle = Callable[[str, datetime], str]
QueueOracle = Callable[[str, datetime], Any]
"""A queue's `QueueStatus` at a moment (`Acd.queue_status`); None: nothing known."""


@dataclass
class Facts:
    """Read-only facts the engine gives a run: the message, the customer, the conversation."""

    now: datetime
    message: dict[str, Any] = field(default_factory=dict)
    customer: dict[str, Any] = field(default_factory=dict)
    conversation: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    known_by: frozenset[str] = frozenset()
    schedule_state: ScheduleOracle = field(default=lambda _name, _now: "open")
    queue_status: QueueOracle = field(default=lambda _name, _now: None)
    # whether the deployment has a (kind, name): a routing target named by the flow's data
    known: Callable[[str, str], bool] = field(default=lambda _kind, _name: True)
    params: dict[str, Any] = field(default_factory=dict)  # environment overrides
    # what the conversation stored: "participant.<key>" / "conversation.<key>" -> value
    data: dict[str, Any] = field(default_factory=dict)
    # the names of the flows loaded beside this one (`transfer to flow`; empty: not known), and
    # the flows this event's transfers went through, the first first
    flows: frozenset[str] = frozenset()
    transfers: tuple[str, ...] = ()
