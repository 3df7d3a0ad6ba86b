"""What a parsed template would do that the sandbox refuses, found before it ever runs.

Takes a template's Jinja2 syntax tree; gives the parts that read a private or internal attribute
(`''.__class__`, `x['_token']`, `map(attribute='__class__')`), the constant parts that make a
value beyond the sandbox's bounds (`'a' * 10**9`, `range(10**7)`, `'%999999999d' | format(1)`),
and the constant parts that always fail. Constant parts are worked out with the sandbox's own
bounded operators, so checking a template never does more work than the sandbox allows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes
from jinja2.nodes import EvalContext
from jinja2.sandbox import SandboxedEnvironment

from flowlang.errors import FlowError
from flowlang.templates.sandbox import (
    MAX_INT_BITS,
    MAX_LENGTH,
    TemplateLimitError,
    binop,
    bounded_range,
    check_method,
    check_size,
)
from flowlang.templates.sandbox import unsafe_attribute as _unsafe


@dataclass(frozen=True)
class TemplateProblem:
    line: int  # 1-based line inside the template source
    message: str
    column: int | None = None  # 1-based column inside that line, when the part is found there
    width: int = 1
    hint: str = ""


ATTRIBUTE_HINT = (
    "read the flow's values and their fields (customer.name, crm['segment']); names starting "
    "with _ and Python internals are never available"
)
LIMIT_HINT = (
    f"a template makes texts and lists of at most {MAX_LENGTH:,} characters or items and "
    f"numbers of at most {MAX_INT_BITS:,} bits"
)


@dataclass
class Findings:
    unsafe: list[TemplateProblem] = field(default_factory=list)
    failures: list[TemplateProblem] = field(default_factory=list)


# filters that read an attribute named by their (constant) arguments, dotted paths allowed
_ATTRIBUTE_FILTERS = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)


# text methods whose result can be much larger than the text: worked out, bounded, when constant
_GROWING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "join", "replace"})


class _NotConstant(FlowError):
    """The expression's value is not known until the template runs."""

    def __init__(self) -> None:
        super().__init__("not a constant")


def inspect(environment: SandboxedEnvironment, source: str, parsed: nodes.Template) -> Findings:
    """Every unsafe part of `parsed` (from `source`) and every constant part that fails."""
    found = Findings()
    lines = source.split("\n")
    searched_from: dict[tuple[int, str], int] = {}

    def unsafe(node: nodes.Node, what: str, needle: str) -> None:
        line = node.lineno or 1
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        start = searched_from.get((line, needle), 0)
        at = text.find(needle, start)
        searched_from[(line, needle)] = at + 1 if at >= 0 else start
        found.unsafe.append(
            TemplateProblem(
                line,
                f"{what} reads a private or internal attribute, which templates may not",
                at + 1 if at >= 0 else None,
                len(needle),
                ATTRIBUTE_HINT,
            )
        )

    for node in parsed.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr) and _unsafe(node.attr):
            unsafe(node, f"`.{node.attr}`", node.attr)
        elif isinstance(node, nodes.Getitem):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            # a mapping's item named like an internal (`x['mro']`) is data; `_x` never is
            if isinstance(key, str) and key.startswith("_"):
                unsafe(node, f"`[{key!r}]`", key)
        elif isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS:
            given = [*node.args, *(k.value for k in node.kwargs)]
            for arg in given:
                path = arg.value if isinstance(arg, nodes.Const) else None
                # read as items first, like `x['key']`: a private name is what is refused
                if isinstance(path, str) and any(p.startswith("_") for p in path.split(".")):
                    unsafe(node, f"`{node.name}` of {path!r}", path)

    found.unsafe.sort(key=lambda p: (p.line, p.column or 0))
    _walk(parsed, EvalContext(environment), found)
    return found


def _walk(node: nodes.Node, eval_ctx: EvalContext, found: Findings) -> None:
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Expr):
            line = child.lineno or 1
            try:
                _fold(child, eval_ctx)
                continue
            except _NotConstant:
                pass
            except TemplateLimitError as exc:
                found.unsafe.append(TemplateProblem(line, str(exc), hint=LIMIT_HINT))
                continue
            except Exception as exc:
                # e.g. `('x').name or y`: this part fails on every render
                found.failures.append(TemplateProblem(line, str(exc) or type(exc).__name__))
                continue
        _walk(child, eval_ctx, found)


def _fold(node: nodes.Node, eval_ctx: EvalContext) -> Any:
    """The value of a constant expression, worked out within the sandbox's bounds."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Name):  # never a constant (what `as_const` of a copy would say)
        raise _NotConstant
    if isinstance(node, nodes.BinExpr) and node.operator in ("**", "*", "+", "%"):
        return binop(node.operator, _fold(node.left, eval_ctx), _fold(node.right, eval_ctx))
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "range"
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    ):
        return bounded_range(*(_fold(arg, eval_ctx) for arg in node.args))
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr in _GROWING_METHODS
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    ):
        owner = _fold(node.node.node, eval_ctx)
        if not isinstance(owner, str):
            raise _NotConstant
        method = getattr(owner, node.node.attr)
        args = check_method(method, tuple(_fold(arg, eval_ctx) for arg in node.args), {})
        return check_size(method(*args), "the call's result")
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_fold(item, eval_ctx) for item in node.items]
        return check_size(items, "a list, mapping or text the template builds")
    if not isinstance(node, nodes.Expr):
        raise _NotConstant
    try:
        value = _with_constants(node, eval_ctx).as_const(eval_ctx)
    except nodes.Impossible as exc:
        if isinstance(exc.__cause__, TemplateLimitError):
            raise exc.__cause__ from None
        raise _NotConstant from None
    # its operands are within the bounds, so this is at most a few times the limit
    return check_size(value, "a list, mapping or text the template builds")


def _with_constants(node: nodes.Expr, eval_ctx: EvalContext) -> nodes.Expr:
    """A copy of `node` whose constant operands are folded (so Jinja2's `as_const` sees them)."""

    def folded(child: Any) -> Any:
        if isinstance(child, nodes.Keyword | nodes.Pair):
            helper = copy.copy(child)
            for name in helper.fields:
                setattr(helper, name, folded(getattr(helper, name)))
            return helper
        if not isinstance(child, nodes.Expr):
            return child
        try:
            return nodes.Const(_fold(child, eval_ctx), lineno=child.lineno)
        except _NotConstant:
            return child

    result = copy.copy(node)
    for name in node.fields:
        value = getattr(node, name)
        if isinstance(value, list):
            setattr(result, name, [folded(item) for item in value])
        else:
            setattr(result, name, folded(value))
    return result
