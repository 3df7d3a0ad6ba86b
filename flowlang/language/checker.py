"""Checked flow: resolves every name, types every expression, finds structural mistakes.

Takes an `ast.Flow` and a `FlowContext` (deployment names, channel capabilities) and returns all
diagnostics of the file at once, plus a `CheckedFlow` when there were no errors. Codes are listed
in `docs/errors.md`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import assert_never

from flowlang import codes
from flowlang.account_names import account_key
from flowlang.diagnostics import Diagnostic, Span, error, listing, sort_key, suggest, warning
from flowlang.language import ast
from flowlang.language.check_split import milestone_problems, split_problems
from flowlang.language.check_targets import condition_problems, step_order_problems
from flowlang.language.check_time import TIME_TYPES
from flowlang.language.check_transfer import transfer_problems
from flowlang.language.context import ChannelInfo, FlowContext
from flowlang.language.exprtypes import (
    BUILTINS,
    NAME_TYPES,
    NUMBER,
    RECORD,
    STORED_DATA,
    TEXT,
    VALUE_TYPES,
    Scope,
    compatible,
    infer,
    value_type,
)
from flowlang.language.walk import is_terminal, walk
from flowlang.templates import (
    fixed_text,
    is_template,
    name_position,
    part_span,
    template_problems,
    unclosed_tag,
    undeclared_names,
    unsafe_template_parts,
)

MAX_THREADING_WINDOW = timedelta(hours=72)
MAX_REPEAT = 1000

OUTCOMES: dict[type, tuple[str, ...]] = {
    ast.Ask: ("answer", "timeout"),
    ast.Recognize: ("known", "unknown"),
    ast.RouteAgent: ("unavailable",),
    ast.RouteQueue: ("timeout",),
    ast.BotHandoff: ("resolved", "escalate", "failure", "timeout"),
    ast.DataAction: ("success", "failure", "timeout", "not_found"),
    ast.CheckSchedule: ("open", "closed", "holiday", "emergency"),
    ast.Survey: ("answered", "invalid", "timeout"),
}

OUTCOME_KINDS: dict[type, tuple[tuple[str, ...], ...]] = {
    ast.Ask: (("answer",), ("timeout",)),
    ast.Recognize: (("known",), ("unknown",)),
    ast.BotHandoff: (("resolved",), ("escalate", "failure", "timeout")),
    ast.DataAction: (("success",), ("failure", "timeout", "not_found")),
    ast.CheckSchedule: (("open",), ("closed", "holiday", "emergency")),
    ast.Survey: (("answered",), ("invalid", "timeout")),
}
"""The outcomes of a step, by kind (it went well / it did not). An outcome without a branch
continues after the step, which is how a flow says "otherwise, go on"; FL302 warns only when a
step handles some outcomes of a kind but not all of them, so that the others would continue
after the step like the other kind (`on closed:` without `on holiday:` treats a holiday as
open)."""

UNKNOWN_TARGET = "unknown"
"""The optional outcome of a route whose target the flow's data names: not in the deployment."""

_KIND_CODES = {
    "queue": codes.UNKNOWN_QUEUE,
    "skill": codes.UNKNOWN_SKILL,
    "template": codes.UNKNOWN_TEMPLATE,
    "bot": codes.UNKNOWN_BOT,
    "schedule": codes.UNKNOWN_SCHEDULE,
    "data_action": codes.UNKNOWN_DATA_ACTION,
    "agent": codes.UNKNOWN_AGENT,
    "language": codes.UNKNOWN_LANGUAGE,
}
_KIND_WORDS = {"data_action": "data action"}
_ITEMISED_AS_TEXT = {
    "carousel": "its text and its items, numbered",
    "card": "its text and its items, numbered",
}
"""Content the channel policy sends as text with its items where a channel cannot carry it
(policy `_as_text`): a warning, what goes instead, never an error."""
_PARAM_EXAMPLES = {
    "text": 'write it in quotes, e.g. "Welcome to GBank"',
    "number": "write a number, e.g. 3",
    "boolean": "write true or false",
    "duration": "write a duration with its unit, e.g. 10m, 72h or 1h30m",
}


@dataclass(frozen=True)
class CheckedFlow:
    """A flow that passed the checker, with its symbol tables."""

    flow: ast.Flow
    context: FlowContext
    variables: dict[str, str]
    params: dict[str, ast.Param]
    entry_state: str
    channels: tuple[str, ...]
    records: dict[str, tuple[str, ...] | None] = field(default_factory=dict)


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]
    checked: CheckedFlow | None

    @property
    def ok(self) -> bool:
        return self.checked is not None


@dataclass
class _Where:
    """Where a block sits: inside which task, loop, or error handler."""

    task: ast.Task | None = None
    in_loop: bool = False
    in_error_handler: bool = False
    in_queue_timeout: bool = False  # in a route to queue's `on timeout`: `keep waiting` may
    # The data actions whose `on success` this is: (the result's name, the call)
    succeeded: tuple[tuple[str, ast.DataAction], ...] = ()
    bot: str | None = None  # in a `hand off to bot` step's branches: the bot's name


def check(flow: ast.Flow, context: FlowContext) -> CheckResult:
    """Check a parsed flow against the deployment; every problem is reported."""
    return _Checker(flow, context).run()


def _escaped(text: str) -> str:
    """`text` as a flow writes it between quotes."""
    for plain, written in _ESCAPES:
        text = text.replace(plain, written)
    return text


_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\t", "\\t"))


