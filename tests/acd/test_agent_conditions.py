"""The ACD's agent conditions (`flowlang.acd.targets`) mean what the same expression means in a
flow (`flowlang.runtime.evaluate`): for any condition on agent attributes and any agent, the
ACD's answer is the flow's (an expression the flow cannot evaluate, such as an ordered comparison
of a text, is an agent who does not match)."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from flowlang.acd.model import AgentProfile
from flowlang.acd.targets import agent_view, matches
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.agent_steps import canonical
from flowlang.runtime.evaluate import compile_expr

ATTRIBUTES = ("tier", "years", "remote", "regions")
VALUES = st.one_of(
    st.none(),
    st.sampled_from(["gold", "silver", "Gold", "uk", ""]),
    st.integers(-3, 12),
    st.floats(-3, 12, allow_nan=False),
    st.booleans(),
    st.lists(st.sampled_from(["uk", "ie", "gold"]), max_size=3),
)


def _literal(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {"list": [{"lit": v} for v in value]}
    return {"lit": value}


_ATTRIBUTE = st.sampled_from(ATTRIBUTES).map(lambda name: {"path": ["agent", name]})
_TEST = st.one_of(
    st.builds(
        lambda op, attribute, value, flip: {
            "bin": op,
            "l": _literal(value) if flip else attribute,
            "r": attribute if flip else _literal(value),
        },
        st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "contains"]),
        _ATTRIBUTE,
        VALUES,
        st.booleans(),
    ),
    st.builds(
        lambda attribute, values: {"bin": "in", "l": attribute, "r": _literal(values)},
        _ATTRIBUTE,
        st.lists(st.sampled_from(["gold", "uk", 3, True]), max_size=3),
    ),
    st.builds(lambda attribute, neg: {"isset": attribute, "neg": neg}, _ATTRIBUTE, st.booleans()),
)
CONDITION = st.recursive(
    _TEST,
    lambda inner: st.one_of(
        st.builds(lambda x: {"un": "not", "x": x}, inner),
        st.builds(
            lambda op, a, b: {"bin": op, "l": a, "r": b},
            st.sampled_from(["and", "or"]),
            inner,
            inner,
        ),
    ),
    max_leaves=4,
)
AGENT = st.builds(
    lambda attributes: AgentProfile("a1", frozenset({"Q"}), {"Loans": 2}, attributes=attributes),
    st.dictionaries(st.sampled_from(ATTRIBUTES), VALUES.filter(lambda v: v is not None)),
)


@settings(max_examples=600, deadline=None)
@given(CONDITION, AGENT)
@example(  # a list ordered against a list: no number, so no match (as in a flow)
    {"bin": "<", "l": {"path": ["agent", "regions"]}, "r": {"list": []}},
    AgentProfile("a1", attributes={"regions": []}),
)
def test_the_acd_decides_a_condition_as_the_flow_would(
    condition: dict[str, Any], agent: AgentProfile
) -> None:
    try:
        expected = bool(compile_expr(condition)({"agent": agent_view(agent)}))
    except (FlowRuntimeError, TypeError):
        expected = False
    assert matches(canonical(condition), agent) is expected
