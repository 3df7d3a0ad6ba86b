"""Expression trees (from the compiler) -> Python callables over an `Env` (anything with `get`).

Compiled once per graph; no `eval` of user text. A missing value is `None` ("not set").
A value an operation cannot use (bot slots, CRM outputs and host data have no static type)
raises `FlowRuntimeError`, the flow's own error (FL900); nothing else is raised for data.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from flowlang.errors import FlowRuntimeError
from flowlang.runtime.clock import NOW, QUEUES, field, now_in, parse_date, queue_status
from flowlang.runtime.detect import detect_language


class Env(Protocol):
    """Where expressions look names up: a dict, or a run's live `Scope`."""

    def get(self, name: str, default: Any = None, /) -> Any: ...


Compiled = Callable[[Env], Any]


def _lookup(env: Env, parts: list[str]) -> Any:
    value: Any = env.get(parts[0])
    for part in parts[1:]:
        if value is None:
            return None
        if isinstance(value, Mapping):
            value = value.get(part)
        else:
            return _field_of(value, part)
    return value


def _field_of(value: Any, name: str) -> Any:
    """A field of a value that is not a mapping: a time's or date's (`opened.hour`)."""
    return field(value, name) if isinstance(value, date) else None


def _compile_path(parts: list[str]) -> Compiled:
    """`a`, `a.b` (the common shapes, unrolled) or a longer path."""
    name = parts[0]
    if len(parts) == 1:
        return lambda env: env.get(name)
    if len(parts) == 2:
        key = parts[1]

        def member(env: Env) -> Any:
            value = env.get(name)
            if type(value) is dict:  # the usual case, without the slower Mapping check
                return value.get(key)
            return value.get(key) if isinstance(value, Mapping) else _field_of(value, key)

        return member
    return lambda env: _lookup(env, parts)


def _number(value: Any) -> float:
    """A number from a number or its text; whole numbers stay ints so they print as `3`."""
    if isinstance(value, bool) or value is None:
        raise FlowRuntimeError(f"expected a number, got {_show(value)}")
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise FlowRuntimeError(f"cannot turn {_show(value)} into a number") from exc
    if not math.isfinite(number):  # "nan", "inf": Python reads them, JSON cannot store them
        raise FlowRuntimeError(f"cannot turn {_show(value)} into a number")
    return int(number) if number.is_integer() else number


def _show(value: Any) -> str:
    return "not set" if value is None else repr(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return str(value)


def _length(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str | list | tuple | dict):
        return float(len(value))
    raise FlowRuntimeError(f"length needs a text or a list, got {_show(value)}")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lower": lambda x: _text(x).lower(),
    "upper": lambda x: _text(x).upper(),
    "trim": lambda x: _text(x).strip(),
    "length": _length,
    "number": _number,
    "text": _text,
    "starts_with": lambda a, b: _text(a).startswith(_text(b)),
    "ends_with": lambda a, b: _text(a).endswith(_text(b)),
    "minutes": lambda d: d.total_seconds() / 60 if isinstance(d, timedelta) else None,
    "hours": lambda d: d.total_seconds() / 3600 if isinstance(d, timedelta) else None,
    "date": parse_date,
}

_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, date) or isinstance(b, date):  # a time (datetime) is a date too
        if type(a) is not type(b):
            raise FlowRuntimeError(f"cannot compare {_show(a)} {op} {_show(b)}")
        return bool(_COMPARE[op](a, b))
    if isinstance(a, timedelta) or isinstance(b, timedelta):
        if not (isinstance(a, timedelta) and isinstance(b, timedelta)):
            raise FlowRuntimeError(f"cannot compare {_show(a)} {op} {_show(b)}")
        return bool(_COMPARE[op](a, b))
    return bool(_COMPARE[op](_number(a), _number(b)))


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        return _text(a) + _text(b)
    if isinstance(a, timedelta) and isinstance(b, timedelta | date):
        return b + a
    if isinstance(a, timedelta | date) and isinstance(b, timedelta):
        return a + b
    return _number(a) + _number(b)