class _Checker:
    def __init__(self, flow: ast.Flow, context: FlowContext) -> None:
        self.flow = flow
        self.ctx = context
        self.diags: list[Diagnostic] = []
        self.params: dict[str, ast.Param] = {}
        self.variables: dict[str, str] = {}
        self.records: dict[str, tuple[str, ...] | None] = {}
        self.states: dict[str, ast.State] = {}
        self.tasks: dict[str, ast.Task] = {}
        self.channels: list[str] = []
        self.own_handles: dict[str, str] = {}  # casefolded @handle -> the channel serving it
        self.goto_edges: dict[str, set[str]] = {}
        self.task_calls: dict[str, set[str]] = {}
        self.dead = 0  # > 0 while checking steps that can never run: they lead nowhere
        self.milestones: list[ast.Milestone] = []
        self._owner = ""

    def report(self, diagnostic: Diagnostic) -> None:
        self.diags.append(diagnostic)

    # ------------------------------------------------------------ driver
    def run(self) -> CheckResult:
        self._declarations()
        scope = Scope(
            self.variables,
            {n: p.type_name for n, p in self.params.items()},
            self.records,
            self._resolve_name,
            frozenset(self.ctx.languages) if self.ctx.has_deployment else None,
        )
        self.scope = scope
        for decl in self.flow.declarations:
            if isinstance(decl, ast.VarDecl) and decl.initial is not None:
                actual = infer(decl.initial, scope, self.report)
                if decl.type_name in (*VALUE_TYPES, *TIME_TYPES) and not compatible(
                    decl.type_name, actual
                ):
                    self.report(
                        error(
                            codes.ASSIGNED_WRONG_TYPE,
                            f"variable {decl.name!r} is {decl.type_name} but starts as {actual}",
                            decl.initial.span,
                        )
                    )
        if (handler := self.flow.on_error) is not None:
            self._owner = "on error"
            self._block(handler.body, _Where(in_error_handler=True))
        for on_event in self.flow.handlers:
            self._owner = f"on {on_event.event}"
            if on_event.event == "window closing":
                self._beside_the_flow(on_event)
            self._block(on_event.body, _Where())
        for in_queue in self.flow.in_queue:
            self._in_queue(in_queue)
        for task in self.tasks.values():
            self._owner = f"task {task.name}"
            self._block(task.body, _Where(task=task))
        for state in self.states.values():
            self._owner = f"state {state.name}"
            self._block(state.body, _Where())
        self._reachability()
        for problem in milestone_problems(self.milestones):
            self.report(problem)
        self.diags.sort(key=sort_key)
        if any(d.is_error for d in self.diags) or self.flow.module:
            return CheckResult(self.diags, None)  # a module is checked, never compiled alone
        entry = next(iter(self.states))
        checked = CheckedFlow(
            self.flow,
            self.ctx,
            dict(self.variables),
            dict(self.params),
            entry,
            tuple(dict.fromkeys(self.channels)),
            dict(self.records),
        )
        return CheckResult(self.diags, checked)

    # ------------------------------------------------------------ declarations
    # Too complex (C901): to split.
    def _declarations(self) -> None:  # noqa: C901
        seen: dict[str, Span] = {}
        for decl in self.flow.declarations:
            if isinstance(decl, ast.Param | ast.VarDecl):
                self._unique(seen, decl.name, decl.span, codes.DUPLICATE_VARIABLE, "name")
        for decl in self.flow.declarations:
            if isinstance(decl, ast.Param):
                self._param(decl)
            elif isinstance(decl, ast.VarDecl):
                self._var(decl)
            elif isinstance(decl, ast.State):
                if self._unique_decl(self.states, decl, codes.DUPLICATE_STATE, "state"):
                    self.states[decl.name] = decl
            elif isinstance(decl, ast.Task):
                if self._unique_decl(self.tasks, decl, codes.DUPLICATE_TASK, "task"):
                    self.tasks[decl.name] = decl
                if len(set(decl.outcomes)) != len(decl.outcomes):
                    self.report(
                        error(
                            codes.DUPLICATE_OUTCOME,
                            f"task {decl.name!r} lists an outcome twice",
                            decl.span,
                        )
                    )
            elif isinstance(decl, ast.Serve):
                self._serve(decl)
            elif isinstance(decl, ast.Threading):
                self._threading(decl)
        self._collect_into_names()
        if self.flow.module:
            self._module_declarations()
            return
        if not self.states:
            self.report(
                error(
                    codes.NO_STATE,
                    "the flow has no state, so nothing runs",
                    self.flow.span,
                    hint="add a block like:  state start:",
                )
            )
        if not self.flow.serves:
            self.report(
                error(
                    codes.NO_CHANNEL,
                    "the flow serves no channel",
                    self.flow.span,
                    hint="add a line like:  serve messages on whatsapp, web",
                )
            )
        groups: list[tuple[list[ast.Declaration], str]] = [
            ([d for d in self.flow.declarations if isinstance(d, kind)], word)
            for kind, word in (
                (ast.Threading, "threading window"),
                (ast.OnError, "on error"),
                (ast.Description, "description"),
            )
        ]
        for event in ast.EVENT_NAMES:
            handlers = [h for h in self.flow.handlers if h.event == event]
            groups.append((list(handlers), f"on {event}"))
        for queue in dict.fromkeys(d.queue for d in self.flow.in_queue):
            blocks = [d for d in self.flow.in_queue if d.queue == queue]
            where = "" if queue is None else f' in "{queue}"'
            groups.append((list(blocks), f"while queued{where}"))
        for found, word in groups:
            for again in found[1:]:
                self.report(
                    error(
                        codes.DUPLICATE_DECLARATION,
                        f"the flow declares {word!r} more than once",
                        again.span,
                        "again",
                        hint="keep one",
                        related=((found[0].span, "first declared here"),),
                    )
                )

    def _unique(self, seen: dict[str, Span], name: str, span: Span, code: str, what: str) -> bool:
        if name in seen:
            first = seen[name]
            self.report(
                error(
                    code,
                    f"{what} {name!r} is declared twice",
                    span,
                    "second time",
                    hint="rename one, or remove one",
                    related=((first, "first declared here"),),
                )
            )
            return False
        seen[name] = span
        return True

    def _unique_decl(
        self,
        table: dict[str, ast.State] | dict[str, ast.Task],
        decl: ast.State | ast.Task,
        code: str,
        what: str,
    ) -> bool:
        existing = table.get(decl.name)
        if existing is not None:
            self.report(
                error(
                    code,
                    f"{what} {decl.name!r} is declared twice",
                    decl.span,
                    "second time",
                    hint="rename one, or remove one",
                    related=((existing.span, "first declared here"),),
                )
            )
            return False
        return True

    def _type_name(self, name: str, span: Span, allowed: Iterable[str]) -> bool:
        allowed = tuple(allowed)
        if name in allowed:
            return True
        self.report(
            error(
                codes.UNKNOWN_TYPE,
                f"unknown type {name!r}",
                span,
                "not a type",
                hint=suggest(name, allowed, listing("types", allowed)),
            )
        )
        return False

    def _param(self, decl: ast.Param) -> None:
        self.params[decl.name] = decl
        if not self._type_name(decl.type_name, decl.type_span, (*VALUE_TYPES, *NAME_TYPES)):
            return
        default = decl.default
        kind = {
            "text": TEXT,
            "number": NUMBER,
            "duration": "duration",
            "boolean": "boolean",
            "notset": "notset",
        }[default.kind]
        if not compatible(decl.type_name, kind) or kind == "notset":
            wanted = value_type(decl.type_name)
            self.report(
                error(
                    codes.PARAMETER_WRONG_TYPE,
                    f"parameter {decl.name!r} is {_article(decl.type_name)}, so its value "
                    f"must be {_article(wanted)}, not {_shown_type(kind)}",
                    default.span,
                    kind,
                    hint=_PARAM_EXAMPLES.get(wanted, "")
                    if decl.type_name not in NAME_TYPES
                    else f"write the {_KIND_WORDS.get(decl.type_name, decl.type_name)} name "
                    'in quotes, e.g. "Retail Banking"',
                )
            )
            return
        if decl.type_name in NAME_TYPES and isinstance(default.value, str):
            self._resolve_name(decl.type_name, default.value, default.span)

    def _var(self, decl: ast.VarDecl) -> None:
        if self._type_name(decl.type_name, decl.type_span, (*VALUE_TYPES, *TIME_TYPES, RECORD)):
            self.variables[decl.name] = decl.type_name

    def _collect_into_names(self) -> None:
        for stmt in self._all_statements():
            if isinstance(stmt, ast.Ask) and stmt.into not in self.variables:
                self.variables[stmt.into] = TEXT
            elif isinstance(stmt, ast.Survey):
                for question in stmt.questions:
                    if question.into not in self.variables:
                        answer = NUMBER if question.kind == "rating" else TEXT
                        self.variables[question.into] = answer
            elif isinstance(stmt, ast.DataAction) and stmt.into:
                info = self.ctx.data_actions.get(stmt.action.name)
                self.records[stmt.into] = info.outputs if info and info.outputs else None

    def _all_statements(self) -> Iterator[ast.Statement]:
        for decl in self.flow.declarations:
            if isinstance(decl, ast.State | ast.Task | ast.OnError | ast.OnEvent):
                yield from walk(decl.body)
            elif isinstance(decl, ast.InQueue):
                for activity in decl.activities:
                    yield from walk(activity.body)

    def _serve(self, decl: ast.Serve) -> None:
        public_scopes = {"posts", "comments", "mentions"}
        known = self.ctx.channel_keys()
        for target in decl.targets:
            if target.channel not in known:
                self.report(
                    error(
                        codes.UNKNOWN_CHANNEL,
                        f"unknown channel {target.channel!r}",
                        target.span,
                        "not a channel",
                        hint=suggest(target.channel, known, listing("channels", known)),
                    )
                )
                continue
            self.channels.append(target.channel)
            public = self.ctx.is_public(target.channel)
            if public and target.account and target.account.startswith("@"):
                self.own_handles[target.account.casefold()] = target.channel
            wrong = [s for s in decl.scopes if (s in public_scopes) != public]
            if wrong:
                what = "public posts" if public else "private messages"
                self.report(
                    error(
                        codes.UNSUPPORTED_SCOPE,
                        f"{target.channel} carries {what}; it cannot serve {' and '.join(wrong)}",
                        target.span,
                        hint="serve messages on private channels; posts, comments or "
                        "mentions on public ones",
                    )
                )
            if target.account is not None and self.ctx.has_deployment:
                accounts = self.ctx.accounts.get(target.channel, set())
                key = account_key(target.account)
                if all(account_key(known) != key for known in accounts):
                    self.report(
                        error(
                            codes.UNKNOWN_ACCOUNT,
                            f"no {target.channel} account {target.account!r} "
                            f"in {self.ctx.deployment_file}",
                            target.span,
                            "not declared",
                            hint=suggest(
                                target.account,
                                accounts,
                                f"declare it under channels: {target.channel}: accounts:",
                            ),
                        )
                    )

    def _module_declarations(self) -> None:
        """FL326 for what a module may not declare: it holds uses, variables and tasks."""
        for decl in self.flow.declarations:
            if not isinstance(decl, ast.Use | ast.VarDecl | ast.Task):
                self.report(
                    error(
                        codes.NOT_IN_A_MODULE,
                        "a module holds 'use' lines, variables and tasks only",
                        decl.span,
                        "only a flow may declare this",
                        hint="declare it in the flows that use the module",
                    )
                )

    def _threading(self, decl: ast.Threading) -> None:
        window = decl.window
        if decl.param is not None:
            param = self.params.get(decl.param) or next(
                (p for p in self.flow.params if p.name == decl.param), None
            )
            if param is None:
                self.report(
                    error(
                        codes.UNKNOWN_NAME,
                        f"unknown parameter {decl.param!r}",
                        decl.span,
                        "not declared",
                        hint=suggest(
                            decl.param,
                            [p.name for p in self.flow.params],
                            "write a duration like 72h, or declare: "
                            f"param {decl.param}: duration = 72h",
                        ),
                    )
                )
                return
            if param.type_name != "duration":
                self.report(
                    error(
                        codes.NOT_A_CONDITION,
                        f"threading window needs a duration, but parameter "
                        f"{decl.param!r} is {_article(param.type_name)}",
                        decl.span,
                        hint=f"declare it as: param {decl.param}: duration = 72h",
                    )
                )
                return
            window = param.default.value if isinstance(param.default.value, timedelta) else None
        if window is not None and window > MAX_THREADING_WINDOW:
            self.report(
                error(
                    codes.THREADING_WINDOW_TOO_LONG,
                    "threading window is over 72 hours",
                    decl.span,
                    "too long",
                    hint="the threading window is 0 to 72h (default 72h)",
                )
            )

    # ------------------------------------------------------------ names
    def _resolve(self, ref: ast.NameRef, kind: str, dynamic: bool = False) -> str | None:
        """The deployment name a reference stands for (checked), or None. A routing target
        (`dynamic`) may also be a text variable or expression, known only at run time."""
        if dynamic and (ref.expr is not None or (ref.is_param and ref.name not in self.params)):
            self._dynamic_target(ref, kind)
            return None
        if ref.is_param:
            param = self.params.get(ref.name)
            if param is None:
                self.report(
                    error(
                        codes.UNKNOWN_NAME,
                        f"unknown parameter {ref.name!r}",
                        ref.span,
                        f"a {kind} name in quotes or a {kind} parameter",
                        hint=suggest(
                            ref.name, [*self.params], f'write the name in quotes, e.g. "{ref.name}"'
                        ),
                    )
                )
                return None
            if param.type_name not in NAME_TYPES and param.type_name not in VALUE_TYPES:
                return None  # its unknown type is already reported (FL113)
            if param.type_name != kind:
                self.report(
                    error(
                        codes.NOT_A_CONDITION,
                        f"parameter {ref.name!r} is {param.type_name}, "
                        f"but a {_KIND_WORDS.get(kind, kind)} is needed here",
                        ref.span,
                    )
                )
                return None
            return param.default.value if isinstance(param.default.value, str) else None
        self._resolve_name(kind, ref.name, ref.span)
        return ref.name

    def _dynamic_target(self, ref: ast.NameRef, kind: str) -> None:
        """A target named by data: any text will do now; an unknown name takes `on unknown`
        (else `on error`) when the flow runs."""
        expr = ref.expr if ref.expr is not None else ast.Path(ref.span, (ref.name,))
        if ref.expr is None and ref.name not in self.variables and ref.name not in self.records:
            self.report(
                error(
                    codes.UNKNOWN_NAME,
                    f"unknown parameter or variable {ref.name!r}",
                    ref.span,
                    f"a {kind} name in quotes, a {kind} parameter or a text variable",
                    hint=suggest(
                        ref.name,
                        [*self.params, *self.variables],
                        f'write the name in quotes, e.g. "{ref.name}"',
                    ),
                )
            )
            return
        actual = infer(expr, self.scope, self.report)
        if not compatible(TEXT, actual) or actual == "notset":
            word = _KIND_WORDS.get(kind, kind)
            self.report(
                error(
                    codes.WRONG_TYPE,
                    f"{_article(word)} is named by text, but this is {_article(actual)}",
                    ref.span,
                    actual,
                    hint=f"use text(...) to make {_article(word)} name of it",
                )
            )

    def _resolve_name(self, kind: str, name: str, span: Span) -> None:
        if not self.ctx.has_deployment:
            return
        pool: Iterable[str] = {
            "queue": self.ctx.queues,
            "skill": self.ctx.skills,
            "template": self.ctx.templates,
            "bot": self.ctx.bots,
            "schedule": self.ctx.schedules,
            "data_action": self.ctx.data_actions,
            "agent": self.ctx.agents,
            "language": self.ctx.languages,
        }[kind]
        if name in pool:
            return
        word = _KIND_WORDS.get(kind, kind)
        self.report(
            error(
                _KIND_CODES[kind],
                f'unknown {word} "{name}"',
                span,
                f"not declared in {self.ctx.deployment_file}",
                hint=suggest(
                    name, pool, f"declare it in {self.ctx.deployment_file}", show=lambda s: f'"{s}"'
                ),
            )
        )

    # ------------------------------------------------------------ statements
    def _block(self, block: ast.Block, where: _Where) -> None:
        ended_by: ast.Statement | None = None
        for index, stmt in enumerate(block):
            if ended_by is not None:
                self.report(
                    warning(
                        codes.UNREACHABLE_STEP,
                        "this step can never run",
                        stmt.span,
                        "unreachable",
                        hint="remove it, or move it before the step that leaves the block",
                        related=(
                            (ended_by.span, f"the {_describe(ended_by)} always leaves this block"),
                        ),
                    )
                )
                # Still checked: its mistakes are reported now, not when it becomes reachable.
                self.dead += 1
                try:
                    for dead in block[index:]:
                        self._statement(dead, where)
                finally:
                    self.dead -= 1
                return
            self._statement(stmt, where)
            if is_terminal(stmt):
                ended_by = stmt

    # Complex by design: one case per statement kind, exhaustive (assert_never).
    def _statement(self, stmt: ast.Statement, where: _Where) -> None:  # noqa: C901
        s = self.scope
        if isinstance(stmt, ast.Reply):
            self._reply(stmt)
        elif isinstance(stmt, ast.SetVariable):
            self._set_variable(stmt)
        elif isinstance(stmt, ast.SetPriority):
            self._expect_type(stmt.value, NUMBER, "priority")
        elif isinstance(stmt, ast.SetLanguage):
            self._expect_type(stmt.value, TEXT, "language")
            if isinstance(stmt.value, ast.Literal) and isinstance(stmt.value.value, str):
                self._resolve_name("language", stmt.value.value, stmt.value.span)
        elif isinstance(stmt, ast.SetData):
            infer(stmt.value, s, self.report)
        elif isinstance(stmt, ast.AddSkill):
            self._resolve(stmt.skill, "skill", dynamic=True)
            self._proficiency(stmt.min_proficiency, stmt.span)
        elif isinstance(stmt, ast.RemoveSkill):
            self._resolve(stmt.skill, "skill")
        elif isinstance(stmt, ast.MarkNotActionable):
            if self.channels and not any(self.ctx.is_public(c) for c in self.channels):
                self.report(
                    warning(
                        codes.NOT_ACTIONABLE_WITHOUT_POSTS,
                        "only public posts can be non-actionable; this "
                        "flow serves private messages only",
                        stmt.span,
                    )
                )
        elif isinstance(stmt, ast.LinkCustomer):
            self._expect_type(stmt.value, TEXT, "link customer")
            self._verified_link(stmt, where)
        elif isinstance(stmt, ast.GoToState):
            self._goto(stmt)
        elif isinstance(stmt, ast.OutcomeStmt):
            self._outcome(stmt, where)
        elif isinstance(stmt, ast.Break):
            if not where.in_loop:
                self.report(
                    error(
                        codes.BREAK_OUTSIDE_LOOP,
                        "'break' outside a loop",
                        stmt.span,
                        hint="break leaves a repeat or while loop",
                    )
                )
        elif isinstance(stmt, ast.Pass):
            pass  # nothing to check: it does nothing
        elif isinstance(stmt, ast.Log):
            self._text(ast.TextContent(stmt.span, stmt.message), "log")
        elif isinstance(stmt, ast.KeepWaiting):
            if not where.in_queue_timeout:
                self.report(
                    error(
                        codes.KEEP_WAITING_OUTSIDE_TIMEOUT,
                        "'keep waiting' outside a route to queue's 'on timeout'",
                        stmt.span,
                        hint="keep waiting keeps the conversation in the queue whose timeout "
                        "passed; it belongs in that route's 'on timeout:' block",
                    )
                )
        elif isinstance(stmt, ast.If):
            for branch in stmt.branches:
                self._expect_type(branch.condition, "boolean", "condition")
                self._block(branch.body, where)
            if stmt.else_body is not None:
                self._block(stmt.else_body, where)
        elif isinstance(stmt, ast.Switch):
            self._switch(stmt, where)
        elif isinstance(stmt, ast.Match):
            self._match(stmt, where)
        elif isinstance(stmt, ast.Repeat | ast.While):
            self._loop(stmt, where)
        elif isinstance(stmt, ast.Ask):
            self._ask(stmt, where)
        elif isinstance(stmt, ast.Recognize):
            self._branches(stmt, stmt.branches, OUTCOMES[ast.Recognize], where)
        elif isinstance(stmt, ast.RouteQueue):
            self._route_queue(stmt, where)
        elif isinstance(stmt, ast.RouteAgent):
            if stmt.agent is not None:
                self._resolve(stmt.agent, "agent", dynamic=True)
            names = OUTCOMES[ast.RouteAgent]
            self._branches(stmt, stmt.branches, names, where, allowed=(*names, UNKNOWN_TARGET))
        elif isinstance(stmt, ast.BotHandoff):
            self._resolve(stmt.bot, "bot")
            inside = replace(where, bot=None if stmt.bot.is_param else stmt.bot.name)
            self._timed_branches(stmt, stmt.branches, OUTCOMES[ast.BotHandoff], stmt.wait, inside)
        elif isinstance(stmt, ast.DataAction):
            self._data_action(stmt, where)
        elif isinstance(stmt, ast.CallTask):
            self._call_task(stmt, where)
        elif isinstance(stmt, ast.CheckSchedule):
            self._resolve(stmt.schedule, "schedule")
            self._branches(stmt, stmt.branches, OUTCOMES[ast.CheckSchedule], where)
        elif isinstance(stmt, ast.End):
            pass  # its reason is free text; nothing to check
        elif isinstance(stmt, ast.Split):
            for problem in split_problems(stmt):
                self.report(problem)
            for arm in stmt.branches:
                self._block(arm.body, where)
        elif isinstance(stmt, ast.Milestone):
            self.milestones.append(stmt)
        elif isinstance(stmt, ast.TransferFlow):
            for problem in transfer_problems(stmt, self.flow.name, self.ctx.flows):
                self.report(problem)
        elif isinstance(stmt, ast.Survey):
            self._survey(stmt, where)
        else:
            assert_never(stmt)

    def _expect_type(self, expr: ast.Expr, wanted: str, what: str) -> None:
        actual = infer(expr, self.scope, self.report)
        if not compatible(wanted, actual) or (wanted == "boolean" and actual == "notset"):
            code = codes.NOT_A_CONDITION if what == "condition" else codes.WRONG_TYPE
            self.report(
                error(
                    code,
                    f"{what} must be {_article(wanted)}, but this is {_article(actual)}",
                    expr.span,
                    actual,
                )
            )

    def _proficiency(self, value: int | None, span: Span) -> None:
        if value is not None and not 1 <= value <= 5:
            self.report(
                error(
                    codes.BAD_PROFICIENCY,
                    f"proficiency {value} is out of range",
                    span,
                    hint="proficiency goes from 1 (novice) to 5 (expert)",
                )
            )

    def _set_variable(self, stmt: ast.SetVariable) -> None:
        if stmt.name in self.params:
            self.report(
                error(
                    codes.READ_ONLY,
                    f"{stmt.name!r} is a parameter; parameters are read-only",
                    stmt.name_span,
                    hint="declare a variable with var to change it",
                )
            )
            return
        if stmt.name in BUILTINS or stmt.name in self.records:
            self.report(error(codes.READ_ONLY, f"{stmt.name!r} is read-only", stmt.name_span))
            return
        declared = self.variables.get(stmt.name)
        actual = infer(stmt.value, self.scope, self.report)
        if declared is None:
            self.report(
                error(
                    codes.UNKNOWN_NAME,
                    f"unknown variable {stmt.name!r}",
                    stmt.name_span,
                    "not declared",
                    hint=suggest(
                        stmt.name,
                        [*self.variables],
                        f"declare it: var {stmt.name}: {_declarable(actual)} = not set",
                    ),
                )
            )
            return
        if not compatible(declared, actual):
            self.report(
                error(
                    codes.ASSIGNED_WRONG_TYPE,
                    f"variable {stmt.name!r} is {declared}; cannot set it to {_article(actual)}",
                    stmt.value.span,
                    actual,
                )
            )

    def _goto(self, stmt: ast.GoToState) -> None:
        if stmt.state not in self.states:
            names = [d.name for d in self.flow.states]
            self.report(
                error(
                    codes.UNKNOWN_STATE,
                    f"unknown state {stmt.state!r}",
                    stmt.state_span,
                    "no such state",
                    hint=suggest(stmt.state, names, listing("states", names)),
                )
            )
        if not self.dead:
            self.goto_edges.setdefault(self._owner, set()).add(stmt.state)

    def _outcome(self, stmt: ast.OutcomeStmt, where: _Where) -> None:
        if where.task is None:
            self.report(
                error(
                    codes.OUTCOME_OUTSIDE_TASK,
                    "'outcome' is only allowed inside a task",
                    stmt.span,
                    hint="use 'end' or 'go to state' in a state",
                )
            )
            return
        if stmt.name not in where.task.outcomes:
            listed = ", ".join(where.task.outcomes) or "none"
            self.report(
                error(
                    codes.OUTCOME_OUTSIDE_TASK,
                    f"task {where.task.name!r} has no outcome {stmt.name!r}",
                    stmt.span,
                    "not declared",
                    hint=suggest(stmt.name, where.task.outcomes, f"declared outcomes: {listed}"),
                )
            )

    def _switch(self, stmt: ast.Switch, where: _Where) -> None:
        subject = infer(stmt.subject, self.scope, self.report)
        seen: set[object] = set()
        intents = self._intents(stmt.subject, where)
        for case in stmt.cases:
            for value in case.values:
                if intents is not None and isinstance(value.value, str):
                    self._intent(value, intents, where)
                kind = infer(value, self.scope, self.report)
                if not compatible(subject, kind):
                    self.report(
                        error(
                            codes.CASE_WRONG_TYPE,
                            f"case value is {_article(kind)} but the switch "
                            f"is on {_article(subject)}",
                            value.span,
                        )
                    )
                if value.value in seen:
                    self.report(
                        error(
                            codes.DUPLICATE_OUTCOME,
                            f"case {value.source} appears twice",
                            value.span,
                        )
                    )
                seen.add(value.value)
            self._block(case.body, where)
        if stmt.default is not None:
            self._block(stmt.default, where)

    def _intents(self, subject: ast.Expr, where: _Where) -> tuple[str, ...] | None:
        """The intents a `switch bot.intent` may meet: the bot's whose branch it is in, else
        those of every bot of the deployment; None when unknown (nothing to check)."""
        if not isinstance(subject, ast.Path) or subject.parts != ("bot", "intent"):
            return None
        bots = [where.bot] if where.bot else sorted(self.ctx.bots)
        declared = [self.ctx.bot_intents.get(b, ()) for b in bots]
        if not bots or not all(declared):
            return None  # a bot that does not declare its intents may send any
        return tuple(dict.fromkeys(i for intents in declared for i in intents))

    def _intent(self, value: ast.Literal, intents: tuple[str, ...], where: _Where) -> None:
        if value.value in intents:
            return
        whose = f"bot {where.bot!r}" if where.bot else "no bot of the deployment"
        self.report(
            error(
                codes.UNKNOWN_INTENT,
                f"{whose} declares the intent {value.value!r}"
                if not where.bot
                else f"{whose} has no intent {value.value!r}",
                value.span,
                "not a declared intent",
                hint=suggest(str(value.value), intents, listing("intents", intents)),
            )
        )

    def _match(self, stmt: ast.Match, where: _Where) -> None:
        if stmt.subject is not None:
            self._expect_type(stmt.subject, TEXT, "match keywords in")
        seen: dict[str, Span] = {}
        for when in stmt.whens:
            for pattern in when.patterns:
                self._pattern(pattern, seen)
            self._block(when.body, where)
        if stmt.otherwise is not None:
            self._block(stmt.otherwise, where)

    def _pattern(self, pattern: ast.Pattern, seen: dict[str, Span]) -> None:
        if pattern.kind == "regex":
            try:
                re.compile(pattern.text)
            except re.error as exc:
                self.report(
                    error(
                        codes.BAD_REGEX,
                        f"invalid regular expression: {exc.msg}",
                        pattern.span,
                        hint="see Python's re syntax",
                    )
                )
            return
        text = pattern.text.strip()
        if not text or text in {"*", "#", "@"}:
            self.report(
                error(
                    codes.EMPTY_KEYWORD,
                    "empty keyword",
                    pattern.span,
                    hint='write a word, a phrase, a prefix like "fee*", "#tag" or "@handle"',
                )
            )
            return
        key = text.casefold()
        if key in self.own_handles:
            self.report(
                warning(
                    codes.KEYWORD_IS_OWN_HANDLE,
                    f"{pattern.text!r} is the handle this flow serves on "
                    f"{self.own_handles[key]}: every post that mentions the business contains "
                    "it, so this keyword matches them all",
                    pattern.span,
                    hint="match the words that make a post worth an agent's time",
                )
            )
        if key in seen:
            self.report(
                warning(
                    codes.DUPLICATE_KEYWORD,
                    f"keyword {pattern.text!r} is listed twice",
                    pattern.span,
                    hint="remove one",
                    related=((seen[key], "first listed here"),),
                )
            )
        seen.setdefault(key, pattern.span)

    def _loop(self, stmt: ast.Repeat | ast.While, where: _Where) -> None:
        bound = stmt.times if isinstance(stmt, ast.Repeat) else stmt.limit
        if not 1 <= bound <= MAX_REPEAT:
            self.report(
                error(
                    codes.BAD_LOOP_BOUND,
                    f"a loop runs 1 to {MAX_REPEAT} times, not {bound}",
                    stmt.span,
                    hint="loops are bounded so that one message cannot run the flow forever",
                )
            )
        if isinstance(stmt, ast.While):
            self._expect_type(stmt.condition, "boolean", "condition")
        self._block(stmt.body, replace(where, in_loop=True))

    def _ask(self, stmt: ast.Ask, where: _Where) -> None:
        self._text(stmt.prompt)
        declared = self.variables.get(stmt.into)
        if stmt.into in self.params or stmt.into in BUILTINS:
            self.report(
                error(
                    codes.READ_ONLY,
                    f"cannot store the answer in {stmt.into!r}: it is read-only",
                    stmt.into_span,
                )
            )
        elif declared is not None and not compatible(declared, TEXT):
            self.report(
                error(
                    codes.ASSIGNED_WRONG_TYPE,
                    f"the answer is text, but {stmt.into!r} is {declared}",
                    stmt.into_span,
                )
            )
        self._timed_branches(stmt, stmt.branches, OUTCOMES[ast.Ask], stmt.wait, where)

    def _in_queue(self, decl: ast.InQueue) -> None:
        if decl.queue is not None and decl.queue_span is not None:
            self._resolve_name("queue", decl.queue, decl.queue_span)
        self._owner = "while queued" if decl.queue is None else f"while queued in {decl.queue}"
        first: dict[str, ast.QueueActivity] = {}
        for activity in decl.activities:
            if activity.kind in first and activity.kind != "after":
                head = "every" if activity.kind == "every" else "when customer writes"
                self.report(
                    error(
                        codes.DUPLICATE_QUEUE_ACTIVITY,
                        f"'while queued' has '{head}' twice",
                        activity.span,
                        "again",
                        hint="join the two blocks into one",
                        related=((first[activity.kind].span, "first here"),),
                    )
                )
            first.setdefault(activity.kind, activity)
            self._queue_interval(activity)
            self._only_beside_a_wait(
                activity.body,
                codes.NOT_WHILE_QUEUED,
                "while the conversation waits in a queue",
                "beside a wait a block replies, logs, sets data, priority and skills, decides "
                "(if, switch, match) and may end the wait ('end')",
            )
            self._block(activity.body, _Where())

    def _beside_the_flow(self, handler: ast.OnEvent) -> None:
        """`on window closing` runs beside whatever the flow waits for (an answer, a bot, a
        queue): it may not wait, route or jump itself."""
        self._only_beside_a_wait(
            handler.body,
            codes.NOT_BESIDE_THE_FLOW,
            "in 'on window closing': it runs beside what the flow is waiting for",
            "'on window closing' replies, logs, sets data and decides (if, switch, match); the "
            "customer's answer reaches the flow as usual",
        )

    def _only_beside_a_wait(self, body: ast.Block, code: str, where: str, hint: str) -> None:
        """Refuse each statement of a block that runs beside a wait which could not (one that
        waits, routes or jumps itself)."""
        for stmt in walk(body):
            if not isinstance(stmt, _BESIDE_A_WAIT):
                self.report(
                    error(code, f"{_describe(stmt)} cannot run {where}", stmt.span, hint=hint)
                )

    def _queue_interval(self, activity: ast.QueueActivity) -> None:
        interval = activity.interval
        if interval is None:
            return
        if activity.kind == "every" and interval < timedelta(minutes=1):
            message = "an in-queue 'every' of less than a minute would flood the customer"
        elif interval <= timedelta(0):
            message = "'after' needs a time: after 0s is when the wait starts"
        else:
            return
        self.report(
            error(codes.BAD_QUEUE_INTERVAL, message, activity.span, hint="e.g. every 2m, after 10m")
        )

    def _survey(self, stmt: ast.Survey, where: _Where) -> None:
        if not stmt.questions:
            self.report(
                error(
                    codes.SURVEY_WITHOUT_QUESTION,
                    f"survey {stmt.name!r} asks no question",
                    stmt.span,
                    hint='add a line like:  rating "How did we do, from 1 to 5?" from 1 to 5 '
                    "into score",
                )
            )
        asked: dict[str, Span] = {}
        for question in stmt.questions:
            self._text(question.prompt, "question")
            if question.into in asked:
                self.report(
                    error(
                        codes.SURVEY_SAME_ANSWER,
                        f"two questions of survey {stmt.name!r} store into {question.into!r}",
                        question.into_span,
                        "stored again here",
                        hint="give each question a name of its own",
                        related=((asked[question.into], "first stored here"),),
                    )
                )
            asked.setdefault(question.into, question.into_span)
            self._answer_into(question)
            if question.kind == "rating":
                self._rating_scale(question)
        self._timed_branches(stmt, stmt.branches, OUTCOMES[ast.Survey], stmt.wait, where)

    def _answer_into(self, question: ast.SurveyQuestion) -> None:
        answer = NUMBER if question.kind == "rating" else TEXT
        declared = self.variables.get(question.into)
        if question.into in self.params or question.into in BUILTINS:
            self.report(
                error(
                    codes.READ_ONLY,
                    f"cannot store the answer in {question.into!r}: it is read-only",
                    question.into_span,
                )
            )
        elif declared is not None and not compatible(declared, answer):
            self.report(
                error(
                    codes.ASSIGNED_WRONG_TYPE,
                    f"the {question.kind}'s answer is {_article(answer)}, but "
                    f"{question.into!r} is {declared}",
                    question.into_span,
                )
            )

    def _rating_scale(self, question: ast.SurveyQuestion) -> None:
        low, high = question.low or 0, question.high or 0
        if not 0 <= low < high <= 10:
            self.report(
                error(
                    codes.BAD_RATING_SCALE,
                    f"a rating from {low} to {high}: the scale must go from a lower to a "
                    "higher whole number, within 0 to 10",
                    question.span,
                    hint="e.g. from 1 to 5 (CSAT) or from 0 to 10",
                )
            )
        if question.retry is not None:
            self._text(ast.TextContent(question.span, question.retry), "question")

    def _route_queue(self, stmt: ast.RouteQueue, where: _Where) -> None:
        self._resolve(stmt.queue, "queue", dynamic=True)
        for skill in stmt.skills:
            self._resolve(skill.skill, "skill", dynamic=True)
            self._proficiency(skill.min_proficiency, skill.span)
        if stmt.language is not None:
            self._resolve(stmt.language, "language", dynamic=True)
        if stmt.priority is not None:
            self._expect_type(stmt.priority, NUMBER, "priority")
        for agent in stmt.preferred_agents:
            self._resolve(agent.agent, "agent", dynamic=True)
        self._agent_steps(stmt.agent_steps)
        self._timed_branches(
            stmt,
            stmt.branches,
            OUTCOMES[ast.RouteQueue],
            stmt.timeout,
            replace(where, in_queue_timeout=True),
            warn_missing=stmt.timeout is not None,
            optional=(UNKNOWN_TARGET,),
        )

    def _agent_steps(self, steps: tuple[ast.AgentTarget, ...]) -> None:
        for problem in step_order_problems(steps):
            self.report(problem)
        attributes = self.ctx.agent_attributes if self.ctx.has_deployment else None
        for step in steps:
            if step.condition is not None:
                condition_problems(
                    step.condition,
                    attributes,
                    lambda expr: infer(expr, self.scope, self.report),
                    self.report,
                )

    def _data_action(self, stmt: ast.DataAction, where: _Where) -> None:
        self._resolve(stmt.action, "data_action")
        info = self.ctx.data_actions.get(stmt.action.name)
        for arg in stmt.args:
            infer(arg.value, self.scope, self.report)
            if info is not None and info.inputs and arg.name not in info.inputs:
                self.report(
                    error(
                        codes.UNKNOWN_INPUT,
                        f"data action {info.name!r} takes no input {arg.name!r}",
                        arg.span,
                        hint=suggest(arg.name, info.inputs, listing("inputs", info.inputs)),
                    )
                )
        proved = (
            {"success": replace(where, succeeded=(*where.succeeded, (stmt.into, stmt)))}
            if stmt.into
            else None
        )
        self._branches(stmt, stmt.branches, OUTCOMES[ast.DataAction], where, branch_where=proved)

    def _verified_link(self, stmt: ast.LinkCustomer, where: _Where) -> None:
        """`verified by R`: inside R's `on success:`, linking a value R returned."""
        proof = stmt.verified_by
        if proof is None:
            return
        calls = [call for into, call in where.succeeded if into == proof]
        if not calls:
            self.report(
                error(
                    codes.LINK_OUTSIDE_SUCCESS,
                    f"'verified by {proof}' is only proof inside 'on success:' of the data "
                    f"action that stores into {proof}",
                    stmt.span,
                    "not inside that data action's success",
                    hint=f"move the link under 'call data action ... into {proof}:' / "
                    "'on success:', or drop 'verified by' to record an unverified claim",
                )
            )
        elif not (isinstance(stmt.value, ast.Path) and stmt.value.parts[0] == proof):
            self.report(
                error(
                    codes.LINK_VALUE_NOT_RETURNED,
                    f"a verified link takes the value {proof} returned, not another value",
                    stmt.value.span,
                    f"not read from {proof}",
                    hint=f"link to {proof}.<output>, e.g. {proof}.{stmt.kind}: what the "
                    "customer typed is only a claim",
                )
            )
        else:
            self._proves_identity(calls[-1].action, stmt)

    def _proves_identity(self, action: ast.NameRef, stmt: ast.LinkCustomer) -> None:
        """The deployment says whether a data action's success proves who the customer is."""
        if action.is_param:
            self.report(
                error(
                    codes.LINK_WITHOUT_IDENTITY,
                    f"a verified link needs its data action named, not the parameter {action.name}",
                    stmt.span,
                    "cannot be checked",
                    hint="a parameter can name any data action when the flow runs, even one that "
                    "only looks up what the customer typed: call the verifying action by its "
                    'name, e.g. call data action "CRM Check Code"',
                )
            )
            return
        info = self.ctx.data_actions.get(action.name)
        if info is None or info.proves_identity:
            return  # an unknown action: reported where it is called
        self.report(
            error(
                codes.LINK_WITHOUT_IDENTITY,
                f'data action "{info.name}" does not prove who the customer is',
                stmt.span,
                "not proof",
                hint="a lookup of what the customer typed proves nothing; verify with a data "
                "action that checks a one-time code or a secret, declared with "
                f"'proves_identity: true' in {self.ctx.deployment_file}",
            )
        )

    def _call_task(self, stmt: ast.CallTask, where: _Where) -> None:
        task = self.tasks.get(stmt.task)
        if task is None:
            self.report(
                error(
                    codes.UNKNOWN_TASK,
                    f"unknown task {stmt.task!r}",
                    stmt.task_span,
                    "no such task",
                    hint=suggest(
                        stmt.task, self.tasks, "declare it: task " + stmt.task + " outcomes done:"
                    ),
                )
            )
            for branch in stmt.branches:
                self._block(branch.body, where)
            return
        if not self.dead:
            self.task_calls.setdefault(self._owner, set()).add(task.name)
        self._branches(stmt, stmt.branches, task.outcomes, where, warn_missing=bool(stmt.branches))

    def _timed_branches(
        self,
        stmt: ast.Statement,
        branches: tuple[ast.OutcomeBranch, ...],
        names: tuple[str, ...],
        limit: timedelta | None,
        where: _Where,
        warn_missing: bool = True,
        optional: tuple[str, ...] = (),
    ) -> None:
        if limit is None:
            for branch in branches:
                if branch.name == "timeout":
                    self.report(
                        error(
                            codes.TIMEOUT_WITHOUT_LIMIT,
                            "'on timeout' needs a time limit on this step",
                            branch.span,
                            hint="add 'wait 10m' (or 'timeout 10m' in a route block)",
                        )
                    )
            names = tuple(n for n in names if n != "timeout")
        allowed = (*names, "timeout", *optional)
        self._branches(stmt, branches, names, where, warn_missing=warn_missing, allowed=allowed)

    def _branches(
        self,
        stmt: ast.Statement,
        branches: tuple[ast.OutcomeBranch, ...],
        names: tuple[str, ...],
        where: _Where,
        warn_missing: bool = True,
        allowed: tuple[str, ...] | None = None,
        branch_where: dict[str, _Where] | None = None,
    ) -> None:
        allowed = allowed or names
        seen: set[str] = set()
        misspelt = False
        for branch in branches:
            if branch.name not in allowed:
                misspelt = True
                self.report(
                    error(
                        codes.UNKNOWN_OUTCOME,
                        f"{_describe(stmt)} has no outcome {branch.name!r}",
                        branch.span,
                        "unknown outcome",
                        hint=suggest(branch.name, allowed, listing("outcomes", allowed)),
                    )
                )
            elif branch.name in seen:
                self.report(
                    error(
                        codes.DUPLICATE_OUTCOME,
                        f"outcome {branch.name!r} is handled twice",
                        branch.span,
                    )
                )
            seen.add(branch.name)
            self._block(branch.body, (branch_where or {}).get(branch.name, where))
        missing = [n for n in names if n not in seen]
        kinds = OUTCOME_KINDS.get(type(stmt))
        hint = (
            "without 'on timeout:' the flow ends when the timeout passes, and the "
            "conversation leaves the queue"
            if isinstance(stmt, ast.RouteQueue)
            else "when an outcome has no branch the flow continues after "
            "this step; add 'on " + (missing or [""])[0] + ":' to be explicit"
        )
        if kinds is not None:
            missing, hint = _surprising(missing, seen, kinds)
        if branches and warn_missing and missing and not misspelt:
            self.report(
                warning(
                    codes.UNHANDLED_OUTCOME,
                    f"{_describe(stmt)} does not handle {', '.join(repr(m) for m in missing)}",
                    stmt.span,
                    "missing outcome",
                    hint=hint,
                )
            )

    # ------------------------------------------------------------ replies
    def _reply(self, stmt: ast.Reply) -> None:
        content = stmt.content
        kind = self._content(content, stmt)
        self._channel_support(kind, stmt, content)
        self._option_labels(content)
        self._repeated_options(content)
        self._blank_options(content)
        self._text_fits(content, stmt.visibility)
        self._automated_public_reply(stmt)
        self._private_reply_route(stmt)
        if stmt.visibility != "default" and self.channels:
            public = any(self.ctx.is_public(c) for c in self.channels)
            if not public:
                self.report(
                    warning(
                        codes.VISIBILITY_WITHOUT_PUBLIC_CHANNEL,
                        f"'reply {stmt.visibility}' only matters on public "
                        "posts; this flow serves private messages only",
                        stmt.span,
                    )
                )
        if stmt.guard is not None and stmt.guard.action == "template":
            assert stmt.guard.template is not None
            name = self._resolve(stmt.guard.template, "template")
            self._template_args(stmt.guard.template, name, stmt.guard.args)
            info = self.ctx.templates.get(name or "")
            if info is not None and "whatsapp" in self.channels and info.kind != "whatsapp":
                self.report(
                    warning(
                        codes.WHATSAPP_TEMPLATE_MISUSED,
                        f'"{info.name}" is not a WhatsApp approved template; '
                        "outside the 24 h window WhatsApp accepts only those",
                        stmt.guard.template.span,
                    )
                )
            if info is not None and not info.approved:
                self.report(
                    warning(
                        codes.WHATSAPP_TEMPLATE_MISUSED,
                        f'template "{info.name}" is not approved, so it cannot be sent',
                        stmt.guard.template.span,
                    )
                )

    def _content(self, content: ast.Content, stmt: ast.Reply) -> str:
        if isinstance(content, ast.TextContent):
            self._text(content)
            return content.choices.kind if content.choices else "text"
        if isinstance(content, ast.TemplateContent):
            name = self._resolve(content.template, "template")
            self._template_args(content.template, name, content.args)
            info = self.ctx.templates.get(name or "")
            if info is None:
                return "text"
            return "template" if info.kind == "whatsapp" else info.kind
        if isinstance(content, ast.MediaContent):
            return content.kind
        return "location"

    def _text(self, content: ast.TextContent, what: str = "reply") -> None:
        if not is_template(content.text):
            return
        for problem in template_problems(content.text):
            unclosed = unclosed_tag(content.text)
            if unclosed is not None:
                opening, _, closing = unclosed.message.partition(" without ")
                self.report(
                    error(
                        codes.BAD_REPLY_TEMPLATE,
                        f"{what} text is not a valid template: a '{opening}' is not closed",
                        part_span(content.span, content.text, unclosed, _escaped),
                        f"no '{closing}' after this",
                        hint=f"close it with '{closing}' before the text's closing quote, "
                        "e.g. {{ customer.name }}",
                    )
                )
                return
            self.report(
                error(
                    codes.BAD_REPLY_TEMPLATE,
                    f"{what} text is not a valid template: {problem.message}",
                    content.span,
                    hint="templates use {{ name }} for values",
                )
            )
            return
        for problem in unsafe_template_parts(content.text):
            self.report(
                error(
                    codes.UNSAFE_REPLY_TEMPLATE,
                    problem.message,
                    part_span(content.span, content.text, problem, _escaped),
                    "refused by the template sandbox",
                    hint=problem.hint,
                )
            )
        names = set(self._template_names())
        for missing in sorted(undeclared_names(content.text) - names):
            at = name_position(content.text, missing)
            self.report(
                error(
                    codes.TEMPLATE_UNKNOWN_NAME,
                    f"the {what} uses {missing!r}, which the flow does not define",
                    content.span
                    if at is None
                    else part_span(content.span, content.text, at, _escaped),
                    "unknown name in template",
                    hint=suggest(missing, names, f"declare it: var {missing}: text = not set"),
                )
            )

    def _template_names(self) -> list[str]:
        return [*self.variables, *self.params, *self.records, *BUILTINS, *STORED_DATA]

    def _template_args(self, ref: ast.NameRef, name: str | None, args: tuple[ast.Arg, ...]) -> None:
        for arg in args:
            infer(arg.value, self.scope, self.report)
        info = self.ctx.templates.get(name or "")
        if info is None:
            return
        given = {a.name for a in args}
        if info.kind == "whatsapp":
            needed = set(info.parameters)
            for arg in args:
                if arg.name not in needed:
                    self.report(
                        error(
                            codes.WHATSAPP_TEMPLATE_MISUSED,
                            f'WhatsApp template "{info.name}" has no parameter {arg.name!r}',
                            arg.span,
                            hint="parameters: " + (", ".join(info.parameters) or "none"),
                        )
                    )
            for absent in sorted(needed - given):
                self.report(
                    error(
                        codes.WHATSAPP_TEMPLATE_MISUSED,
                        f'WhatsApp template "{info.name}" needs parameter {absent!r}',
                        ref.span,
                        hint=f"add: with {absent} = ...",
                    )
                )
            return
        if info.source is None:
            return
        problems = template_problems(info.source)
        for problem in problems:
            where = info.span
            where_text = (
                f"{where.file}:{where.line + problem.line - 1}" if where else "the deployment file"
            )
            self.report(
                error(
                    codes.BAD_REPLY_TEMPLATE,
                    f'template "{info.name}" does not compile: {problem.message} ({where_text})',
                    ref.span,
                    hint="fix the template in the deployment file",
                )
            )
        if problems:
            return
        for problem in unsafe_template_parts(info.source):
            where = info.span
            where_text = (
                f"{where.file}:{where.line + problem.line - 1}" if where else "the deployment file"
            )
            self.report(
                error(
                    codes.UNSAFE_REPLY_TEMPLATE,
                    f'template "{info.name}" is refused: {problem.message} ({where_text})',
                    ref.span,
                    hint="fix the template in the deployment file",
                )
            )
        available = given | set(self._template_names())
        for missing in sorted(undeclared_names(info.source) - available):
            self.report(
                error(
                    codes.TEMPLATE_UNKNOWN_NAME,
                    f'template "{info.name}" uses {missing!r}, which this reply does not give',
                    ref.span,
                    hint=f"add: with {missing} = ...",
                )
            )

    def _served(self) -> list[ChannelInfo]:
        return [
            self.ctx.channels[c] for c in dict.fromkeys(self.channels) if c in self.ctx.channels
        ]

    def _text_fits(self, content: ast.Content, visibility: str) -> None:
        """A reply's fixed text (a template's literal part) against every served channel's
        limit, counted as that channel counts (a private reply to a public post goes by the
        channel's private route: that channel's limit applies)."""
        source: str | None = None
        if isinstance(content, ast.TextContent):
            source = content.text
        elif isinstance(content, ast.TemplateContent):
            info = self.ctx.templates.get(content.template.name)
            source = info.source if info is not None else None
        if not source:
            return
        text = fixed_text(source)
        infos = self._served()
        if visibility == "privately":
            routed = (self.ctx.channels.get(i.private_via) if i.public else i for i in infos)
            infos = list({info.key: info for info in routed if info is not None}.values())
        over = [
            (info, length)
            for info in infos
            if info.max_text is not None and (length := info.text_length(text)) > info.max_text
        ]
        if not over:
            return
        what = "the reply" if text == source else "the reply's fixed text (without its values)"
        counts = "; ".join(
            f"{info.key} takes {info.max_text:,}, this is {length:,}" for info, length in over
        )
        if len(over) == len(infos):
            self.report(
                error(
                    codes.REPLY_TOO_LONG,
                    f"{what} is too long for every channel this flow serves ({counts})",
                    content.span,
                    hint="shorten it, or split it into several replies",
                )
            )
        else:
            self.report(
                warning(
                    codes.REPLY_TOO_LONG,
                    f"{what} is too long for some channels this flow serves ({counts}); "
                    "there it is blocked",
                    content.span,
                    hint="shorten it, or split it into several replies",
                )
            )

    def _automated_public_reply(self, stmt: ast.Reply) -> None:
        """A flow's reply to a public post is automated: X allows one per post, and none to
        posts picked by keyword matching."""
        if stmt.visibility == "privately":
            return
        for info in self._served():
            if info.public and info.automated_replies_per_inbound is not None:
                limit = info.automated_replies_per_inbound
                self.report(
                    warning(
                        codes.AUTOMATED_PUBLIC_REPLY,
                        f"an automatic reply on {info.key}: the channel allows {limit} automated "
                        f"repl{'y' if limit == 1 else 'ies'} per post, and forbids automatic "
                        "replies to posts chosen by keyword",
                        stmt.span,
                        hint="let an agent answer public posts (a person's reply is not "
                        "automated)"
                        + (", or reply privately" if info.private_route == "any" else ""),
                    )
                )

    def _private_reply_route(self, stmt: ast.Reply) -> None:
        """A flow's `reply privately` on a public channel where a flow cannot send one: it
        would be blocked there (never posted publicly)."""
        if stmt.visibility != "privately":
            return
        for info in self._served():
            if not info.public or info.private_route == "any":
                continue
            why = (
                "only an agent may answer there privately (automated direct messages are "
                "allowed only after the customer has sent one)"
                if info.private_route == "agent"
                else "the channel has no private route"
            )
            self.report(
                warning(
                    codes.PRIVATE_REPLY_BLOCKED,
                    f"'reply privately' is blocked on {info.key}: {why}; it is never posted "
                    "publicly instead",
                    stmt.span,
                    hint="reply publicly asking the customer to send you a direct message, "
                    "and let an agent answer privately",
                )
            )

    def _option_labels(self, content: ast.Content) -> None:
        """An option (or a deployment template's item title) longer than a served channel
        shows on a quick reply or button: the policy blocks the reply there rather than cut
        the label (a cut one can say something else)."""
        kind: str
        if isinstance(content, ast.TextContent) and content.choices is not None:
            kind, options, span = (
                content.choices.kind,
                content.choices.options,
                content.choices.span,
            )
        elif isinstance(content, ast.TemplateContent):
            template = self.ctx.templates.get(content.template.name)
            if template is None or not template.options:
                return
            kind, options, span = template.kind, template.options, content.span
        else:
            return
        if kind not in ("quick_replies", "buttons", "carousel", "card"):
            return
        infos = self._served()
        over: list[str] = []
        for info in infos:
            quick = kind == "quick_replies"
            limit = info.quick_reply_label if quick else info.button_label
            shown = {"quick_replies": info.max_quick_replies, "buttons": info.max_buttons}
            count = shown.get(kind, len(options))  # a carousel's or card's items: each a button
            what = "quick reply" if quick else "button"
            if kind in shown and count and info.list_rows and len(options) > count:
                count, limit, what = info.list_rows, info.list_row_label, "list row"
            if limit is None or kind not in info.content or not count:
                continue  # no limit, or sent as a numbered list or text
            long = [o for o in options[:count] if info.text_length(o) > limit]
            if long:
                length = info.text_length(long[0])
                over.append(
                    f"{info.key}: at most {limit} characters on a {what}, {long[0]!r} is {length}"
                )
        if not over:
            return
        report = error if len(over) == len(infos) else warning
        where = "every channel this flow serves" if report is error else "some channels"
        self.report(
            report(
                codes.OPTION_LABEL_TOO_LONG,
                f"an option is too long for {where} ({'; '.join(over)}); a label is never cut, "
                "so there the reply is blocked",
                span,
                hint="shorten the option, or ask the question in the text",
            )
        )

    def _blank_options(self, content: ast.Content) -> None:
        """An option whose label is blank: on every channel, as the policy blocks it where
        options are shown (and WhatsApp's id, the label, would be empty)."""
        if not isinstance(content, ast.TextContent) or content.choices is None:
            return
        blank = [n for n, option in enumerate(content.choices.options, 1) if not option.strip()]
        if blank:
            self.report(
                error(
                    codes.BLANK_OPTION,
                    f"option {blank[0]} is blank ({content.choices.options[blank[0] - 1]!r}): "
                    "the customer has nothing to choose it by, and WhatsApp refuses a button "
                    "or list row without an id (its label)",
                    content.choices.span,
                    hint="give each option words of its own, or remove it",
                )
            )

    def _repeated_options(self, content: ast.Content) -> None:
        """Two of a reply's options with the same label (surrounding spaces aside) where a
        served channel refuses them (`distinct_options`): the policy blocks the reply there."""
        if not isinstance(content, ast.TextContent) or content.choices is None:
            return
        choices = content.choices
        infos = self._served()
        refusing: list[str] = []
        repeated = ""
        for info in infos:
            shown = {"quick_replies": info.max_quick_replies, "buttons": info.max_buttons}
            count = shown[choices.kind]
            if not info.distinct_options or choices.kind not in info.content or not count:
                continue  # taken as written, or sent as a numbered list
            if info.list_rows and len(choices.options) > count:
                count = info.list_rows
            labels = [option.strip() for option in choices.options[:count]]
            twice = [label for n, label in enumerate(labels) if label in labels[:n]]
            if twice:
                refusing.append(info.key)
                repeated = twice[0]
        if not refusing:
            return
        report = error if len(refusing) == len(infos) else warning
        self.report(
            report(
                codes.REPEATED_OPTION,
                f"two options read {repeated!r}; {', '.join(refusing)} refuses options with "
                "the same label, so there the reply is blocked",
                choices.span,
                hint="give each option a label of its own",
            )
        )

    def _channel_support(self, kind: str, stmt: ast.Reply, content: ast.Content) -> None:
        infos = self._served()
        if not infos or kind == "text":
            return
        unsupported = [i.key for i in infos if kind not in i.content]
        itemised = _ITEMISED_AS_TEXT.get(kind)
        if unsupported and itemised:  # the policy sends it as text there, items and all
            self.report(
                warning(
                    codes.CONTENT_NO_CHANNEL_CARRIES,
                    f"{', '.join(unsupported)} cannot carry a {kind}: there it is sent as "
                    f"{itemised}",
                    content.span,
                    hint="a template's own `fallback:` is sent there instead, as it is",
                )
            )
        elif len(unsupported) == len(infos):
            self.report(
                error(
                    codes.CONTENT_NO_CHANNEL_CARRIES,
                    f"none of the channels this flow serves can carry {kind.replace('_', ' ')}",
                    content.span,
                    hint="send text, or serve a channel that supports it",
                )
            )
        elif unsupported:
            self.report(
                warning(
                    codes.CONTENT_NO_CHANNEL_CARRIES,
                    f"{', '.join(unsupported)} cannot carry "
                    f"{kind.replace('_', ' ')}; there the reply is sent as "
                    "text",
                    content.span,
                )
            )
        if isinstance(content, ast.TextContent) and content.choices is not None:
            count = len(content.choices.options)
            for info in infos:
                limit = (
                    info.max_quick_replies
                    if content.choices.kind == "quick_replies"
                    else info.max_buttons
                )
                listed = ""
                if limit and info.list_rows:  # more go as a list message, up to its rows
                    limit, listed = max(limit, info.list_rows), " (as a list)"
                if limit is not None and count > limit and info.key not in unsupported:
                    self.report(
                        warning(
                            codes.TOO_MANY_BUTTONS,
                            f"{info.key} shows at most {limit} "
                            f"{content.choices.kind.replace('_', ' ')}"
                            f"{listed}; "
                            f"this reply has {count}",
                            content.choices.span,
                        )
                    )

    # ------------------------------------------------------------ whole-flow structure
    def _reachability(self) -> None:
        if not self.states:
            return
        entry = next(iter(self.states))
        reachable_states: set[str] = set()
        reachable_tasks: set[str] = set()
        todo = [f"state {entry}", "on error", *(f"on {h.event}" for h in self.flow.handlers)]
        seen: set[str] = set()
        while todo:
            owner = todo.pop()
            if owner in seen:
                continue
            seen.add(owner)
            for target in self.goto_edges.get(owner, ()):
                reachable_states.add(target)
                todo.append(f"state {target}")
            for task in self.task_calls.get(owner, ()):
                reachable_tasks.add(task)
                todo.append(f"task {task}")
        reachable_states.add(entry)
        for name, state in self.states.items():
            if name not in reachable_states:
                self.report(
                    warning(
                        codes.UNUSED_STATE,
                        f"state {name!r} is never entered",
                        state.span,
                        hint=f"no 'go to state {name}' leads here; the flow starts in {entry!r}",
                    )
                )
        for name, declared in self.tasks.items():
            if name not in reachable_tasks and declared.span.file == self.flow.span.file:
                self.report(
                    warning(codes.UNUSED_TASK, f"task {name!r} is never called", declared.span)
                )
        self._task_cycles()

    def _task_cycles(self) -> None:
        reported: set[frozenset[str]] = set()

        def visit(current: str, path: list[str]) -> None:
            for callee in sorted(self.task_calls.get(f"task {current}", ())):
                if callee in path:
                    members = path[path.index(callee) :]
                    if frozenset(members) in reported:
                        return
                    reported.add(frozenset(members))
                    cycle = " -> ".join([*members, callee])
                    self.report(
                        error(
                            codes.RECURSIVE_TASKS,
                            f"tasks call each other in a loop: {cycle}",
                            self.tasks[callee].span,
                            hint="a task may not call itself, directly or not",
                        )
                    )
                    return
                visit(callee, [*path, callee])

        for name in self.tasks:
            visit(name, [name])


