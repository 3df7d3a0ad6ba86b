"""`transfer to flow "Name"`, statically: the flow named must be one loaded beside this one
(FL131, where the loaded flows are known: validated, served or tested together) and not this
flow itself (FL324). The runtime's side is the `transfer_flow` step and `flow_run.py`."""

from __future__ import annotations

from flowlang import codes
from flowlang.diagnostics import Diagnostic, error, listing, suggest
from flowlang.language import ast


def transfer_problems(
    stmt: ast.TransferFlow, this_flow: str, loaded: frozenset[str]
) -> list[Diagnostic]:
    if stmt.flow == this_flow:
        return [
            error(
                codes.TRANSFER_TO_ITSELF,
                f"the flow {this_flow!r} transfers to itself",
                stmt.flow_span,
                "this flow",
                hint="to start this flow's first state again, use 'go to state'",
            )
        ]
    if not loaded or stmt.flow in loaded:
        return []
    others = sorted(loaded - {this_flow})
    otherwise = listing("flows", others) if others else "load it beside this one"
    return [
        error(
            codes.UNKNOWN_FLOW,
            f'no flow named "{stmt.flow}" is loaded beside this one',
            stmt.flow_span,
            "unknown flow",
            hint=suggest(stmt.flow, others, otherwise, show=lambda s: f'"{s}"'),
        )
    ]
