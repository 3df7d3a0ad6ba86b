"""The names a flow's expressions and templates read, looked up live in a run's state and facts.

A run changes its variables, skills, priority and language step by step; looking names up where
they live (rather than copying them into a dict after each change) keeps every step cheap.
Precedence, highest first: flow variables, data action records, params, then the built-in names
(`message`, `customer`, `conversation`, `window`, `bot`, `error`, `event`, `interaction`,
`priority`, `language`, `participant_data`, `conversation_data`, and the run's clock for
`now()`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowlang.runtime.clock import NOW, QUEUES
from flowlang.runtime.state import Facts, FlowState


class StoredData(dict[str, str | None]):
    """Stored data as text; a key never stored is not set (None), also in templates."""

    def __missing__(self, key: str) -> None:
        return None


def stored_data(
    data: Mapping[str, Any], scope: str, written: Mapping[str, Any] | None = None
) -> StoredData:
    """What a conversation stored under `scope` ("participant" or "conversation") as the flow
    reads it: its `data` ("participant.<key>" -> value), then what this run `written`, as text."""
    prefix = f"{scope}."
    stored = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
    stored.update(written or {})
    return StoredData({k: _as_text(v) for k, v in stored.items()})


def _stored(scope: str) -> Callable[[FlowState, Facts], StoredData]:
    participant = scope == "participant"

    def read(state: FlowState, facts: Facts) -> StoredData:
        i = state.interaction
        return stored_data(
            facts.data, scope, i.participant_data if participant else i.conversation_data
        )

    return read


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _interaction(state: FlowState, facts: Facts) -> dict[str, Any]:
    i = state.interaction
    return {"priority": i.priority, "language": i.language, "skills": list(i.skills)}


_BUILT_IN: dict[str, Callable[[FlowState, Facts], Any]] = {
    "message": lambda _s, f: f.message,
    "customer": lambda _s, f: f.customer,
    "conversation": lambda _s, f: f.conversation,
    "window": lambda _s, f: f.window,
    "bot": lambda s, _f: s.bot,
    "error": lambda s, _f: s.error,
    "event": lambda s, _f: s.event,
    "in_queue": lambda s, _f: s.event.get("in_queue") or {},
    "interaction": _interaction,
    "priority": lambda s, _f: s.interaction.priority,
    "language": lambda s, _f: s.interaction.language,
    "participant_data": _stored("participant"),
    "conversation_data": _stored("conversation"),
    NOW: lambda _s, f: f.now,
    QUEUES: lambda _s, f: lambda name: f.queue_status(name, f.now),
}


class Scope:
    """A read-only view over one run's names, in its state `s`, facts and params: expressions
    and templates call `get`. A run's context is one (`RunContext`), so a run makes no
    separate object for its names."""

    __slots__ = ("facts", "params", "s")

    def __init__(self, state: FlowState, facts: Facts, params: dict[str, Any]) -> None:
        self.s = state
        self.facts = facts
        self.params = params

    def get(self, name: str, default: Any = None) -> Any:
        state = self.s
        variables = state.variables
        if name in variables:
            return variables[name]
        records = state.records
        if name in records:
            return records[name]
        params = self.params
        if name in params:
            return params[name]
        built_in = _BUILT_IN.get(name)
        if built_in is None:
            return default
        return built_in(state, self.facts)
