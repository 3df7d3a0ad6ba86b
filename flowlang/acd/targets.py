"""Ordered routing targets in the ACD: which agents a routing step's condition takes.

A condition comes from the flow as an expression tree on `agent.<attribute>` alone
(`flowlang.runtime.agent_steps`: the flow's own values in it are literals already), keyed by its
canonical JSON. It is compiled once per key by the flow's own expression compiler
(`flowlang.runtime.evaluate.compile_expr`, with the agent as the one name it reads), so its
operators mean what they mean in a flow, and evaluated once per agent when the pool of a
requirement is built, never per routing decision, on the agent's view kept with their profile
(`AgentProfile.view`, made once per profile). A value the flow could not use (an ordered
comparison of a text) is an agent who does not match.
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
