"""The sandbox reply templates run in: Python's internals out of reach and every size bounded.

Jinja2's immutable sandbox, tightened for reply texts. Names starting with `_` and Python
internals are never read; `str.format` is refused (a customer's text could be its format). Every
operation that can make a value much larger than its inputs is bounded before it runs: `**`,
repetition (`*`), concatenation (`+`), `%` formatting and its widths, `range`, the filters that
take a size, loops and calls (a step budget per render), each value written out and the whole
text. Nothing is evaluated while a template compiles: the optimizer is off and the output's
finalizer needs the render's context, so Jinja2 folds no constant part at load time.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
)
from jinja2.visitor import NodeTransformer

from flowlang.errors import FlowError

MAX_LENGTH = 100_000
"""Characters of a text, items (nested ones counted) of a list or mapping a template makes."""
MAX_INT_BITS = 4_096
"""Bits of a number a template computes (about 1,200 digits)."""
MAX_STEPS = 100_000
"""Loop iterations and calls in one render."""

# what a reply template has no business with (Python internals reached through attributes)
_INTERNAL = frozenset(
    {"mro", "format", "format_map"}
    | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES
    | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
    | {"tb_frame", "tb_next", "f_globals", "f_locals", "f_builtins", "f_back", "f_code"}
)
# Jinja2's globals a reply has no use for; `range` stays, bounded
REMOVED_GLOBALS = ("dict", "lipsum", "cycler", "joiner", "namespace")
# filters reaching attributes by a computed name, random (a reply must not depend on luck),
# Python reprs and HTML attributes
REMOVED_FILTERS = ("attr", "random", "pprint", "xmlattr")


class TemplateLimitError(SecurityError, FlowError):
    """A template tried to make a value or do work beyond the sandbox's bounds."""


def unsafe_attribute(name: str) -> bool:
    """True for an attribute a template may never read: private (`_x`, `__x__`) or internal."""
    return name.startswith("_") or name in _INTERNAL


def weight(value: Any, limit: int = MAX_LENGTH) -> int:
    """The size of `value`: characters of texts plus items of lists, tuples and mappings, nested
    ones included (a list holding one text twice counts it twice). Stops counting past `limit`."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        else:
            total += 1
    return total


def _too_large(what: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would be over the limit of {MAX_LENGTH:,} characters or items"
    )


def check_size(value: Any, what: str = "the value") -> Any:
    """`value`, or TemplateLimitError when it is larger than a template may make."""
    if type(value) is str and len(value) <= MAX_LENGTH:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(
                f"{what} would be a number of {value.bit_length():,} bits; "
                f"a template number is limited to {MAX_INT_BITS:,}"
            )
        return value
    size = weight(value)
    if size > MAX_LENGTH:
        raise _too_large(what)
    return value


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _power(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 1:
        # the result has at least this many bits, so do not start what cannot be kept
        least = (abs(left).bit_length() - 1) * right + 1
        if least > MAX_INT_BITS:
            raise TemplateLimitError(
                f"{left} ** {right} would be a number of at least {least:,} bits; "
                f"a template number is limited to {MAX_INT_BITS:,}"
            )


def _repeat(left: Any, right: Any) -> None:
    for sequence, times in ((left, right), (right, left)):
        if _is_sequence(sequence) and isinstance(times, int) and times > 0:
            size = weight(sequence, MAX_LENGTH // times + 1) * times
            if size > MAX_LENGTH:
                raise _too_large(f"repeating a value {times:,} times")


def _concatenate(left: Any, right: Any) -> None:
    if _is_sequence(left) and _is_sequence(right):
        size = weight(left) + weight(right)
        if size > MAX_LENGTH:
            raise _too_large("joining two values")


# a printf conversion: %[(key)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)


def check_printf(fmt: str, args: Any) -> None:
    """Refuse a `%` format whose widths or arguments would make a text too large."""
    for match in _PRINTF.finditer(fmt):
        for number in match.group(1, 2):
            if number == "*":
                raise TemplateLimitError("a `%` format width given by `*` is not allowed")
            if number and (len(number) > 6 or int(number) > MAX_LENGTH):
                raise _too_large(f"the format width {number}")
    size = weight(args) + len(fmt)
    if size > MAX_LENGTH:
        raise _too_large("the formatted text")


def _format(left: Any, right: Any) -> None:
    if isinstance(left, str):
        check_printf(left, right)


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "**": operator.pow,
    "*": operator.mul,
    "+": operator.add,
    "%": operator.mod,
}
_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "**": _power,
    "*": _repeat,
    "+": _concatenate,
    "%": _format,
}


def binop(op: str, left: Any, right: Any) -> Any:
    """`left op right` for the operators that can grow a value, refused beyond the bounds."""
    _CHECKS[op](left, right)
    return check_size(_OPERATORS[op](left, right), "the result")


def bounded_range(*args: int) -> range:
    """`range` of at most MAX_LENGTH numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_LENGTH:
        raise _too_large(f"a range of {len(numbers):,} numbers")
    return numbers


