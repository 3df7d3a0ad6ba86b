"""Ordered routing targets as the flow routes: each step's condition on `agent.<attribute>`
with everything else in it (customer data, variables, the language) evaluated now, so the ACD
gets a condition on the agent alone (`AgentStep`), the same for every agent it tests.

A condition is an expression tree (`flowlang.compiler.expressions`) whose only names are
`agent.<attribute>` paths; the values beside them are literals. Its canonical JSON (sorted
keys) is what the ACD keys its agent pools on, so two conversations that ask for the same
agents share one pool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from flowlang.compiler import ir
from flowlang.runtime.evaluate import Compiled, Env

AGENT = "agent"
Binder = Callable[[Env], ir.ExprTree]


def mentions_agent(tree: Any) -> bool:
    """Whether an expression tree reads `agent.<attribute>`."""
    if isinstance(tree, dict):
        path = tree.get("path")
        if isinstance(path, list) and path and path[0] == AGENT:
            return True
        return any(mentions_agent(v) for k, v in tree.items() if k != "path")
    if isinstance(tree, list):
        return any(mentions_agent(item) for item in tree)
    return False


def binder(tree: ir.ExprTree, compile_tree: Callable[[ir.ExprTree], Compiled]) -> Binder:
    """A function of the run's names giving `tree` with its agent-free parts as values;
    each such part is compiled once, here."""
    if not mentions_agent(tree):
        compiled = compile_tree(tree)
        return lambda env: literal(compiled(env))
    if "path" in tree:
        return lambda _env: tree
    parts: dict[str, Callable[[Env], Any]] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            parts[key] = binder(value, compile_tree)
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            items = [
                binder(v, compile_tree) if isinstance(v, dict) else (lambda _env, v=v: v)
                for v in value
            ]
            parts[key] = lambda env, items=items: [b(env) for b in items]  # type: ignore[misc]
        else:
            parts[key] = lambda _env, value=value: value  # type: ignore[misc]
    return lambda env: {key: part(env) for key, part in parts.items()}


def literal(value: Any) -> ir.ExprTree:
    """A value as an expression tree: a duration as seconds, a time or date as its text."""
    if isinstance(value, timedelta):
        return {"dur": int(value.total_seconds())}
    if isinstance(value, date):
        return {"lit": value.isoformat()}
    if isinstance(value, list | tuple):
        return {"list": [literal(v) for v in value]}
    if value is None or isinstance(value, str | int | float | bool):
        return {"lit": value}
    return {"lit": str(value)}


def canonical(tree: ir.ExprTree) -> str:
    """The condition's key: its JSON with sorted keys."""
    return json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
