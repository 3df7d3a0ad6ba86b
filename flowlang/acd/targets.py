"""Ordered routing targets in the ACD: which agents a routing step's condition takes.

A condition comes from the flow as an expression tree on `agent.<attribute>` alone
(`flowlang.runtime.agent_steps`: the flow's own values in it are literals already), keyed by its
canonical JSON. It is compiled once per key by the flow's own expression compiler
(`flowlang.runtime.evaluate.compile_expr`, with the agent as the one name it reads), so its
operators mean what they mean in a flow, and evaluated once per agent when the pool of a
requirement is built, never per routing decision, on the agent's view kept with their profile
(`AgentProfile.view`, made once per profile). A value the flow could not use (an ordered
comparison of a text) is an agent who does not match. The commonest condition,
`agent.<attribute> == "<text>"`, is answered from an index of the agents by that attribute's
value (`attribute_equals`), testing no agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flowlang.errors import FlowRuntimeError
from flowlang.runtime.evaluate import Compiled, compile_expr

if TYPE_CHECKING:
    from flowlang.acd.model import AgentProfile

AGENT = "agent"


def agent_view(profile: AgentProfile) -> dict[str, Any]:
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
    return condition is None or matcher(condition)(profile)


def matcher(condition: str) -> Callable[[AgentProfile], bool]:
    """`matches` for one condition, compiled once: for testing many agents against it."""
    compiled = _compiled(condition)

    def test(profile: AgentProfile) -> bool:
        try:
            return bool(compiled(profile.scope))
        except (FlowRuntimeError, TypeError):
            return False

    return test


@lru_cache(maxsize=4096)
def _compiled(condition: str) -> Compiled:
    return compile_expr(json.loads(condition))


@lru_cache(maxsize=4096)
def attribute_equals(condition: str) -> tuple[str, str] | None:
    """(attribute, text) when the condition is `agent.<attribute> == "<text>"` (either way
    round): met by exactly the agents whose attribute is that text (the flow's `==` on a text
    is equality of texts, and a value of another type is never equal to one)."""
    tree = json.loads(condition)
    if not isinstance(tree, dict) or tree.keys() != {"bin", "l", "r"} or tree["bin"] != "==":
        return None
    for path, lit in ((tree["l"], tree["r"]), (tree["r"], tree["l"])):
        if not (isinstance(path, dict) and isinstance(lit, dict)):
            return None
        if path.keys() == {"path"} and lit.keys() == {"lit"}:
            names, text = path["path"], lit["lit"]
            if (
                isinstance(names, list)
                and len(names) == 2
                and names[0] == AGENT
                and isinstance(names[1], str)
                and type(text) is str
            ):
                return names[1], text
    return None
