"""Lark parse tree -> typed AST (`flowlang.language.ast`).

One method per grammar rule; each docstring quotes the rule it handles. Children arrive already
transformed (bottom-up), with `None` in place of an absent optional part.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from lark import Token, Tree
from lark.exceptions import GrammarError, VisitError
from lark.tree import Meta

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Span, error
from flowlang.durations import parse_duration
from flowlang.errors import InputError
from flowlang.language import ast


class BuildError(InputError):
    """A construct that parsed but cannot be represented (e.g. a duration out of range)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message, [diagnostic])
        self.diagnostic = diagnostic


def _unquote(token: Token | str) -> str:
    raw = str(token)[1:-1]
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class AstBuilder:
    def __init__(self, filename: str) -> None:
        self.filename = filename

    def build(self, tree: Tree[Token], comments: tuple[ast.Comment, ...]) -> ast.Flow:
        flow = self._built(tree)
        assert isinstance(flow, ast.Flow)
        return ast.Flow(flow.span, flow.name, flow.declarations, comments, flow.module)

    def _built(self, tree: Tree[Token]) -> Any:
        """`tree` bottom-up, as Lark's `Transformer` with `v_args(meta=True)` would (a rule with
        no method here stays a `Tree`; what a method raises comes wrapped in `VisitError`), with
        one call a node instead of Lark's wrappers made anew for each."""
        children = [self._built(c) if isinstance(c, Tree) else c for c in tree.children]
        rule: Callable[[Meta, list[Any]], Any] | None = getattr(self, tree.data, None)
        if rule is None:
            return Tree(tree.data, children, tree.meta)
        try:
            return rule(tree.meta, children)
        except GrammarError:
            raise
        except Exception as exc:
            raise VisitError(tree.data, tree, exc) from exc  # type: ignore[no-untyped-call]

    # -- helpers
    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span.point(self.filename, 1, 1)
        return Span(self.filename, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, token: Token) -> Span:
        return Span(
            self.filename,
            token.line or 1,
            token.column or 1,
            token.end_line or token.line or 1,
            token.end_column or (token.column or 1) + 1,
        )

    def _duration(self, token: Token) -> timedelta:
        try:
            return parse_duration(str(token))
        except ValueError as exc:
            raise BuildError(
                error(
                    codes.BAD_DURATION,
                    f"invalid duration {str(token)!r}: {exc}",
                    self._tspan(token),
                    hint="write durations like 30s, 10m, 72h, 7d",
                )
            ) from exc

    def _opt_duration(self, token: Token | None) -> timedelta | None:
        return None if token is None else self._duration(token)

    def _int(self, token: Token) -> int:
        text = str(token)
        if "." in text:
            raise BuildError(
                error(
                    codes.NOT_A_WHOLE_NUMBER,
                    f"expected a whole number, found {text}",
                    self._tspan(token),
                )
            )
        return int(text)

    # -- file
    def start(self, meta: Meta, children: list[Any]) -> ast.Flow:
        """start: _NL? (flow_header | module_header) declaration*"""
        name, _, module = children[0]
        return ast.Flow(self._span(meta), name, tuple(children[1:]), module=module)

    def module_header(self, meta: Meta, children: list[Token]) -> tuple[str, Span, bool]:
        """module_header: "module" STRING _NL"""
        return _unquote(children[0]), self._span(meta), True

    def use_decl(self, meta: Meta, children: list[Token]) -> ast.Use:
        """use_decl: "use" STRING _NL"""
        return ast.Use(self._span(meta), _unquote(children[0]), self._tspan(children[0]))

    def flow_header(self, meta: Meta, children: list[Token]) -> tuple[str, Span, bool]:
        """flow_header: "flow" STRING _NL"""
        return _unquote(children[0]), self._span(meta), False

    def description(self, meta: Meta, children: list[Token]) -> ast.Description:
        return ast.Description(self._span(meta), _unquote(children[0]))

    def serve(self, meta: Meta, children: list[Any]) -> ast.Serve:
        """serve: "serve" scope ("and" scope)* "on" target ("," target)* _NL"""
        scopes = tuple(c for c in children if isinstance(c, str))
        targets = tuple(c for c in children if isinstance(c, ast.Target))
        return ast.Serve(self._span(meta), scopes, targets)

    def scope(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def target(self, meta: Meta, children: list[Token | None]) -> ast.Target:
        """target: NAME [ACCOUNT_KIND STRING]"""
        channel, kind, account = children
        assert channel is not None
        return ast.Target(
            self._span(meta),
            str(channel),
            str(kind) if kind else None,
            _unquote(account) if account else None,
        )

    def threading(self, meta: Meta, children: list[Token]) -> ast.Threading:
        """threading: "threading" "window" (DURATION | NAME) _NL"""
        token = children[0]
        if token.type == "DURATION":
            return ast.Threading(self._span(meta), self._duration(token), None, str(token))
        return ast.Threading(self._span(meta), None, str(token), str(token))

    def param(self, meta: Meta, children: list[Any]) -> ast.Param:
        """param: "param" NAME ":" NAME "=" literal _NL"""
        name, type_token, default = children
        return ast.Param(
            self._span(meta), str(name), str(type_token), self._tspan(type_token), default
        )

    def var_decl(self, meta: Meta, children: list[Any]) -> ast.VarDecl:
        """var_decl: "var" NAME ":" NAME ["=" expr] _NL"""
        name, type_token, initial = children
        return ast.VarDecl(
            self._span(meta), str(name), str(type_token), self._tspan(type_token), initial
        )

    def on_error(self, meta: Meta, children: list[Any]) -> ast.OnError:
        return ast.OnError(self._span(meta), children[0])

    def task(self, meta: Meta, children: list[Any]) -> ast.Task:
        """task: "task" NAME ["outcomes" NAME ("," NAME)*] ":" block"""
        name, *outcomes, body = children
        return ast.Task(self._span(meta), str(name), tuple(str(o) for o in outcomes if o), body)

    def state(self, meta: Meta, children: list[Any]) -> ast.State:
        return ast.State(self._span(meta), str(children[0]), children[1])

    def block(self, meta: Meta, children: list[Any]) -> ast.Block:
        return tuple(children)

    # -- replies
    def reply(self, meta: Meta, children: list[Any]) -> ast.Reply:
        """reply: "reply" [VISIBILITY] content [window_guard]"""
        visibility, content, guard = children
        shown: Any = str(visibility) if visibility else "default"
        return ast.Reply(self._span(meta), content, shown, guard)

    def text_content(self, meta: Meta, children: list[Any]) -> ast.TextContent:
        return ast.TextContent(self._span(meta), _unquote(children[0]), children[1])

    def choices(self, meta: Meta, children: list[Token]) -> ast.Choices:
        kind: Any = "quick_replies" if str(children[0]).startswith("quick") else "buttons"
        return ast.Choices(self._span(meta), kind, tuple(_unquote(c) for c in children[1:]))

    def template_content(self, meta: Meta, children: list[Any]) -> ast.TemplateContent:
        return ast.TemplateContent(self._span(meta), children[0], children[1] or ())

    def media_content(self, meta: Meta, children: list[Any]) -> ast.MediaContent:
        kind, url, caption = children
        media: Any = str(kind)
        return ast.MediaContent(
            self._span(meta), media, _unquote(url), _unquote(caption) if caption else None
        )

    def location_content(self, meta: Meta, children: list[float]) -> ast.LocationContent:
        return ast.LocationContent(self._span(meta), children[0], children[1])

    def signed_number(self, meta: Meta, children: list[Token]) -> float:
        """signed_number: ["-"] NUMBER  (the anonymous "-" is filtered out: the span shows it)"""
        number = children[-1]
        value = float(str(number))
        negative = (meta.line, meta.column) != (number.line, number.column)
        return -value if negative else value

    def with_args(self, meta: Meta, children: list[ast.Arg]) -> tuple[ast.Arg, ...]:
        return tuple(children)

    def arg(self, meta: Meta, children: list[Any]) -> ast.Arg:
        return ast.Arg(self._span(meta), str(children[0]), children[1])

    def window_guard(self, meta: Meta, children: list[ast.WindowGuard]) -> ast.WindowGuard:
        guard = children[0]
        return ast.WindowGuard(self._span(meta), guard.action, guard.template, guard.args)

    def guard_template(self, meta: Meta, children: list[Any]) -> ast.WindowGuard:
        return ast.WindowGuard(self._span(meta), "template", children[0], children[1] or ())

    def guard_skip(self, meta: Meta, children: list[Any]) -> ast.WindowGuard:
        return ast.WindowGuard(self._span(meta), "skip")

    def guard_record(self, meta: Meta, children: list[Any]) -> ast.WindowGuard:
        return ast.WindowGuard(self._span(meta), "record")

    # -- data statements
    def set_stmt(self, meta: Meta, children: list[Any]) -> ast.Statement:
        """set_stmt: "set" set_target "to" expr"""
        target, value = children
        span = self._span(meta)
        kind, arg, arg_span = target
        if kind == "variable":
            return ast.SetVariable(span, arg, arg_span, value)
        if kind == "priority":
            return ast.SetPriority(span, value)
        if kind == "language":
            return ast.SetLanguage(span, value)
        return ast.SetData(span, kind, arg, value)

    def set_variable(self, meta: Meta, children: list[Token]) -> tuple[str, str, Span]:
        return ("variable", str(children[0]), self._tspan(children[0]))

    def set_priority(self, meta: Meta, children: list[Any]) -> tuple[str, str, Span]:
        return ("priority", "", self._span(meta))

    def set_language(self, meta: Meta, children: list[Any]) -> tuple[str, str, Span]:
        return ("language", "", self._span(meta))

    def set_participant_data(self, meta: Meta, children: list[Token]) -> tuple[str, str, Span]:
        return ("participant", _unquote(children[0]), self._span(meta))

    def set_conversation_data(self, meta: Meta, children: list[Token]) -> tuple[str, str, Span]:
        return ("conversation", _unquote(children[0]), self._span(meta))

    def add_skill(self, meta: Meta, children: list[Any]) -> ast.AddSkill:
        skill, minimum = children
        return ast.AddSkill(self._span(meta), skill, self._int(minimum) if minimum else None)

    def remove_skill(self, meta: Meta, children: list[Any]) -> ast.RemoveSkill:
        return ast.RemoveSkill(self._span(meta), children[0])

    def mark_not_actionable(
        self, meta: Meta, children: list[Token | None]
    ) -> ast.MarkNotActionable:
        reason = children[0]
        return ast.MarkNotActionable(self._span(meta), _unquote(reason) if reason else None)

    def link_customer(self, meta: Meta, children: list[Any]) -> ast.LinkCustomer:
        """link_customer: "link" "customer" "by" STRING "to" expr ["verified" "by" NAME]"""
        verified_by = str(children[2]) if children[2] is not None else None
        return ast.LinkCustomer(self._span(meta), _unquote(children[0]), children[1], verified_by)

    def goto_state(self, meta: Meta, children: list[Token]) -> ast.GoToState:
        return ast.GoToState(self._span(meta), str(children[0]), self._tspan(children[0]))

    def outcome_stmt(self, meta: Meta, children: list[Token]) -> ast.OutcomeStmt:
        return ast.OutcomeStmt(self._span(meta), str(children[0]))

    def transfer_flow(self, meta: Meta, children: list[Token]) -> ast.TransferFlow:
        """transfer_flow: "transfer" "to" "flow" STRING"""
        name = children[0]
        return ast.TransferFlow(self._span(meta), _unquote(name), self._tspan(name))

    def end_stmt(self, meta: Meta, children: list[Token | None]) -> ast.End:
        reason = children[0]
        return ast.End(self._span(meta), _unquote(reason) if reason else None)

    def break_stmt(self, meta: Meta, children: list[Any]) -> ast.Break:
        return ast.Break(self._span(meta))

    def pass_stmt(self, meta: Meta, children: list[Any]) -> ast.Pass:
        """pass_stmt: "pass" """
        return ast.Pass(self._span(meta))

    def keep_waiting(self, meta: Meta, children: list[Any]) -> ast.KeepWaiting:
        """keep_waiting: "keep" "waiting" """
        return ast.KeepWaiting(self._span(meta))

    def log_stmt(self, meta: Meta, children: list[Token]) -> ast.Log:
        return ast.Log(self._span(meta), _unquote(children[0]))

    # -- decisions and loops
    def if_stmt(self, meta: Meta, children: list[Any]) -> ast.If:
        """if_stmt: "if" expr ":" block elif_clause* [else_clause]"""
        condition, body, *rest = children
        else_clause = rest.pop() if rest else None
        first = ast.IfBranch(self._span(meta), condition, body)
        branches = (first, *(b for b in rest if b is not None))
        if else_clause is None:
            return ast.If(self._span(meta), branches)
        return ast.If(self._span(meta), branches, else_clause[0], else_clause[1])

    def elif_clause(self, meta: Meta, children: list[Any]) -> ast.IfBranch:
        return ast.IfBranch(self._span(meta), children[0], children[1])

    def else_clause(self, meta: Meta, children: list[Any]) -> tuple[ast.Block, Span]:
        return children[0], self._span(meta)

    def switch_stmt(self, meta: Meta, children: list[Any]) -> ast.Switch:
        subject, *cases = children
        default = cases.pop() if cases and not isinstance(cases[-1], ast.Case) else None
        if default is None:
            return ast.Switch(self._span(meta), subject, tuple(cases))
        return ast.Switch(self._span(meta), subject, tuple(cases), default[0], default[1])

    def case_clause(self, meta: Meta, children: list[Any]) -> ast.Case:
        *values, body = children
        return ast.Case(self._span(meta), tuple(values), body)

    def default_clause(self, meta: Meta, children: list[Any]) -> tuple[ast.Block, Span]:
        return children[0], self._span(meta)

    def match_stmt(self, meta: Meta, children: list[Any]) -> ast.Match:
        """match_stmt: "match" [FIRST] "keywords" ["in" expr] ":" ... when_clause+ [otherwise]"""
        first, subject, *rest = children
        otherwise = rest.pop() if rest and not isinstance(rest[-1], ast.When) else None
        whens = tuple(w for w in rest if w is not None)
        if otherwise is None:
            return ast.Match(self._span(meta), first is not None, subject, whens)
        return ast.Match(
            self._span(meta), first is not None, subject, whens, otherwise[0], otherwise[1]
        )

    def when_clause(self, meta: Meta, children: list[Any]) -> ast.When:
        *patterns, body = children
        return ast.When(self._span(meta), tuple(patterns), body)

    def keyword_pattern(self, meta: Meta, children: list[Token]) -> ast.Pattern:
        return ast.Pattern(self._span(meta), "keyword", _unquote(children[0]))

    def regex_pattern(self, meta: Meta, children: list[Token]) -> ast.Pattern:
        return ast.Pattern(self._span(meta), "regex", _unquote(children[0]))

    def otherwise_clause(self, meta: Meta, children: list[Any]) -> tuple[ast.Block, Span]:
        return children[0], self._span(meta)

    def repeat_stmt(self, meta: Meta, children: list[Any]) -> ast.Repeat:
        return ast.Repeat(self._span(meta), self._int(children[0]), children[1])

    def while_stmt(self, meta: Meta, children: list[Any]) -> ast.While:
        return ast.While(self._span(meta), children[0], self._int(children[1]), children[2])

    # -- actions with outcomes
    def outcomes(
        self, meta: Meta, children: list[ast.OutcomeBranch]
    ) -> tuple[ast.OutcomeBranch, ...]:
        return tuple(children)

    def outcome_clause(self, meta: Meta, children: list[Any]) -> ast.OutcomeBranch:
        return ast.OutcomeBranch(self._span(meta), children[0], children[1])

    def outcome_name(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def ask_stmt(self, meta: Meta, children: list[Any]) -> ast.Ask:
        prompt, into, wait, branches = children
        return ast.Ask(
            self._span(meta),
            prompt,
            str(into),
            self._tspan(into),
            self._opt_duration(wait),
            branches,
        )

    def recognize_simple(self, meta: Meta, children: list[str]) -> ast.Recognize:
        return ast.Recognize(self._span(meta), tuple(children))

    def recognize_block(self, meta: Meta, children: list[Any]) -> ast.Recognize:
        *kinds, branches = children
        return ast.Recognize(self._span(meta), tuple(kinds), branches)

    def identity_platform(self, meta: Meta, children: list[Any]) -> str:
        return "platform id"

    def identity_phone(self, meta: Meta, children: list[Any]) -> str:
        return "phone"

    def identity_named(self, meta: Meta, children: list[Token]) -> str:
        return _unquote(children[0])

    def route_queue_simple(self, meta: Meta, children: list[Any]) -> ast.RouteQueue:
        return ast.RouteQueue(self._span(meta), children[0])

    def route_queue_block(self, meta: Meta, children: list[Any]) -> ast.RouteQueue:
        """route_queue_block: "route" "to" "queue" value_ref ":" route_item+"""
        queue, *items = children
        fields: dict[str, Any] = {
            "skills": [],
            "preferred_agents": [],
            "branches": [],
            "option_spans": [],
            "agent_steps": [],
        }
        for item in items:
            if isinstance(item, ast.OutcomeBranch):
                fields["branches"].append(item)
                continue
            key, value, span = item
            fields["option_spans"].append(span)
            if key in ("skills", "preferred_agents", "agent_steps"):
                fields[key].append(value)
            else:
                fields[key] = value
        for key in ("skills", "preferred_agents", "branches", "option_spans", "agent_steps"):
            fields[key] = tuple(fields[key])
        return ast.RouteQueue(self._span(meta), queue, **fields)

    def opt_skill(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        skill, minimum = children
        span = self._span(meta)
        return (
            "skills",
            ast.SkillRequirement(span, skill, self._int(minimum) if minimum else None),
            span,
        )

    def opt_language(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        return "language", children[0], self._span(meta)

    def opt_priority(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        return "priority", children[0], self._span(meta)

    def opt_prefer_agent(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        agent, score = children
        span = self._span(meta)
        return (
            "preferred_agents",
            ast.PreferredAgent(span, agent, self._int(score) if score else None),
            span,
        )

    def opt_prefer_last_agent(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        return "prefer_last_agent", True, self._span(meta)

    def step_prefer(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        """agent_step: "prefer" "agents" "where" expr ["for" DURATION]"""
        return self._agent_step(meta, children, then=False)

    def step_then(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        return self._agent_step(meta, children, then=True)

    def step_any(self, meta: Meta, children: list[Any]) -> tuple[str, Any, Span]:
        span = self._span(meta)
        return "agent_steps", ast.AgentTarget(span, None, None, True), span

    def _agent_step(self, meta: Meta, children: list[Any], *, then: bool) -> tuple[str, Any, Span]:
        condition, duration = children
        span = self._span(meta)
        step = ast.AgentTarget(span, condition, self._opt_duration(duration), then)
        return "agent_steps", step, span

    def opt_timeout(self, meta: Meta, children: list[Token]) -> tuple[str, Any, Span]:
        return "timeout", self._duration(children[0]), self._span(meta)

    def route_agent_simple(self, meta: Meta, children: list[Any]) -> ast.RouteAgent:
        target, wait = children
        return ast.RouteAgent(self._span(meta), target, self._opt_duration(wait))

    def route_agent_block(self, meta: Meta, children: list[Any]) -> ast.RouteAgent:
        target, wait, branches = children
        return ast.RouteAgent(self._span(meta), target, self._opt_duration(wait), branches)

    def last_agent(self, meta: Meta, children: list[Any]) -> None:
        return None

    def named_agent(self, meta: Meta, children: list[ast.NameRef]) -> ast.NameRef:
        return children[0]

    def bot_stmt(self, meta: Meta, children: list[Any]) -> ast.BotHandoff:
        bot, wait, branches = children
        return ast.BotHandoff(self._span(meta), bot, self._opt_duration(wait), branches)

    def data_action_stmt(self, meta: Meta, children: list[Any]) -> ast.DataAction:
        action, args, into, timeout, branches = children
        return ast.DataAction(
            self._span(meta),
            action,
            args or (),
            str(into) if into else None,
            self._opt_duration(timeout),
            branches,
        )

    def call_task_simple(self, meta: Meta, children: list[Token]) -> ast.CallTask:
        return ast.CallTask(self._span(meta), str(children[0]), self._tspan(children[0]))

    def call_task_block(self, meta: Meta, children: list[Any]) -> ast.CallTask:
        return ast.CallTask(
            self._span(meta), str(children[0]), self._tspan(children[0]), children[1]
        )

    def schedule_stmt(self, meta: Meta, children: list[Any]) -> ast.CheckSchedule:
        return ast.CheckSchedule(self._span(meta), children[0], children[1])

    # -- event flows and surveys
    def on_event(self, meta: Meta, children: list[Any]) -> ast.OnEvent:
        """on_event: "on" event_kind ":" block"""
        return ast.OnEvent(self._span(meta), children[0], children[1])

    def event_customer_closed(self, meta: Meta, children: list[Any]) -> str:
        return "customer closed"

    def event_wrap_up(self, meta: Meta, children: list[Any]) -> str:
        return "wrap up"

    def event_agent_disconnected(self, meta: Meta, children: list[Any]) -> str:
        return "agent disconnected"

    def event_window_closing(self, meta: Meta, children: list[Any]) -> str:
        return "window closing"

    def in_queue(self, meta: Meta, children: list[Any]) -> ast.InQueue:
        """in_queue: "while" "queued" ["in" STRING] ":" queue_activity+"""
        queue, *activities = children
        return ast.InQueue(
            self._span(meta),
            None if queue is None else _unquote(queue),
            None if queue is None else self._tspan(queue),
            tuple(activities),
        )

    def queue_every(self, meta: Meta, children: list[Any]) -> ast.QueueActivity:
        return ast.QueueActivity(
            self._span(meta), "every", self._duration(children[0]), children[1]
        )

    def queue_after(self, meta: Meta, children: list[Any]) -> ast.QueueActivity:
        return ast.QueueActivity(
            self._span(meta), "after", self._duration(children[0]), children[1]
        )

    def queue_writes(self, meta: Meta, children: list[Any]) -> ast.QueueActivity:
        return ast.QueueActivity(self._span(meta), "writes", None, children[0])

    def survey_stmt(self, meta: Meta, children: list[Any]) -> ast.Survey:
        """survey_stmt: "survey" STRING ["wait" DURATION] ":" survey_item+"""
        name, wait, *items = children
        questions = tuple(i for i in items if isinstance(i, ast.SurveyQuestion))
        branches = tuple(i for i in items if isinstance(i, ast.OutcomeBranch))
        return ast.Survey(
            self._span(meta), _unquote(name), self._opt_duration(wait), questions, branches
        )

    def survey_rating(self, meta: Meta, children: list[Any]) -> ast.SurveyQuestion:
        """survey_question: "rating" text_content "from" NUMBER "to" NUMBER "into" NAME
        ["retry" STRING]"""
        prompt, low, high, into, retry = children
        return ast.SurveyQuestion(
            self._span(meta),
            "rating",
            prompt,
            str(into),
            self._tspan(into),
            self._int(low),
            self._int(high),
            None if retry is None else _unquote(retry),
        )

    def survey_comment(self, meta: Meta, children: list[Any]) -> ast.SurveyQuestion:
        """survey_question: "comment" text_content "into" NAME"""
        prompt, into = children
        return ast.SurveyQuestion(self._span(meta), "comment", prompt, str(into), self._tspan(into))

    # -- expressions
    def name_literal(self, meta: Meta, children: list[Token]) -> ast.NameRef:
        return ast.NameRef(self._tspan(children[0]), _unquote(children[0]), False)

    def path_target(self, meta: Meta, children: list[str]) -> ast.NameRef:
        """target_ref: path_part ("." path_part)+"""
        path = ast.Path(self._span(meta), tuple(children))
        return ast.NameRef(path.span, path.dotted, False, path)

    def expr_target(self, meta: Meta, children: list[Any]) -> ast.NameRef:
        """target_ref: "(" expr ")" """
        expr = children[0]
        if isinstance(expr, ast.Path) and len(expr.parts) > 1:  # as written without brackets
            return ast.NameRef(self._span(meta), expr.dotted, False, expr)
        return ast.NameRef(self._span(meta), "", False, expr)

    def name_param(self, meta: Meta, children: list[Token]) -> ast.NameRef:
        return ast.NameRef(self._tspan(children[0]), str(children[0]), True)

    def _fold(self, meta: Meta, children: list[Any], ops: list[str] | None = None) -> ast.Expr:
        result: ast.Expr = children[0]
        i = 1
        while i < len(children):
            if ops is not None:
                op, right = ops[0], children[i]
                i += 1
            else:
                op, right = str(children[i]), children[i + 1]
                i += 2
            span = Span(
                self.filename,
                result.span.line,
                result.span.column,
                right.span.end_line,
                right.span.end_column,
            )
            result = ast.Binary(span, op, result, right)
        return result

    def or_expr(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return self._fold(meta, children, ["or"])

    def and_expr(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return self._fold(meta, children, ["and"])

    def sum(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return self._fold(meta, children)

    def product(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return self._fold(meta, children)

    def not_op(self, meta: Meta, children: list[Any]) -> ast.Unary:
        return ast.Unary(self._span(meta), "not", children[0])

    def negate(self, meta: Meta, children: list[Any]) -> ast.Unary:
        return ast.Unary(self._span(meta), "-", children[0])

    def compare(self, meta: Meta, children: list[Any]) -> ast.Binary:
        return ast.Binary(self._span(meta), str(children[1]), children[0], children[2])

    def is_set(self, meta: Meta, children: list[Any]) -> ast.IsSet:
        return ast.IsSet(self._span(meta), children[0], False)

    def is_not_set(self, meta: Meta, children: list[Any]) -> ast.IsSet:
        return ast.IsSet(self._span(meta), children[0], True)

    def contains(self, meta: Meta, children: list[Any]) -> ast.Binary:
        return ast.Binary(self._span(meta), "contains", children[0], children[1])

    def matches(self, meta: Meta, children: list[Any]) -> ast.Matches:
        return ast.Matches(
            self._span(meta), children[0], _unquote(children[1]), self._tspan(children[1])
        )

    def in_list(self, meta: Meta, children: list[Any]) -> ast.Binary:
        return ast.Binary(self._span(meta), "in", children[0], children[1])

    def call(self, meta: Meta, children: list[Any]) -> ast.Call:
        name, *args = children
        return ast.Call(self._span(meta), str(name), tuple(a for a in args if a is not None))

    def split_stmt(self, meta: Meta, children: list[Any]) -> ast.Split:
        """split_stmt: "split" [STRING] ":" _NL _INDENT split_branch+ _DEDENT"""
        name, *branches = children
        named = None if name is None else _unquote(name)
        return ast.Split(self._span(meta), named, tuple(branches))

    def split_branch(self, meta: Meta, children: list[Any]) -> ast.SplitBranch:
        """split_branch: PERCENT NAME ":" block"""
        percent, name, body = children
        text = str(percent)
        return ast.SplitBranch(self._span(meta), float(text[:-1]), str(name), body, text)

    def milestone(self, meta: Meta, children: list[Token]) -> ast.Milestone:
        """milestone: "milestone" STRING"""
        return ast.Milestone(self._span(meta), _unquote(children[0]))

    def read_participant_data(self, meta: Meta, children: list[Token]) -> ast.StoredData:
        """stored_data: "participant" "data" STRING"""
        return ast.StoredData(self._span(meta), "participant", _unquote(children[0]))

    def read_conversation_data(self, meta: Meta, children: list[Token]) -> ast.StoredData:
        """stored_data: "conversation" "data" STRING"""
        return ast.StoredData(self._span(meta), "conversation", _unquote(children[0]))

    def queue_status(self, meta: Meta, children: list[Any]) -> ast.Call:
        """queue_status: "queue" "(" expr ")" (a call of `queue`, a keyword elsewhere)"""
        return ast.Call(self._span(meta), "queue", (children[0],))

    def detect_call(self, meta: Meta, children: list[Any]) -> ast.Detect:
        """detect_call: "detect" "(" expr ("," detect_option)* ")" """
        text, *options = children
        return ast.Detect(self._span(meta), text, tuple(options))

    def _detect_option(
        self, meta: Meta, kind: Any, tokens: list[Token], quoted: bool = True
    ) -> ast.DetectOption:
        values = tuple(_unquote(t) if quoted else str(t) for t in tokens)
        spans = tuple(self._tspan(t) for t in tokens)
        return ast.DetectOption(self._span(meta), kind, values, spans)

    def detect_among(self, meta: Meta, children: list[Token]) -> ast.DetectOption:
        """detect_option: "among" "[" STRING ("," STRING)* "]" """
        return self._detect_option(meta, "among", children)

    def detect_fallback(self, meta: Meta, children: list[Token]) -> ast.DetectOption:
        """detect_option: "fallback" STRING"""
        return self._detect_option(meta, "fallback", children)

    def detect_confidence(self, meta: Meta, children: list[Token]) -> ast.DetectOption:
        """detect_option: "confidence" NUMBER"""
        return self._detect_option(meta, "confidence", children, quoted=False)

    def member(self, meta: Meta, children: list[Any]) -> ast.Member:
        """member: (call | queue_status) ("." path_part)+"""
        base, *names = children
        return ast.Member(self._span(meta), base, tuple(names))

    def list_expr(self, meta: Meta, children: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(self._span(meta), tuple(c for c in children if c is not None))

    def path(self, meta: Meta, children: list[str]) -> ast.Path:
        return ast.Path(self._span(meta), tuple(children))

    def path_part(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def string(self, meta: Meta, children: list[Token]) -> ast.Literal:
        return ast.Literal(self._span(meta), "text", _unquote(children[0]), str(children[0]))

    def number(self, meta: Meta, children: list[Token]) -> ast.Literal:
        text = str(children[0])
        value = float(text) if "." in text else int(text)
        return ast.Literal(self._span(meta), "number", value, text)

    def duration(self, meta: Meta, children: list[Token]) -> ast.Literal:
        return ast.Literal(
            self._span(meta), "duration", self._duration(children[0]), str(children[0])
        )

    def true(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(self._span(meta), "boolean", True, "true")

    def false(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(self._span(meta), "boolean", False, "false")

    def not_set(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(self._span(meta), "notset", None, "not set")
