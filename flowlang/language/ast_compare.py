"""`ast` nodes -> the same nodes without positions, to compare two flows by structure only.

Two flows have the same structure when they differ only in where things were written: spans,
the literal text kept for the formatter (`Literal.source`, `Threading.source`) and comments.
The formatter's round-trip guarantee and its tests are stated with `same_structure`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, cast

from flowlang.diagnostics import Span

NO_SPAN = Span("", 0, 0, 0, 0)
"""The span every position is replaced with."""

_LAYOUT_FIELDS = frozenset({"source", "comments"})

T = TypeVar("T")


def strip_spans(node: T) -> T:
    """A copy of `node` (an AST node, or a tuple of them) with positions and layout erased."""
    return cast(T, _strip(node))


def same_structure(a: object, b: object) -> bool:
    """True when `a` and `b` are equal once positions and layout are ignored."""
    return bool(_strip(a) == _strip(b))


def _strip(value: Any) -> Any:
    if isinstance(value, Span):
        return NO_SPAN
    if isinstance(value, tuple):
        return tuple(_strip(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            current = getattr(value, f.name)
            if f.name == "span" or f.name.endswith("_span"):
                changes[f.name] = NO_SPAN  # also for an absent optional span (`else_span`)
            elif f.name.endswith("_spans"):
                changes[f.name] = ()  # `RouteQueue.option_spans`: one per option line
            elif f.name in _LAYOUT_FIELDS:
                changes[f.name] = "" if isinstance(current, str) else ()
            else:
                changes[f.name] = _strip(current)
        return dataclasses.replace(value, **changes)
    return value
