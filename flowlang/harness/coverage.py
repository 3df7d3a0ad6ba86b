"""Test coverage of a flow: takes the nodes and edges a flow's tests passed, gives the steps
never reached and the branches never taken (`flowlang test --coverage`)."""

from __future__ import annotations

from typing import Any

from flowlang.project import Project

# Outcomes of the steps that wait for one; when a step handles all of them, its "next" edge (what
# an unhandled outcome falls through to) can never be taken and is not a branch to cover.
_OUTCOMES = {
    "recognize": {"known", "unknown"},
    "schedule": {"open", "closed", "holiday", "emergency"},
    "bot": {"resolved", "escalate", "failure", "timeout"},
    "data_action": {"success", "failure", "timeout", "not_found"},
    "ask": {"answer", "timeout"},
}


def _dead_fallthrough(node: Any, edge: str) -> bool:
    outcomes = _OUTCOMES.get(node.op)
    if edge != "next" or outcomes is None:
        return False
    return all(f"on:{o}" in node.edges for o in outcomes)


def coverage_of(project: Project, nodes: set[str], taken: set[tuple[str, str]]) -> dict[str, Any]:
    """Steps and branches of the project's flow, how many were reached, and which were not."""
    graph = project.graph
    # A task's `return` and a call's "next" edge are how a task without an outcome gets back
    # to its caller; outcomes jump straight to the caller's next step, so neither is a step or
    # branch an admin wrote.
    reachable = [
        n
        for n in graph.nodes.values()
        if n.op != "return" and (n.op != "end" or not n.args.get("implicit"))
    ]
    branches = [
        (n, name, target)
        for n in graph.nodes.values()
        for name, target in n.edges.items()
        if n.op
        in (
            "branch",
            "switch",
            "match",
            "match_case",
            "match_none",
            "recognize",
            "schedule",
            "ask",
            "bot",
            "data_action",
            "route_agent",
            "route_queue",
            "call",
            "loop_test",
        )
    ]
    branches = [
        b
        for b in branches
        if not _dead_fallthrough(b[0], b[1]) and not (b[0].op == "call" and b[1] == "next")
    ]
    untaken = [
        {"line": n.source.line, "branch": f"{n.op} -> {name}"}
        for n, name, target in branches
        if (n.id, target) not in taken
    ]
    unreached = [{"line": n.source.line, "step": n.op} for n in reachable if n.id not in nodes]
    return {
        "steps": len(reachable),
        "steps_reached": len(reachable) - len(unreached),
        "branches": len(branches),
        "branches_taken": len(branches) - len(untaken),
        "unreached": sorted(unreached, key=lambda i: i["line"]),
        "untaken": sorted(untaken, key=lambda i: i["line"]),
    }
