"""Effects: what a flow run asks the world to do, as plain serialisable values.

The interpreter only returns effects; the Engine applies them (dispatcher, ACD, bots, store).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Effect(BaseModel):
    model_config = ConfigDict(frozen=True)

    step: str = Field(description="id of the node that produced the effect")
    line: int = 0


class SendReply(_Effect):
    type: Literal["reply"] = "reply"
    content: dict[str, Any]
    visibility: Literal["default", "privately", "publicly"] = "default"
    guard: dict[str, Any] | None = None


class RouteToQueue(_Effect):
    type: Literal["route_queue"] = "route_queue"
    queue: str
    skills: list[dict[str, Any]] = Field(default_factory=list)
    language: str | None = None
    priority: float = 0
    preferred_agents: list[dict[str, Any]] = Field(default_factory=list)
    prefer_last_agent: bool = False
    timeout_seconds: int | None = None
    # ordered routing steps: {"condition": canonical JSON on agent.<attribute> or None,
    # "seconds": int or None}
    agent_steps: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def trusted(
        cls,
        step: str,
        line: int,
        queue: str,
        skills: list[dict[str, Any]],
        language: str | None,
        priority: float,
        preferred_agents: list[dict[str, Any]],
        prefer_last_agent: bool,
        timeout_seconds: int | None,
        agent_steps: list[dict[str, Any]],
    ) -> RouteToQueue:
        """The effect made without validation, for a route step whose parts the compiled graph
        and the run have already typed (every field given; validating cost about 7 % of a
        message). `model_construct` is slower than validating here: it inspects each default
        factory's signature on every call."""
        route = _new(cls)
        _set(
            route,
            "__dict__",
            {
                "step": step,
                "line": line,
                "type": "route_queue",
                "queue": queue,
                "skills": skills,
                "language": language,
                "priority": priority,
                "preferred_agents": preferred_agents,
                "prefer_last_agent": prefer_last_agent,
                "timeout_seconds": timeout_seconds,
                "agent_steps": agent_steps,
            },
        )
        _set(route, "__pydantic_fields_set__", set(_ROUTE_FIELDS))
        _set(route, "__pydantic_extra__", None)
        _set(route, "__pydantic_private__", None)
        return route


_new, _set = object.__new__, object.__setattr__
_ROUTE_FIELDS = frozenset(RouteToQueue.model_fields)


class RouteToAgent(_Effect):
    type: Literal["route_agent"] = "route_agent"
    agent: str | None = None
    last_agent: bool = False
    wait_seconds: int | None = None


class HandOffToBot(_Effect):
    type: Literal["bot"] = "bot"
    bot: str
    wait_seconds: int | None = None


class CallDataAction(_Effect):
    type: Literal["data_action"] = "data_action"
    action: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: int | None = None


class SplitTaken(_Effect):
    """A percentage split sent the conversation down `branch` (an event, counted in reports)."""

    type: Literal["split_taken"] = "split_taken"
    flow: str
    split: str
    branch: str


class MilestoneReached(_Effect):
    type: Literal["milestone"] = "milestone"
    flow: str
    milestone: str


class SetData(_Effect):
    type: Literal["set_data"] = "set_data"
    scope: Literal["participant", "conversation"]
    key: str
    value: Any


class LinkIdentity(_Effect):
    """A customer's identity: proven by a data action (`verified_by`), else only their claim."""

    type: Literal["link_identity"] = "link_identity"
    kind: str
    value: str
    verified_by: str | None = None


class SurveyAnswer(_Effect):
    """A customer's valid answer to one question of a survey: a rating (with its scale) or a
    comment."""

    type: Literal["survey_answer"] = "survey_answer"
    survey: str
    question: str
    kind: Literal["rating", "comment"]
    value: int | str
    low: int | None = None
    high: int | None = None


class MarkNotActionable(_Effect):
    type: Literal["not_actionable"] = "not_actionable"
    reason: str | None = None


class StartTimer(_Effect):
    type: Literal["timer"] = "timer"
    timer: str
    at: datetime


class EndFlow(_Effect):
    type: Literal["end"] = "end"
    reason: str | None = None


class TransferToFlow(_Effect):
    """`transfer to flow`: the conversation goes on in `flow` (from `source`), keeping its data."""

    type: Literal["transfer_flow"] = "transfer_flow"
    flow: str
    source: str


class LogMessage(_Effect):
    type: Literal["log"] = "log"
    message: str


class FlowFailed(_Effect):
    type: Literal["flow_error"] = "flow_error"
    code: str
    message: str
    file: str = ""
    column: int = 0


Effect = Annotated[
    SendReply
    | RouteToQueue
    | RouteToAgent
    | HandOffToBot
    | CallDataAction
    | SetData
    | LinkIdentity
    | SurveyAnswer
    | MarkNotActionable
    | StartTimer
    | EndFlow
    | LogMessage
    | FlowFailed
    | SplitTaken
    | MilestoneReached
    | TransferToFlow,
    Field(discriminator="type"),
]
