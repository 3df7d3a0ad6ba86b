"""`FlowState.fresh` and `FlowState.clone` set each field by hand (the dataclass's `__init__`
costs twice as much): they give exactly what the constructor gives, every field set, and a
clone shares no container with its original."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowlang.runtime.state import FlowState, Frame, Interaction, Waiting

_NAMES = st.text(alphabet="abxyz", min_size=1, max_size=5)
_PLAIN = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
_DICTS = st.dictionaries(_NAMES, _PLAIN, max_size=3)

_STATES = st.builds(
    FlowState,
    graph_version=st.text(max_size=6),
    status=st.sampled_from(["new", "running", "waiting", "routed", "ended", "failed"]),
    position=st.none() | _NAMES,
    waiting=st.none()
    | st.builds(
        Waiting,
        st.sampled_from(["answer", "bot", "agent", "queue", "data"]),
        _NAMES,
        st.none() | st.just(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
        st.none() | _NAMES,
    ),
    variables=_DICTS,
    records=st.dictionaries(_NAMES, _DICTS, max_size=2),
    stack=st.lists(st.builds(Frame, _NAMES, _NAMES), max_size=2),
    loops=st.dictionaries(_NAMES, st.integers(0, 9), max_size=2),
    matches=st.dictionaries(_NAMES, st.lists(st.integers(0, 9), max_size=3), max_size=2),
    interaction=st.builds(
        Interaction,
        st.dictionaries(_NAMES, st.none() | st.integers(1, 5), max_size=3),
        st.floats(0, 100),
        st.none() | _NAMES,
        _DICTS,
        _DICTS,
    ),
    bot=_DICTS,
    error=_DICTS,
    in_error_handler=st.booleans(),
    timers=st.integers(0, 9),
    ended_reason=st.none() | _NAMES,
    message=_DICTS,
    event=_DICTS,
)


@given(st.text(max_size=6), _DICTS)
def test_a_fresh_state_is_the_constructors(version: str, variables: dict[str, Any]) -> None:
    fresh = FlowState.fresh(version, dict(variables))
    assert fresh == FlowState(graph_version=version, variables=dict(variables))
    assert [f.name for f in fields(FlowState) if not hasattr(fresh, f.name)] == []
    assert [f.name for f in fields(Interaction) if not hasattr(fresh.interaction, f.name)] == []


def test_fresh_states_share_no_container() -> None:
    one, two = FlowState.fresh("v", {}), FlowState.fresh("v", {})
    one.records["r"] = {}
    one.stack.append(Frame("t", "n"))
    one.interaction.skills["Loans"] = None
    one.interaction.conversation_data["k"] = "v"
    assert two == FlowState(graph_version="v")


@given(_STATES)
def test_a_clone_equals_its_original_and_shares_no_container(state: FlowState) -> None:
    before = FlowState.from_json(state.to_json())
    clone = state.clone()
    assert clone == state
    assert [f.name for f in fields(FlowState) if not hasattr(clone, f.name)] == []
    clone.variables["new"] = 1
    clone.stack.append(Frame("t", "n"))
    clone.loops["new"] = 1
    clone.matches["new"] = [0]
    clone.bot["new"] = 1
    clone.error["new"] = 1
    clone.message["new"] = 1
    clone.event["new"] = 1
    clone.interaction.skills["new"] = None
    clone.interaction.participant_data["new"] = 1
    clone.interaction.conversation_data["new"] = 1
    for record in clone.records.values():
        record["new"] = 1
    assert FlowState.from_json(state.to_json()) == before