def _sizes(*numbers: Any) -> None:
    for number in numbers:
        if isinstance(number, int) and number > MAX_LENGTH:
            raise _too_large(f"a width or count of {number:,}")


def _center(value: Any, width: int = 80, *_: Any) -> Any:
    _sizes(width)
    return value


def _indent(value: Any, width: int | str = 4, *_: Any, **__: Any) -> Any:
    step = len(width) if isinstance(width, str) else width
    lines = value.count("\n") + 1 if isinstance(value, str) else 0
    if isinstance(step, int) and lines and len(value) + step * lines > MAX_LENGTH:
        raise _too_large("the indented text")
    return value


def _wordwrap(value: Any, width: int = 79, *args: Any, **kwargs: Any) -> Any:
    if isinstance(value, str) and isinstance(width, int) and width > 0:
        wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None) or "\n"
        if len(value) + (len(value) // width + 1) * len(str(wrap)) > MAX_LENGTH:
            raise _too_large("the wrapped text")
    return value


def _replace(value: Any, old: Any = "", new: Any = "", count: int | None = None) -> Any:
    if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
        times = value.count(old) if old else len(value) + 1
        if count is not None and count >= 0:
            times = min(times, count)
        if len(value) + times * (len(new) - len(old)) > MAX_LENGTH:
            raise _too_large("the replaced text")
    return value


def _printf(value: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(value, str):
        check_printf(value, kwargs or args)
    return value


def _join(value: Any, d: Any = "", *_: Any, **__: Any) -> Any:
    items = list(value)  # joined once, so a generator is read here and handed on as a list
    if weight(items) + len(str(d)) * max(len(items) - 1, 0) > MAX_LENGTH:
        raise _too_large("the joined text")
    return items


def _counts(value: Any, count: Any = 0, *_: Any, **__: Any) -> Any:
    _sizes(count)
    return value


def _tojson(value: Any, indent: Any = None, *_: Any, **__: Any) -> Any:
    _sizes(indent)
    return check_size(value, "the value given to the filter")


def _whole(value: Any, *_: Any, **__: Any) -> Any:
    return check_size(value, "the value given to the filter")


# the filters that take a size or make one text of many values, with what each checks first
_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": _replace,
    "format": _printf,
    "join": _join,
    "batch": _counts,
    "slice": _counts,
    "round": _counts,
    "tojson": _tojson,
    **{name: _whole for name in ("string", "sum", "urlencode", "list")},
}


def check_method(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a text method call that would make a text too large, before it runs (the
    arguments, a generator given to `join` read into a list)."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, str | bytes) or not (args or kwargs):
        return args
    if name in ("center", "ljust", "rjust", "zfill"):
        _sizes(*args[:1], kwargs.get("width"))
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        if isinstance(size, int) and tabs * size + len(owner) > MAX_LENGTH:
            raise _too_large("the expanded text")
    elif name == "join" and args:
        items = list(args[0])
        if weight(items) + len(owner) * max(len(items) - 1, 0) > MAX_LENGTH:
            raise _too_large("the joined text")
        return (items, *args[1:])
    elif name == "replace" and isinstance(owner, str):
        _replace(owner, *args, **kwargs)
    return args


def _bounded_filter(original: Callable[..., Any], check: Callable[..., Any]) -> Callable[..., Any]:
    """`original`, its arguments checked (and its value maybe replaced) first, its result after."""
    passes = getattr(original, "jinja_pass_arg", None)  # context or environment comes first

    def bounded(*args: Any, **kwargs: Any) -> Any:
        first, value, rest = (args[:1], args[1], args[2:]) if passes else ((), args[0], args[1:])
        value = check(value, *rest, **kwargs)
        return check_size(original(*first, value, *rest, **kwargs), "the filter's result")

    if passes is not None:
        bounded.jinja_pass_arg = passes  # type: ignore[attr-defined]
    return bounded


def _spend(eval_ctx: EvalContext) -> None:
    # a list, not a number: `{% autoescape %}` blocks save and restore the context's attributes
    spent: list[int] = eval_ctx.__dict__.setdefault("flowlang_steps", [0])
    spent[0] += 1
    if spent[0] > MAX_STEPS:
        raise TemplateLimitError(
            f"the template ran more than {MAX_STEPS:,} loop iterations and calls"
        )


def bounded_concat(pieces: Iterable[str]) -> str:
    """The rendered text, refused as soon as it grows past MAX_LENGTH."""
    out: list[str] = []
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > MAX_LENGTH:
            raise _too_large("the rendered text")
        out.append(piece)
    return "".join(out)


_COUNTED = "loop_steps"
_SIZED = "value_size"


def _built(value: Any) -> Any:
    return check_size(value, "a list, mapping or text the template builds")


class _Bounding(NodeTransformer):
    """Rewrites a template before it is compiled: every `{% for %}` iterates through `_counted`,
    every list, tuple, mapping and `~` a template writes is measured as it is made."""

    def __init__(self, name: str | None, filename: str | None) -> None:
        self.name, self.filename = name, filename

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise TemplateSyntaxError(
                "recursive loops are not available in templates",
                node.lineno,
                self.name,
                self.filename,
            )
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _COUNTED, [], [], None, None, lineno=node.lineno)
        return node

    def _measured(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _SIZED, [], [], None, None, lineno=node.lineno)

    visit_List = visit_Dict = visit_Concat = _measured

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        return self._measured(node) if node.ctx == "load" else self.generic_visit(node)


@pass_eval_context
def _counted(eval_ctx: EvalContext, iterable: Iterable[Any]) -> Iterator[Any]:
    """`iterable`, each item spending one step of the render's budget."""
    for item in iterable:
        _spend(eval_ctx)
        yield item


@pass_eval_context
def _finalize(eval_ctx: EvalContext, value: Any) -> Any:
    return check_size(value, "a value the template writes")


class ReplySandbox(ImmutableSandboxedEnvironment):
    """The environment every reply and deployment template compiles in."""

    intercepted_binops = frozenset(_OPERATORS)

    def __init__(self, **options: Any) -> None:
        super().__init__(optimized=False, finalize=_finalize, **options)
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["range"] = bounded_range
        for name in REMOVED_FILTERS:
            self.filters.pop(name, None)
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _bounded_filter(self.filters[name], check)
        self.filters[_COUNTED] = _counted
        self.filters[_SIZED] = _built

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return binop(operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not unsafe_attribute(attr) and super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # a private name is refused even as a mapping's key, as the checker refuses it
        if unsafe_attribute(attribute):
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument.startswith("_"):
            return self.unsafe_undefined(obj, argument)
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def refused(*args: Any, **kwargs: Any) -> str:
            raise SecurityError("str.format is not available in templates; use `| format`")

        return refused

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend(__context.eval_ctx)
        args = check_method(__obj, args, kwargs)
        return check_size(super().call(__context, __obj, *args, **kwargs), "the call's result")

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        bounded = _Bounding(name, filename).visit(source)
        return super()._generate(bounded, name, filename, defer_init)

    concat = staticmethod(bounded_concat)
