"""Ordered routing targets (`prefer agents where ... for 2m`, `then agents where ...`,
`then any agent`), statically: the steps' order (FL344), the agent attributes a condition
reads (FL140, with a did-you-mean), and the shape of a condition the ACD can decide per agent
ahead of time (FL232): each test compares one `agent.<attribute>` with a value that does not
depend on the agent."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flowlang import codes
from flowlang.diagnostics import Diagnostic, error, listing, suggest
from flowlang.language import ast
from flowlang.language.exprtypes import (
    ANY,
    BOOLEAN,
    LIST,
    NUMBER,
    TEXT,
    Reporter,
    compatible,
)

AGENT = "agent"
BUILT_IN_ATTRIBUTES: dict[str, str] = {
    "id": TEXT,
    "name": TEXT,
    "languages": LIST,
    "skills": LIST,
    "queues": LIST,
}
"""What every agent has, from the deployment's agent definition (`skills`: the skill names)."""

ORDERED = ("<", "<=", ">", ">=")
Infer = Callable[[ast.Expr], str]


def mentions_agent(expr: ast.Expr) -> bool:
    """Whether `expr` reads `agent.<attribute>` anywhere."""
    match expr:
        case ast.Path():
            return expr.parts[0] == AGENT
        case ast.Binary():
            return mentions_agent(expr.left) or mentions_agent(expr.right)
        case ast.Unary() | ast.IsSet() | ast.Matches():
            return mentions_agent(expr.operand)
        case ast.Call():
            return any(mentions_agent(a) for a in expr.args)
        case ast.ListExpr():
            return any(mentions_agent(i) for i in expr.items)
        case ast.Member():
            return mentions_agent(expr.base)
        case _:
            return False


def step_order_problems(steps: tuple[ast.AgentTarget, ...]) -> list[Diagnostic]:
    """`prefer agents` first, then `then agents`; only the last step may go without `for`
    (it keeps its agents until the route ends); `then any agent` last, after a step with
    `for`."""
    found: list[Diagnostic] = []
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        if index == 0 and (step.then or step.condition is None):
            found.append(
                error(
                    codes.AGENT_STEP_ORDER,
                    "the first routing step says which agents to prefer",
                    step.span,
                    "no step before it",
                    hint="start with: prefer agents where agent.<attribute> == ... for 2m",
                )
            )
        elif index > 0 and step.condition is not None and not step.then:
            found.append(
                error(
                    codes.AGENT_STEP_ORDER,
                    "only the first routing step is 'prefer agents'; the next ones widen it",
                    step.span,
                    "a second 'prefer agents'",
                    hint="write the next step as: then agents where ...",
                )
            )
        if step.condition is None and not last:
            found.append(
                error(
                    codes.AGENT_STEP_ORDER,
                    "'then any agent' is the last step: every agent of the queue already qualifies",
                    step.span,
                    "steps follow it",
                    hint="move 'then any agent' to the end, or remove the steps after it",
                )
            )
        if step.condition is not None and step.duration is None and not last:
            found.append(
                error(
                    codes.AGENT_STEP_ORDER,
                    "a routing step without 'for' never widens, so the steps after it never start",
                    step.span,
                    "no 'for <duration>'",
                    hint="say how long to wait for these agents, e.g. ... for 2m",
                )
            )
        if step.condition is None and index > 0 and steps[index - 1].duration is None:
            previous = steps[index - 1]
            if previous.condition is not None:
                found.append(
                    error(
                        codes.AGENT_STEP_ORDER,
                        "'then any agent' follows a step that never widens",
                        step.span,
                        "never reached",
                        hint="give the step before it a 'for <duration>'",
                        related=((previous.span, "no 'for' here"),),
                    )
                )
    return found


def condition_problems(
    condition: ast.Expr,
    attributes: Mapping[str, str] | None,
    infer: Infer,
    report: Reporter,
) -> None:
    """Check a step's condition: a boolean whose tests on the agent compare one attribute
    with a value known when the flow routes (`attributes`: the deployment's, with their
    types; None: no deployment, any attribute goes)."""
    kind = _condition(condition, attributes, infer, report)
    if kind not in (BOOLEAN, ANY):
        report(
            error(
                codes.WRONG_TYPE,
                f"a routing step's condition is true or false, but this is {kind}",
                condition.span,
                kind,
                hint='e.g. agent.tier == "gold"',
            )
        )


