"""A route step's `RouteToQueue` is made without validation (`RouteToQueue.trusted`): it must be
the effect pydantic's validation makes from the same parts, field by field, value and type."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import run
from flowlang.runtime.state import FlowState, Trigger
from tests.runtime.helpers import facts, program

names = st.text(min_size=1, max_size=8)
skills = st.lists(st.fixed_dictionaries({"skill": names, "min": st.none() | st.integers(0, 9)}))
agents = st.lists(st.fixed_dictionaries({"agent": st.none() | names, "score": st.integers(0, 100)}))
steps = st.lists(
    st.fixed_dictionaries({"condition": st.none() | names, "seconds": st.none() | st.integers(0)})
)


def assert_same(made: fx.RouteToQueue, validated: fx.RouteToQueue) -> None:
    assert made == validated
    assert list(vars(made)) == list(vars(validated))  # the same order: the same JSON
    for name, value in vars(validated).items():
        assert type(getattr(made, name)) is type(value), name
    assert made.model_dump_json() == validated.model_dump_json()
    with pytest.raises(Exception, match="frozen"):
        made.queue = "other"  # type: ignore[misc]


@given(
    step=names,
    line=st.integers(0, 999),
    queue=st.text(max_size=8),
    skills=skills,
    language=st.none() | names,
    priority=st.floats(allow_nan=False),
    preferred=agents,
    prefer_last=st.booleans(),
    timeout=st.none() | st.integers(0),
    agent_steps=steps,
)
def test_a_trusted_route_is_the_validated_one(
    step: str,
    line: int,
    queue: str,
    skills: list[dict[str, Any]],
    language: str | None,
    priority: float,
    preferred: list[dict[str, Any]],
    prefer_last: bool,
    timeout: int | None,
    agent_steps: list[dict[str, Any]],
) -> None:
    made = fx.RouteToQueue.trusted(
        step, line, queue, skills, language, priority, preferred, prefer_last, timeout, agent_steps
    )
    validated = fx.RouteToQueue(
        step=step,
        line=line,
        queue=queue,
        skills=skills,
        language=language,
        priority=priority,
        preferred_agents=preferred,
        prefer_last_agent=prefer_last,
        timeout_seconds=timeout,
        agent_steps=agent_steps,
    )
    assert_same(made, validated)


@pytest.mark.parametrize(
    "body",
    [
        'route to queue "Retail"',
        'set priority to 7\nroute to queue "Retail"',
        'add skill "Loans"\nset language to "es"\n'
        'route to queue "Retail":\n    skill "Cards" min 3',
        'route to queue "Retail":\n    priority 20\n    prefer agent "ana" score 80\n'
        "    prefer last agent\n    timeout 30m\n    on timeout:\n        end",
        'route to queue "Retail":\n    prefer agents where agent.tier == "gold" for 2m\n'
        "    then any agent",
    ],
)
def test_a_route_step_makes_the_validated_effect(body: str) -> None:
    """The effect a run makes is the one validating its own fields makes (a priority an int in
    the flow is a float in both)."""
    result = run(program(body), FlowState(), Trigger(kind="message", text="hi"), facts("hi"))
    (route,) = [e for e in result.effects if isinstance(e, fx.RouteToQueue)]
    fields = {k: v for k, v in vars(route).items() if k != "type"}
    assert_same(route, fx.RouteToQueue(**fields))
    assert type(route.priority) is float
