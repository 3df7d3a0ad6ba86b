"""AST expressions -> JSON trees that the runtime turns into Python callables.

Tree shapes: {"lit": value} (durations as {"dur": seconds}), {"path": [...]},
{"call": name, "args": [...]}, {"list": [...]}, {"un": op, "x": tree},
{"bin": op, "l": tree, "r": tree}, {"isset": tree, "neg": bool}, {"re": pattern, "x": tree}.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flowlang.language import ast


def to_tree(expr: ast.Expr) -> dict[str, Any]:
    if isinstance(expr, ast.Literal):
        if isinstance(expr.value, timedelta):
            return {"dur": int(expr.value.total_seconds())}
        return {"lit": expr.value}
    if isinstance(expr, ast.Path):
        return {"path": list(expr.parts)}
    if isinstance(expr, ast.Call):
        return {"call": expr.name, "args": [to_tree(a) for a in expr.args]}
    if isinstance(expr, ast.ListExpr):
        return {"list": [to_tree(i) for i in expr.items]}
    if isinstance(expr, ast.Unary):
        return {"un": expr.op, "x": to_tree(expr.operand)}
    if isinstance(expr, ast.IsSet):
        return {"isset": to_tree(expr.operand), "neg": expr.negated}
    if isinstance(expr, ast.Matches):
        return {"re": expr.pattern, "x": to_tree(expr.operand)}
    return {"bin": expr.op, "l": to_tree(expr.left), "r": to_tree(expr.right)}


def literal_value(literal: ast.Literal) -> Any:
    if isinstance(literal.value, timedelta):
        return int(literal.value.total_seconds())
    return literal.value