def _sub(a: Any, b: Any) -> Any:
    if isinstance(a, timedelta | date) and isinstance(b, timedelta):
        return a - b
    if isinstance(a, date) and type(a) is type(b):
        return a - b  # two times or two dates: the duration between them
    return _number(a) - _number(b)


def _div(a: Any, b: Any) -> float:
    divisor = _number(b)
    if divisor == 0:
        raise FlowRuntimeError("division by zero")
    return _number(a) / divisor


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def _contains(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, list | tuple):
        return b in a
    return _text(b).casefold() in _text(a).casefold()


def _bounded(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Arithmetic whose result is too large for a number is the flow's error, not a crash."""

    def checked(a: Any, b: Any) -> Any:
        try:
            return fn(a, b)
        except OverflowError as exc:  # a whole number from data too large for a float
            raise FlowRuntimeError(f"the result of {op} is too large for a number") from exc

    return checked


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "+": _bounded("+", _add),
    "-": _bounded("-", _sub),
    "*": _bounded("*", lambda a, b: _number(a) * _number(b)),
    "/": _bounded("/", _div),
    "contains": _contains,
    "in": lambda a, b: a in b,  # the grammar allows only a list after `in`
}


def _compile_call(name: str, args: list[Compiled]) -> Compiled:
    if name == "now":  # reads the run's clock
        return lambda env: now_in(env.get(NOW), *(a(env) for a in args))
    if name == "queue":  # asks the ACD
        (queue,) = args
        return lambda env: queue_status(env.get(QUEUES), queue(env))
    fn = FUNCTIONS[name]
    return lambda env: fn(*(a(env) for a in args))


def _compile_function(tree: dict[str, Any]) -> Compiled:
    """A function's value (`lower(x)`), a field of one (`now("UTC").hour`), `detect(...)`."""
    if "call" in tree:
        return _compile_call(tree["call"], [compile_expr(a) for a in tree["args"]])
    if "member" in tree:
        return _compile_member(compile_expr(tree["x"]), list(tree["member"]))
    return _compile_detect(tree)


def _compile_detect(tree: dict[str, Any]) -> Compiled:
    text = compile_expr(tree["detect"])
    among, fallback = tuple(tree["among"]), tree["fallback"]
    confidence = float(tree["confidence"])
    return lambda env: detect_language(text(env), among, fallback, confidence)


def _compile_member(base: Compiled, names: list[str]) -> Compiled:
    def member(env: Env) -> Any:
        value = base(env)
        for name in names:
            value = field(value, name)
        return value

    return member


def compile_expr(tree: dict[str, Any]) -> Compiled:
    """Turn an expression tree into a callable `env -> value`."""
    if "lit" in tree:
        value = tree["lit"]
        return lambda _env: value
    if "dur" in tree:
        duration = timedelta(seconds=tree["dur"])
        return lambda _env: duration
    if "path" in tree:
        return _compile_path(list(tree["path"]))
    if "list" in tree:
        items = [compile_expr(i) for i in tree["list"]]
        return lambda env: [i(env) for i in items]
    if "call" in tree or "member" in tree or "detect" in tree:
        return _compile_function(tree)
    if "un" in tree:
        inner = compile_expr(tree["x"])
        if tree["un"] == "not":
            return lambda env: not inner(env)
        return lambda env: -_number(inner(env))
    if "isset" in tree:
        inner = compile_expr(tree["isset"])
        if tree["neg"]:
            return lambda env: inner(env) in (None, "")
        return lambda env: inner(env) not in (None, "")
    if "re" in tree:
        pattern = re.compile(tree["re"])
        inner = compile_expr(tree["x"])
        return lambda env: inner(env) is not None and pattern.search(_text(inner(env))) is not None
    op = tree["bin"]
    left, right = compile_expr(tree["l"]), compile_expr(tree["r"])
    if op == "and":
        return lambda env: bool(left(env)) and bool(right(env))
    if op == "or":
        return lambda env: bool(left(env)) or bool(right(env))
    if op in _COMPARE:
        return lambda env: _compare(op, left(env), right(env))
    fn2 = _BINARY[op]
    return lambda env: fn2(left(env), right(env))
