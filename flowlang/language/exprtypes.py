"""Static types of flow expressions: the built-in names, functions and operator rules.

The checker calls `infer(expr, scope)`; problems are reported through the `report` callback so
that every type error of a file is collected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Span, error, listing, suggest
from flowlang.language import ast
from flowlang.language.check_detect import detect_problems
from flowlang.language.check_queue import QUEUE_FIELDS, QUEUE_STATUS
from flowlang.language.check_time import (
    DATE,
    FIELDS,
    TIME,
    TIME_TYPES,
    date_problem,
    field_problem,
    zone_problem,
)

TEXT, NUMBER, BOOLEAN, DURATION, LIST, RECORD, ANY, NOTSET = (
    "text",
    "number",
    "boolean",
    "duration",
    "list",
    "record",
    "any",
    "notset",
)
VALUE_TYPES = (TEXT, NUMBER, BOOLEAN, DURATION, LIST)
# Parameter types that name something in the deployment; their values are text.
NAME_TYPES = ("queue", "skill", "template", "bot", "schedule", "agent", "language", "data_action")

BUILTINS: dict[str, dict[str, str]] = {
    "message": {
        "text": TEXT,
        "channel": TEXT,
        "kind": TEXT,
        "account": TEXT,
        "actionable": BOOLEAN,
        "has_attachment": BOOLEAN,
        "sender_name": TEXT,
        "postback": TEXT,
        "post_id": TEXT,
        "data": RECORD,
    },
    "customer": {"known": BOOLEAN, "new": BOOLEAN, "id": TEXT, "name": TEXT, "phone": TEXT},
    "conversation": {
        "ongoing": BOOLEAN,
        "id": TEXT,
        "last_agent": TEXT,
        "messages": NUMBER,
        "idle": DURATION,
    },
    "window": {"open": BOOLEAN, "remaining": DURATION},
    "interaction": {"priority": NUMBER, "language": TEXT, "skills": LIST},
    "bot": {"intent": TEXT, "slots": RECORD, "outcome": TEXT},
    "error": {"message": TEXT, "code": TEXT, "step": TEXT},
    "event": {"name": TEXT, "wrap_up": TEXT, "agent": TEXT},
    "in_queue": {
        "queue": TEXT,
        "position": NUMBER,
        "estimated_wait": DURATION,
        "estimated_minutes": NUMBER,
        "waited": DURATION,
        "waited_minutes": NUMBER,
    },
}
SHORTHANDS = {"priority": NUMBER, "language": TEXT}
# What the flow stored with `set participant data` / `set conversation data`, as templates read
# it (`{{ participant_data['segment'] }}`); expressions write `participant data "segment"`.
STORED_DATA = ("participant_data", "conversation_data")

FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "lower": ((TEXT,), TEXT),
    "upper": ((TEXT,), TEXT),
    "trim": ((TEXT,), TEXT),
    "length": ((ANY,), NUMBER),
    "number": ((ANY,), NUMBER),
    "text": ((ANY,), TEXT),
    "starts_with": ((TEXT, TEXT), BOOLEAN),
    "ends_with": ((TEXT, TEXT), BOOLEAN),
    "minutes": ((DURATION,), NUMBER),
    "hours": ((DURATION,), NUMBER),
    "now": ((TEXT,), TIME),  # the zone; `now()` is UTC
    "date": ((TEXT,), DATE),
    "queue": ((TEXT,), QUEUE_STATUS),  # the queue's name
}
MEMBERS: dict[str, dict[str, str]] = {**FIELDS, QUEUE_STATUS: QUEUE_FIELDS}
"""The fields of the values that have them: `now(...).hour`, `queue(...).waiting`."""
OPTIONAL_ARGS = {"now": 0}  # functions whose arguments may all be left out


def value_type(type_name: str) -> str:
    return TEXT if type_name in NAME_TYPES else type_name


def compatible(expected: str, actual: str) -> bool:
    return (
        ANY in (expected, actual) or actual == NOTSET or value_type(expected) == value_type(actual)
    )


@dataclass
class Scope:
    """Names an expression may use: variables, parameters, records from `into`."""

    variables: dict[str, str]
    params: dict[str, str]
    records: dict[str, tuple[str, ...] | None]  # record name -> known fields (None: any)
    # checks a deployment name written in an expression (`queue("Retail Banking")`): kind, name
    resolve: Callable[[str, str, Span], None] | None = None
    # the deployment's languages, which `detect(...)` chooses from; None without a deployment
    languages: frozenset[str] | None = None


Reporter = Callable[[Diagnostic], None]


def infer(expr: ast.Expr, scope: Scope, report: Reporter) -> str:
    """The type of `expr`; reports unknown names and operator misuse."""
    if isinstance(expr, ast.Literal):
        return {
            "text": TEXT,
            "number": NUMBER,
            "duration": DURATION,
            "boolean": BOOLEAN,
            "notset": NOTSET,
        }[expr.kind]
    if isinstance(expr, ast.Path):
        return _path_type(expr, scope, report)
    if isinstance(expr, ast.ListExpr):
        for item in expr.items:
            infer(item, scope, report)
        return LIST
    if isinstance(expr, ast.Call):
        return _call_type(expr, scope, report)
    if isinstance(expr, ast.StoredData):
        return TEXT
    if isinstance(expr, ast.Member):
        return _member_type(expr, scope, report)
    if isinstance(expr, ast.Detect):
        _expect(expr.text.span, TEXT, infer(expr.text, scope, report), "detect()", report)
        for problem in detect_problems(expr, scope.languages, scope.resolve):
            report(problem)
        return TEXT
    if isinstance(expr, ast.Unary):
        inner = infer(expr.operand, scope, report)
        wanted = BOOLEAN if expr.op == "not" else NUMBER
        _expect(expr.operand.span, wanted, inner, f"'{expr.op}'", report)
        return wanted
    if isinstance(expr, ast.IsSet):
        infer(expr.operand, scope, report)
        return BOOLEAN
    if isinstance(expr, ast.Matches):
        _expect(expr.operand.span, TEXT, infer(expr.operand, scope, report), "'matches'", report)
        try:
            re.compile(expr.pattern)
        except re.error as exc:
            message = f"invalid regular expression: {exc.msg}"
            report(
                error(codes.BAD_REGEX, message, expr.pattern_span, hint="see Python's re syntax")
            )
        return BOOLEAN
    return _binary_type(expr, scope, report)


def _expect(span: Span, wanted: str, actual: str, what: str, report: Reporter) -> None:
    if not compatible(wanted, actual):
        report(
            error(
                codes.WRONG_TYPE,
                f"{what} needs {_a(wanted)}, but this is {_a(actual)}",
                span,
                f"{actual}",
            )
        )


def _a(type_name: str) -> str:
    return {"notset": "not set"}.get(
        type_name, f"{'an' if type_name[0] in 'aeiou' else 'a'} {type_name}"
    )


def _binary_type(expr: ast.Binary, scope: Scope, report: Reporter) -> str:
    left = infer(expr.left, scope, report)
    right = infer(expr.right, scope, report)
    op = expr.op
    if op in ("and", "or"):
        _expect(expr.left.span, BOOLEAN, left, f"'{op}'", report)
        _expect(expr.right.span, BOOLEAN, right, f"'{op}'", report)
        return BOOLEAN
    if op == "contains":
        if left not in (LIST, ANY):
            _expect(expr.left.span, TEXT, left, "'contains'", report)
            _expect(expr.right.span, TEXT, right, "'contains'", report)
        return BOOLEAN
    if op == "in":
        return BOOLEAN
    if op in ("==", "!="):
        if NOTSET not in (left, right) and not compatible(left, right):
            report(
                error(
                    codes.WRONG_TYPE,
                    f"cannot compare {_a(left)} with {_a(right)}",
                    expr.span,
                    f"{left} {op} {right}",
                )
            )
        return BOOLEAN
    if op in ("<", "<=", ">", ">="):
        if left not in (NUMBER, DURATION, TIME, DATE, ANY) or not compatible(left, right):
            report(
                error(
                    codes.WRONG_TYPE,
                    f"'{op}' compares numbers, durations, times or dates, "
                    f"not {_a(left)} and {_a(right)}",
                    expr.span,
                    f"{left} {op} {right}",
                )
            )
        return BOOLEAN
    if op == "+" and TEXT in (left, right):
        if not compatible(left, right):
            report(
                error(
                    codes.WRONG_TYPE,
                    f"cannot add {_a(left)} and {_a(right)}",
                    expr.span,
                    hint="use text(x) to turn a value into text",
                )
            )
            return ANY  # reported once; the result's type is unknown
        return TEXT
    if op in ("+", "-") and (left in TIME_TYPES or right in TIME_TYPES):
        return _time_arithmetic(expr, left, right, report)
    if op in ("+", "-") and DURATION in (left, right):
        _expect(expr.span, DURATION, left if right == DURATION else right, f"'{op}'", report)
        return DURATION
    _expect(expr.left.span, NUMBER, left, f"'{op}'", report)
    _expect(expr.right.span, NUMBER, right, f"'{op}'", report)
    return NUMBER


def _call_type(expr: ast.Call, scope: Scope, report: Reporter) -> str:
    signature = FUNCTIONS.get(expr.name)
    if signature is None:
        report(
            error(
                codes.UNKNOWN_FUNCTION,
                f"unknown function {expr.name!r}",
                expr.span,
                "not a function",
                hint=suggest(expr.name, FUNCTIONS, listing("functions", sorted(FUNCTIONS))),
            )
        )
        return ANY
    params, result = signature
    if len(expr.args) != len(params) and len(expr.args) != OPTIONAL_ARGS.get(expr.name):
        report(
            error(
                codes.WRONG_TYPE,
                f"{expr.name}() takes {len(params)} argument(s), {len(expr.args)} given",
                expr.span,
            )
        )
    for arg, wanted in zip(expr.args, params, strict=False):
        _expect(arg.span, wanted, infer(arg, scope, report), f"{expr.name}()", report)
    if expr.args and isinstance(literal := expr.args[0], ast.Literal) and literal.kind == "text":
        problem = {"now": zone_problem, "date": date_problem}.get(expr.name)
        if problem is not None and (found := problem(str(literal.value), literal.span)):
            report(found)
        if expr.name == "queue" and scope.resolve is not None:
            scope.resolve("queue", str(literal.value), literal.span)
    return result


def _member_type(expr: ast.Member, scope: Scope, report: Reporter) -> str:
    return _fields_type(infer(expr.base, scope, report), expr.names, expr.span, report)


def _fields_type(current: str, names: Iterable[str], span: Span, report: Reporter) -> str:
    """The type of `names` read one after another from a value of type `current`."""
    for name in names:
        if current == ANY:
            return ANY
        fields = MEMBERS.get(current)
        if fields is None:
            report(
                error(
                    codes.UNKNOWN_NAME,
                    f"{_a(current)} has no fields; {name!r} cannot be read from it",
                    span,
                )
            )
            return ANY
        if name not in fields:
            report(field_problem(current, fields, name, span))
            return ANY
        current = fields[name]
    return current


def _time_arithmetic(expr: ast.Binary, left: str, right: str, report: Reporter) -> str:
    """time/date + or - a duration is a time/date; time - time and date - date a duration."""
    if left in TIME_TYPES and right == DURATION:
        return left
    if expr.op == "+" and right in TIME_TYPES and left == DURATION:
        return right
    if expr.op == "-" and left == right:
        return DURATION
    if ANY in (left, right):
        return ANY
    report(
        error(
            codes.WRONG_TYPE,
            f"cannot {'add' if expr.op == '+' else 'subtract'} {_a(left)} and {_a(right)}",
            expr.span,
            f"{left} {expr.op} {right}",
            hint='add or subtract a duration (now("UTC") + 2d), or subtract two times',
        )
    )
    return ANY


def all_names(scope: Scope) -> list[str]:
    return [*scope.variables, *scope.params, *scope.records, *BUILTINS, *SHORTHANDS]


def _path_type(expr: ast.Path, scope: Scope, report: Reporter) -> str:
    head, *rest = expr.parts
    if head in scope.variables or head in scope.params:
        declared = scope.variables.get(head) or scope.params[head]
        if rest:
            if declared in (RECORD, ANY):
                return ANY
            if declared in TIME_TYPES:
                return _fields_type(declared, rest, expr.span, report)
            report(
                error(
                    codes.UNKNOWN_NAME,
                    f"{head!r} is {_a(value_type(declared))}; it has no field {rest[0]!r}",
                    expr.span,
                )
            )
            return ANY
        return value_type(declared)
    if head in scope.records:
        fields = scope.records[head]
        if rest and fields is not None and rest[0] not in fields:
            report(
                error(
                    codes.UNKNOWN_NAME,
                    f"{head!r} has no field {rest[0]!r}",
                    expr.span,
                    "unknown field",
                    hint=suggest(rest[0], fields, listing("fields", fields)),
                )
            )
        return ANY if rest else RECORD
    if head in BUILTINS:
        members = BUILTINS[head]
        if not rest:
            report(
                error(
                    codes.UNKNOWN_NAME,
                    f"{head!r} needs a field, e.g. {head}.{next(iter(members))}",
                    expr.span,
                    hint=listing("fields", members),
                )
            )
            return ANY
        field_type = members.get(rest[0])
        if field_type is None:
            report(
                error(
                    codes.UNKNOWN_NAME,
                    f"{head!r} has no field {rest[0]!r}",
                    expr.span,
                    "unknown field",
                    hint=suggest(
                        rest[0], members, listing("fields", members), show=lambda s: f"'{head}.{s}'"
                    ),
                )
            )
            return ANY
        if len(rest) > 1:
            return ANY if field_type == RECORD else field_type
        return field_type
    if head in SHORTHANDS and not rest:
        return SHORTHANDS[head]
    report(
        error(
            codes.UNKNOWN_NAME,
            f"unknown name {head!r}",
            expr.span,
            "not declared",
            hint=suggest(
                head, all_names(scope), "declare it with: var " + head + ": text = not set"
            ),
        )
    )
    return ANY