def _condition(
    expr: ast.Expr, attributes: Mapping[str, str] | None, infer: Infer, report: Reporter
) -> str:
    if not mentions_agent(expr):
        return infer(expr)
    if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
        for side in (expr.left, expr.right):
            kind = _condition(side, attributes, infer, report)
            if kind not in (BOOLEAN, ANY):
                report(error(codes.WRONG_TYPE, f"'{expr.op}' needs true or false", side.span))
        return BOOLEAN
    if isinstance(expr, ast.Unary) and expr.op == "not":
        _condition(expr.operand, attributes, infer, report)
        return BOOLEAN
    if isinstance(expr, ast.IsSet) and _is_attribute(expr.operand):
        attribute_type(expr.operand, attributes, report)  # type: ignore[arg-type]
        return BOOLEAN
    if isinstance(expr, ast.Binary) and expr.op in ("==", "!=", *ORDERED, "contains", "in"):
        return _test(expr, attributes, infer, report)
    report(_unsupported(expr))
    return ANY


def _test(
    expr: ast.Binary, attributes: Mapping[str, str] | None, infer: Infer, report: Reporter
) -> str:
    left, right = expr.left, expr.right
    if _is_attribute(left) and not mentions_agent(right):
        mine, value = attribute_type(left, attributes, report), infer(right)  # type: ignore[arg-type]
        agent_left = True
    elif _is_attribute(right) and not mentions_agent(left) and expr.op != "in":
        mine, value = attribute_type(right, attributes, report), infer(left)  # type: ignore[arg-type]
        agent_left = False
    else:
        report(_unsupported(expr))
        return ANY
    if ANY in (mine, value):
        return BOOLEAN
    op = expr.op
    wrong = None
    if op in ("==", "!=") and not compatible(mine, value):
        wrong = f"cannot compare {mine} agent.{_name(expr, agent_left)} with {value}"
    elif op in ORDERED and not (mine == NUMBER and compatible(NUMBER, value)):
        wrong = f"'{op}' compares numbers; agent.{_name(expr, agent_left)} is {mine}"
    elif op == "contains":
        container = mine if agent_left else value
        item = value if agent_left else mine
        if container != LIST and not (container == TEXT and compatible(TEXT, item)):
            wrong = f"'contains' looks in a list or a text, not in {container}"
    elif op == "in" and value != LIST:
        wrong = f"'in' needs a list after it, not {value}"
    if wrong is not None:
        report(error(codes.WRONG_TYPE, wrong, expr.span, f"{mine} {op} {value}"))
    return BOOLEAN


def _name(expr: ast.Binary, agent_left: bool) -> str:
    side = expr.left if agent_left else expr.right
    return ".".join(side.parts[1:]) if isinstance(side, ast.Path) else "?"


def _is_attribute(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Path) and expr.parts[0] == AGENT


def attribute_type(path: ast.Path, attributes: Mapping[str, str] | None, report: Reporter) -> str:
    """The type of `agent.<attribute>`; an unknown attribute is FL140."""
    if len(path.parts) != 2:
        report(
            error(
                codes.UNKNOWN_AGENT_ATTRIBUTE,
                "an agent condition reads one attribute: agent.<attribute>",
                path.span,
                hint=listing("attributes", known_attributes(attributes)),
            )
        )
        return ANY
    name = path.parts[1]
    if name in BUILT_IN_ATTRIBUTES:
        return BUILT_IN_ATTRIBUTES[name]
    if attributes is None:
        return ANY
    if name not in attributes:
        names = known_attributes(attributes)
        report(
            error(
                codes.UNKNOWN_AGENT_ATTRIBUTE,
                f"agents have no attribute {name!r}",
                path.span,
                "unknown attribute",
                hint=suggest(
                    name,
                    names,
                    listing("attributes", names)
                    + "; declare more under agent_attributes: in the deployment",
                    show=lambda s: f"'agent.{s}'",
                ),
            )
        )
        return ANY
    return attributes[name]


def known_attributes(attributes: Mapping[str, str] | None) -> list[str]:
    return [*BUILT_IN_ATTRIBUTES, *sorted(attributes or {})]


def _unsupported(expr: ast.Expr) -> Diagnostic:
    return error(
        codes.AGENT_CONDITION_FORM,
        "a routing step tests each agent by comparing one agent.<attribute> with a value",
        expr.span,
        "not a test the ACD can make per agent",
        hint='e.g. agent.tier == "gold", agent.languages contains language, '
        'agent.region in ["uk", "ie"], agent.years >= 3',
    )
