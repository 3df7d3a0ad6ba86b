"""The names a flow's expressions and templates read, looked up live in a run's state and facts.

A run changes its variables, skills, priority and language step by step; looking names up where
they live (rather than copying them into a dict after each change) keeps every step cheap.
Precedence, highest first: flow variables, data action records, params, then the built-in names
(`message`, `customer`, `conversation`, `window`, `bot`, `error`, `interaction`, `priority`,
`language`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowlang.runtime.state import Facts, FlowState


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
    "interaction": _interaction,
    "priority": lambda s, _f: s.interaction.priority,
    "language": lambda s, _f: s.interaction.language,
}


class Scope:
    """A read-only view over one run's names: expressions and templates call `get`."""

    __slots__ = ("facts", "params", "state")

    def __init__(self, state: FlowState, facts: Facts, params: dict[str, Any]) -> None:
        self.state = state
        self.facts = facts
        self.params = params

    def get(self, name: str, default: Any = None) -> Any:
        state = self.state
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
