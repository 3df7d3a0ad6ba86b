"""AST expressions -> JSON trees that the runtime turns into Python callables.

Tree shapes: {"lit": value} (durations as {"dur": seconds}), {"path": [...]},
{"call": name, "args": [...]}, {"list": [...]}, {"un": op, "x": tree},
{"bin": op, "l": tree, "r": tree}, {"isset": tree, "neg": bool}, {"re": pattern, "x": tree},
{"member": [names], "x": tree} (fields of a time or date), {"detect": tree, "among": [codes],
"fallback": code or null, "confidence": share} (`detect(...)`, its options worked out). Stored
data (`participant data "k"`) is the path ["participant_data", "k"].
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import assert_never

from flowlang.compiler.ir import ExprTree, Json
from flowlang.language import ast
from flowlang.language.check_detect import candidates, confidence, fallback

_LANGUAGES: ContextVar[tuple[str, ...]] = ContextVar("deployment_languages", default=())


@contextmanager
def deployment_languages(languages: tuple[str, ...]) -> Iterator[None]:
    """While a flow compiles: the languages a `detect(...)` without `among` chooses from (they
    are written into the graph, so the graph alone decides, and a change is a new version)."""
    token = _LANGUAGES.set(languages)
    try:
        yield
    finally:
        _LANGUAGES.reset(token)


def to_tree(expr: ast.Expr) -> ExprTree:
    match expr:
        case ast.Literal():
            key = "dur" if isinstance(expr.value, timedelta) else "lit"
            return {key: literal_value(expr)}
        case ast.Path():
            parts: list[Json] = list(expr.parts)
            return {"path": parts}
        case ast.Call():
            args: list[Json] = [to_tree(a) for a in expr.args]
            return {"call": expr.name, "args": args}
        case ast.ListExpr():
            items: list[Json] = [to_tree(i) for i in expr.items]
            return {"list": items}
        case ast.Unary():
            return {"un": expr.op, "x": to_tree(expr.operand)}
        case ast.IsSet():
            return {"isset": to_tree(expr.operand), "neg": expr.negated}
        case ast.Matches():
            return {"re": expr.pattern, "x": to_tree(expr.operand)}
        case ast.Binary():
            return {"bin": expr.op, "l": to_tree(expr.left), "r": to_tree(expr.right)}
        case ast.StoredData():
            return {"path": [f"{expr.scope}_data", expr.key]}
        case ast.Member():
            names: list[Json] = list(expr.names)
            return {"member": names, "x": to_tree(expr.base)}
        case ast.Detect():
            among: list[Json] = list(candidates(expr, _LANGUAGES.get()))
            return {
                "detect": to_tree(expr.text),
                "among": among,
                "fallback": fallback(expr),
                "confidence": confidence(expr),
            }
        case _:
            assert_never(expr)


def literal_value(literal: ast.Literal) -> Json:
    """A literal's JSON value; a duration is its whole seconds."""
    if isinstance(literal.value, timedelta):
        return int(literal.value.total_seconds())
    return literal.value
