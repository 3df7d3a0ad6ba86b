"""Ordered routing targets in the ACD: which agents a routing step's condition takes.

A condition comes from the flow as an expression tree on `agent.<attribute>` alone
(`flowlang.runtime.agent_steps`: the flow's own values in it are literals already), keyed by its
canonical JSON. It is compiled once per key into a predicate, and evaluated once per agent when
the pool of a requirement is built, never per routing decision. Its operators mean what they
mean in a flow (`flowlang.runtime.evaluate`): a comparison with a value that is not set is
false, numbers compare as numbers, `contains` looks in a list or (ignoring case) in a text.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowlang.acd.model import AgentProfile

Agent = dict[str, Any]
Value = Callable[[Agent], Any]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def agent_view(profile: AgentProfile) -> Agent:
    """What `agent.<attribute>` reads: the deployment's attributes and the built-in ones."""
    return {
        **profile.attributes,
        "id": profile.id,
        "languages": sorted(profile.languages),
        "skills": sorted(s for s, level in profile.skills.items() if level >= 1),
        "queues": sorted(profile.queues),
    }


def matches(condition: str | None, profile: AgentProfile) -> bool:
    """Whether the agent meets the step's condition (None: any agent does). A value the
    condition cannot use (an attribute of another type than declared) does not match."""
    if condition is None:
        return True
    try:
        return bool(_compiled(condition)(agent_view(profile)))
    except (TypeError, ValueError):
        return False


@lru_cache(maxsize=4096)
def _compiled(condition: str) -> Value:
    return _compile(json.loads(condition))


def _compile(tree: dict[str, Any]) -> Value:
    if "lit" in tree:
        value = tree["lit"]
        return lambda _agent: value
    if "dur" in tree:
        duration = timedelta(seconds=tree["dur"])
        return lambda _agent: duration
    if "list" in tree:
        items = [_compile(item) for item in tree["list"]]
        return lambda agent: [item(agent) for item in items]
    if "path" in tree:
        _agent_word, *names = tree["path"]
        return lambda agent: _read(agent, names)
    if "isset" in tree:
        inner, negated = _compile(tree["isset"]), bool(tree.get("neg"))
        return lambda agent: (inner(agent) in (None, "")) is negated
    if "un" in tree:
        operand = _compile(tree["x"])
        return lambda agent: not operand(agent)
    if "bin" in tree:
        return _binary(tree["bin"], _compile(tree["l"]), _compile(tree["r"]))
    raise ValueError(f"not an agent condition: {tree!r}")


def _read(agent: Agent, names: list[str]) -> Any:
    value: Any = agent
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _binary(op: str, left: Value, right: Value) -> Value:
    if op == "and":
        return lambda agent: bool(left(agent)) and bool(right(agent))
    if op == "or":
        return lambda agent: bool(left(agent)) or bool(right(agent))
    if op in ("==", "!="):
        negated = op == "!="
        return lambda agent: _equal(left(agent), right(agent)) is not negated
    if op in _ORDER:
        compare = _ORDER[op]
        return lambda agent: _ordered(compare, left(agent), right(agent))
    if op == "contains":
        return lambda agent: _contains(left(agent), right(agent))
    if op == "in":
        return lambda agent: _contains(right(agent), left(agent))
    raise ValueError(f"not an agent condition operator: {op!r}")


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def _ordered(compare: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, timedelta) or isinstance(b, timedelta):
        if not (isinstance(a, timedelta) and isinstance(b, timedelta)):
            raise TypeError("a duration compares with a duration")
        return compare(a, b)
    return compare(_number(a), _number(b))


def _number(value: Any) -> float:
    """A number from a number or its text, as a flow reads one; anything else does not match."""
    if isinstance(value, bool):
        raise TypeError("a yes/no is not a number")
    if isinstance(value, int | float):
        return value
    return float(str(value).strip())  # ValueError: not a number


def _contains(container: Any, item: Any) -> bool:
    if container is None or item is None:
        return False
    if isinstance(container, list | tuple):
        return item in container
    return str(item).casefold() in str(container).casefold()