_BESIDE_A_WAIT = (
    ast.Reply,
    ast.SetVariable,
    ast.SetPriority,
    ast.SetLanguage,
    ast.SetData,
    ast.AddSkill,
    ast.RemoveSkill,
    ast.Log,
    ast.If,
    ast.Switch,
    ast.Match,
    ast.Pass,
    ast.End,
)
"""The steps a `while queued` block may take: none waits, routes or jumps elsewhere."""


def _surprising(
    missing: list[str], seen: set[str], kinds: tuple[tuple[str, ...], ...]
) -> tuple[list[str], str]:
    """The unhandled outcomes whose kind has a handled one (`OUTCOME_KINDS`), and the hint."""
    for kind in kinds:
        handled = [n for n in kind if n in seen]
        unhandled = [n for n in kind if n in missing]
        if handled and unhandled:
            others = [n for other in kinds if other is not kind for n in other]
            first = unhandled[0]
            hint = (
                f"'{handled[0]}' is handled but '{first}' continues after this step, as "
                f"{' and '.join(repr(n) for n in others)} {'does' if len(others) == 1 else 'do'}; "
                f"add 'on {first}:' (with 'pass' in it to continue on purpose)"
            )
            return [n for n in missing if n in unhandled], hint
    return [], ""


def _describe(stmt: ast.Statement) -> str:
    names = {
        ast.Ask: "ask",
        ast.Recognize: "recognize customer",
        ast.RouteAgent: "route to agent",
        ast.RouteQueue: "route to queue",
        ast.BotHandoff: "hand off to bot",
        ast.DataAction: "call data action",
        ast.CallTask: "call task",
        ast.CheckSchedule: "check schedule",
        ast.Survey: "survey",
        ast.End: "end",
        ast.TransferFlow: "transfer to flow",
        ast.GoToState: "go to state",
        ast.OutcomeStmt: "outcome",
        ast.Break: "break",
        ast.KeepWaiting: "keep waiting",
        ast.MarkNotActionable: "mark not actionable",
        ast.If: "if",
        ast.Switch: "switch",
    }
    return f"'{names.get(type(stmt), type(stmt).__name__.lower())}'"


def _declarable(type_name: str) -> str:
    return type_name if type_name in (*VALUE_TYPES, *TIME_TYPES) else "text"


def _article(type_name: str) -> str:
    if type_name == "notset":
        return "not set"
    return f"{'an' if type_name[0] in 'aeiou' else 'a'} {type_name}"


def _shown_type(type_name: str) -> str:
    return "'not set'" if type_name == "notset" else _article(type_name)
