"""The serialisable state of one conversation's flow, and what a run is given.

`FlowState` is what the store keeps between events: the graph version the conversation started
on, where it is suspended and what it waits for, variables, the task call stack, and the
interaction being prepared for routing (skills, priority, language, data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer, field_validator

WaitKind = Literal["answer", "bot", "agent", "queue", "data"]


def encode_value(value: Any) -> Any:
    if isinstance(value, timedelta):
        return {"$duration": value.total_seconds()}
    if isinstance(value, dict):
        return {k: encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$duration"}:
            return timedelta(seconds=value["$duration"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


class Frame(BaseModel):
    task: str
    call_node: str


class Waiting(BaseModel):
    kind: WaitKind
    node: str
    deadline: datetime | None = None
    timer: str | None = None


class Interaction(BaseModel):
    """What routing will ask for: built up by add skill, set priority, set language, ..."""

    skills: dict[str, int | None] = Field(default_factory=dict)
    priority: float = 0
    language: str | None = None
    participant_data: dict[str, Any] = Field(default_factory=dict)
    conversation_data: dict[str, Any] = Field(default_factory=dict)


class FlowState(BaseModel):
    graph_version: str = ""
    status: Literal["new", "running", "waiting", "routed", "ended", "failed"] = "new"
    position: str | None = None
    waiting: Waiting | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    records: dict[str, dict[str, Any]] = Field(default_factory=dict)
    stack: list[Frame] = Field(default_factory=list)
    loops: dict[str, int] = Field(default_factory=dict)
    matches: dict[str, list[int]] = Field(default_factory=dict)
    interaction: Interaction = Field(default_factory=Interaction)
    bot: dict[str, Any] = Field(default_factory=dict)
    error: dict[str, Any] = Field(default_factory=dict)
    in_error_handler: bool = False
    timers: int = 0
    ended_reason: str | None = None

    @field_serializer("variables", "records", "bot")
    def _encode(self, value: dict[str, Any]) -> Any:
        return encode_value(value)

    @field_validator("variables", "records", "bot", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Any:
        return decode_value(value)

    @property
    def active(self) -> bool:
        return self.status in ("running", "waiting")


class Trigger(BaseModel):
    """What happened, from the flow's point of view."""

    kind: Literal["message", "bot", "agent", "queue", "data", "timer"]
    text: str = ""
    outcome: str | None = None  # bot outcome, agent/queue result, data action status
    intent: str | None = None
    slots: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    timer: str | None = None


ScheduleOracle = Callable[[str, datetime], str]


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
    params: dict[str, Any] = field(default_factory=dict)  # environment overrides
