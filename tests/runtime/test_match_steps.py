"""`match keywords` with many `when`s: the tests of the `when`s that do not match are passed
over in one step, and the run is exactly what running each test in turn gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.compiler import ir
from flowlang.compiler.ir import FlowGraph
from flowlang.runtime.interpreter import run
from flowlang.runtime.program import Program
from flowlang.runtime.state import FlowState, Trigger
from tests.runtime.helpers import facts, program

WHENS = 12


def _block(bodies: list[bool], otherwise: bool) -> Program:
    """`when "w<i>"` clauses, each logging "hit <i>" (or adding a skill when `bodies[i]` is
    False)."""
    lines = ["match keywords:"]
    for index, has_body in enumerate(bodies):
        lines.append(f'    when "w{index}":')
        lines.append(f'        log "hit {index}"' if has_body else f'        add skill "S{index}"')
    if otherwise:
        lines += ["    otherwise:", '        log "none"']
    lines.append('log "after"')
    return program("\n".join(lines))


def _reference_path(graph: FlowGraph, found: set[int]) -> list[str]:
    """The path as when every `when` test runs in turn and follows its edge."""
    path, position = [], "start/0"
    while position != "start/1":
        path.append(position)
        node = graph.nodes[position]
        args = node.args
        if isinstance(args, ir.MatchCaseArgs):
            position = node.edges["then" if args.index in found else "else"]
        elif isinstance(args, ir.MatchNoneArgs):
            position = node.edges["else" if found else "then"]
        else:
            position = node.edges["next"]
    return [*path, "start/1", "start/end"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=WHENS),
    st.booleans(),
    st.sets(st.integers(0, WHENS - 1)),
)
def test_passing_over_whens_gives_the_path_of_testing_each(
    bodies: list[bool], otherwise: bool, said: set[int]
) -> None:
    prog = _block(bodies, otherwise)
    text = " ".join(["hello", *(f"w{i}" for i in sorted(said)), "thanks"])
    result = run(prog, FlowState(), Trigger(kind="message", text=text), facts(text))
    found = {i for i in said if i < len(bodies)}
    assert result.path == _reference_path(prog.graph, found)
    logged = [line.detail for line in result.trace if line.detail.startswith("hit")]
    assert logged == [f"hit {i}" for i in sorted(found) if bodies[i]]


def test_a_message_matching_nothing_runs_otherwise_only() -> None:
    prog = _block([True] * 300, otherwise=True)
    result = run(prog, FlowState(), Trigger(kind="message", text="w300"), facts("w300"))
    assert [line.detail for line in result.trace] == [
        "no keyword matched",
        "none",
        "after",
        "end of state",
    ]
    assert len(result.path) == 1 + 300 + 1 + 1 + 2  # match, its tests, none, otherwise, after
