"""CheckedFlow -> FlowGraph.

Each statement becomes one node (loops and keyword matches a few). Node ids are derived from the
state or task name and the statement's position inside its block (`start/2/on:unknown/0`), so
adding a line in one state leaves the ids of every other state unchanged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import assert_never

from flowlang.compiler import ir
from flowlang.compiler.expressions import deployment_languages, literal_value, to_tree
from flowlang.compiler.ir import FlowGraph, Node, SourceRef
from flowlang.diagnostics import Span
from flowlang.language import ast
from flowlang.language.checker import CheckedFlow
from flowlang.language.formatter import format_expr


def compile_flow(checked: CheckedFlow) -> FlowGraph:
    """Compile a checked flow to its graph (sealed: `version` set)."""
    with deployment_languages(tuple(sorted(checked.context.languages))):
        return _Compiler(checked).run()


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _ref(ref: ast.NameRef) -> ir.NameRef:
    if ref.expr is not None:
        return ir.NameRef(ref.name or format_expr(ref.expr), False, to_tree(ref.expr))
    return ir.NameRef(ref.name, ref.is_param)


def _maybe_ref(ref: ast.NameRef | None) -> ir.NameRef | None:
    return None if ref is None else _ref(ref)


def _trees(args: tuple[ast.Arg, ...]) -> dict[str, ir.ExprTree]:
    return {a.name: to_tree(a.value) for a in args}


class _Compiler:
    def __init__(self, checked: CheckedFlow) -> None:
        self.checked = checked
        self.flow = checked.flow
        self.nodes: dict[str, Node] = {}
        self.state_entries: dict[str, str] = {}
        self.task_entries: dict[str, str] = {}
        self.loop_exits: list[str] = []
        self.routes: list[str] = []  # the route to queue whose `on timeout` is compiling
        self.data_actions: list[tuple[str | None, ir.NameRef]] = []  # (into, action)

    def run(self) -> FlowGraph:
        # Entry ids are known before bodies compile, so `go to state` and `call task` can point
        # at them; each body's first node is given that id.
        for state in self.flow.states:
            self.state_entries[state.name] = (
                f"{state.name}/0" if state.body else f"{state.name}/end"
            )
        for task in self.flow.tasks:
            self.task_entries[task.name] = (
                f"task:{task.name}/0" if task.body else f"task:{task.name}/return"
            )
        for state in self.flow.states:
            end = self._add(f"{state.name}/end", state.span, ir.EndArgs(implicit=True))
            self._block(state.body, state.name, end)
        for task in self.flow.tasks:
            ret = self._add(f"task:{task.name}/return", task.span, ir.ReturnArgs())
            self._block(task.body, f"task:{task.name}", ret)
        on_error = None
        if (handler := self.flow.on_error) is not None:
            end = self._add("on_error/end", handler.span, ir.EndArgs(implicit=True))
            on_error = self._block(handler.body, "on_error", end)
        handlers: dict[str, str] = {}
        for on_event in self.flow.handlers:
            prefix = "on_" + on_event.event.replace(" ", "_")
            end = self._add(f"{prefix}/end", on_event.span, ir.EndArgs(implicit=True))
            handlers[on_event.event] = self._block(on_event.body, prefix, end)
        in_queue = self._in_queue(handlers)
        threading = self.flow.threading
        window = None
        if threading is not None:
            window = threading.window
            if window is None and threading.param:
                value = self.checked.params[threading.param].default.value
                window = value if isinstance(value, timedelta) else None
        graph = FlowGraph(
            name=self.flow.name,
            entry=self.state_entries[self.checked.entry_state],
            nodes=self.nodes,
            states=dict(self.state_entries),
            tasks={
                t.name: {"entry": self.task_entries[t.name], "outcomes": list(t.outcomes)}
                for t in self.flow.tasks
            },
            params={
                n: {"type": p.type_name, "value": literal_value(p.default)}
                for n, p in self.checked.params.items()
            },
            variables={
                v.name: {"type": v.type_name, "initial": to_tree(v.initial) if v.initial else None}
                for v in self.flow.variables
            },
            on_error=on_error,
            serve=[
                {
                    "scopes": list(s.scopes),
                    "targets": [{"channel": t.channel, "account": t.account} for t in s.targets],
                }
                for s in self.flow.serves
            ],
            threading_window_seconds=_seconds(window),
            source_file=self.flow.span.file,
            handlers=handlers,
            in_queue=in_queue,
        )
        return graph.seal()

    def _in_queue(self, handlers: dict[str, str]) -> dict[str, ir.InQueueSpec]:
        """Each `while queued` block's parts, compiled like `on` blocks; their entries go in
        `handlers`."""
        found: dict[str, ir.InQueueSpec] = {}
        for block in self.flow.in_queue:
            key = block.queue or "*"
            spec: ir.InQueueSpec = {"every": None, "after": [], "writes": False}
            for index, activity in enumerate(block.activities):
                prefix = f"in_queue:{key}/{index}"
                end = self._add(f"{prefix}/end", activity.span, ir.EndArgs(implicit=True))
                entry = self._block(activity.body, prefix, end)
                if activity.kind == "every":
                    spec["every"] = _seconds(activity.interval)
                    handlers[ir.queue_handler(key, "every")] = entry
                elif activity.kind == "after":
                    handlers[ir.queue_handler(key, "after", len(spec["after"]))] = entry
                    spec["after"].append(_seconds(activity.interval) or 0)
                else:
                    spec["writes"] = True
                    handlers[ir.queue_handler(key, "writes")] = entry
            found[key] = spec
        return found

    # ------------------------------------------------------------------ helpers
    def _add(
        self, node_id: str, span: Span, args: ir.OpArgs, edges: dict[str, str] | None = None
    ) -> str:
        self.nodes[node_id] = Node(
            node_id, SourceRef(span.file, span.line, span.column), args, edges or {}
        )
        return node_id

    def _block(self, block: ast.Block, prefix: str, cont: str) -> str:
        """Compile a block whose end continues at `cont`; return its first node id."""
        next_id = cont
        for index in range(len(block) - 1, -1, -1):
            next_id = self._statement(block[index], f"{prefix}/{index}", next_id)
        return next_id

    def _branches(
        self, node_id: str, branches: tuple[ast.OutcomeBranch, ...], cont: str
    ) -> dict[str, str]:
        edges = {"next": cont}
        for branch in branches:
            edges[f"on:{branch.name}"] = self._block(
                branch.body, f"{node_id}/on:{branch.name}", cont
            )
        return edges

    def _split(self, stmt: ast.Split, nid: str, cont: str) -> str:
        names = tuple(b.name for b in stmt.branches)
        edges = {
            f"branch:{b.name}": self._block(b.body, f"{nid}/branch:{b.name}", cont)
            for b in stmt.branches
        }
        args = ir.SplitArgs(
            stmt.name or "/".join(names),
            names,
            tuple(round(b.percent * 100) for b in stmt.branches),
        )
        return self._add(nid, stmt.span, args, edges)

    # ------------------------------------------------------------------ statements
    # Complex by design: one case per statement kind, exhaustive (assert_never).
    def _statement(self, stmt: ast.Statement, nid: str, cont: str) -> str:  # noqa: C901
        s = stmt.span
        nxt = {"next": cont}
        if isinstance(stmt, ast.Reply):
            args = ir.ReplyArgs(
                self._content(stmt.content), stmt.visibility, self._guard(stmt.guard)
            )
            return self._add(nid, s, args, nxt)
        if isinstance(stmt, ast.SetVariable):
            return self._add(nid, s, ir.SetVarArgs(stmt.name, to_tree(stmt.value)), nxt)
        if isinstance(stmt, ast.Split):
            return self._split(stmt, nid, cont)
        if isinstance(stmt, ast.Milestone):
            return self._add(nid, s, ir.MilestoneArgs(stmt.name), nxt)
        if isinstance(stmt, ast.SetPriority):
            return self._add(nid, s, ir.SetPriorityArgs(to_tree(stmt.value)), nxt)
        if isinstance(stmt, ast.SetLanguage):
            return self._add(nid, s, ir.SetLanguageArgs(to_tree(stmt.value)), nxt)
        if isinstance(stmt, ast.SetData):
            return self._add(nid, s, ir.SetDataArgs(stmt.scope, stmt.key, to_tree(stmt.value)), nxt)
        if isinstance(stmt, ast.AddSkill):
            return self._add(nid, s, ir.AddSkillArgs(_ref(stmt.skill), stmt.min_proficiency), nxt)
        if isinstance(stmt, ast.RemoveSkill):
            return self._add(nid, s, ir.RemoveSkillArgs(_ref(stmt.skill)), nxt)
        if isinstance(stmt, ast.MarkNotActionable):
            return self._add(nid, s, ir.NotActionableArgs(stmt.reason))
        if isinstance(stmt, ast.LinkCustomer):
            verified_by = None if stmt.verified_by is None else self._verifying_action(stmt)
            link = ir.LinkArgs(stmt.kind, to_tree(stmt.value), verified_by)
            return self._add(nid, s, link, nxt)
        if isinstance(stmt, ast.GoToState):
            target = {"target": self.state_entries[stmt.state]}
            return self._add(nid, s, ir.GotoArgs(stmt.state), target)
        if isinstance(stmt, ast.OutcomeStmt):
            return self._add(nid, s, ir.OutcomeArgs(stmt.name))
        if isinstance(stmt, ast.End):
            return self._add(nid, s, ir.EndArgs(stmt.reason))
        if isinstance(stmt, ast.TransferFlow):
            return self._add(nid, s, ir.TransferFlowArgs(stmt.flow))
        if isinstance(stmt, ast.Break):
            return self._add(nid, s, ir.JumpArgs("break"), {"target": self.loop_exits[-1]})
        if isinstance(stmt, ast.Pass):
            return cont  # no node: the block goes straight on
        if isinstance(stmt, ast.KeepWaiting):
            return self._add(nid, s, ir.KeepWaitingArgs(self.routes[-1]))
        if isinstance(stmt, ast.Log):
            return self._add(nid, s, ir.LogArgs(stmt.message), nxt)
        if isinstance(stmt, ast.If):
            edges = {
                f"case{i}": self._block(b.body, f"{nid}/if{i}", cont)
                for i, b in enumerate(stmt.branches)
            }
            edges["else"] = (
                self._block(stmt.else_body, f"{nid}/else", cont)
                if stmt.else_body is not None
                else cont
            )
            conditions = tuple(to_tree(b.condition) for b in stmt.branches)
            return self._add(nid, s, ir.BranchArgs(conditions), edges)
        if isinstance(stmt, ast.Switch):
            edges = {
                f"case{i}": self._block(c.body, f"{nid}/case{i}", cont)
                for i, c in enumerate(stmt.cases)
            }
            edges["else"] = (
                self._block(stmt.default, f"{nid}/default", cont)
                if stmt.default is not None
                else cont
            )
            cases = tuple(tuple(literal_value(v) for v in c.values) for c in stmt.cases)
            return self._add(nid, s, ir.SwitchArgs(to_tree(stmt.subject), cases), edges)
        if isinstance(stmt, ast.Match):
            return self._match(stmt, nid, cont)
        if isinstance(stmt, ast.Repeat | ast.While):
            return self._loop(stmt, nid, cont)
        if isinstance(stmt, ast.Ask):
            ask = ir.AskArgs(self._content(stmt.prompt), stmt.into, _seconds(stmt.wait))
            return self._add(nid, s, ask, self._branches(nid, stmt.branches, cont))
        if isinstance(stmt, ast.Recognize):
            recognize = ir.RecognizeArgs(tuple(stmt.kinds))
            return self._add(nid, s, recognize, self._branches(nid, stmt.branches, cont))
        if isinstance(stmt, ast.RouteQueue):
            route = ir.RouteQueueArgs(
                queue=_ref(stmt.queue),
                skills=tuple(ir.SkillReq(_ref(k.skill), k.min_proficiency) for k in stmt.skills),
                language=_maybe_ref(stmt.language),
                priority=to_tree(stmt.priority) if stmt.priority is not None else None,
                preferred=tuple(
                    ir.PreferredAgent(_ref(p.agent), p.score) for p in stmt.preferred_agents
                ),
                prefer_last=stmt.prefer_last_agent,
                timeout=_seconds(stmt.timeout),
                agent_steps=tuple(
                    ir.AgentStep(
                        to_tree(step.condition) if step.condition is not None else None,
                        _seconds(step.duration),
                    )
                    for step in stmt.agent_steps
                )
                or None,
            )
            self.routes.append(nid)
            edges = self._branches(nid, stmt.branches, cont)
            self.routes.pop()
            edges.pop("next")
            return self._add(nid, s, route, edges)
        if isinstance(stmt, ast.RouteAgent):
            agent = ir.RouteAgentArgs(_maybe_ref(stmt.agent), _seconds(stmt.wait))
            return self._add(nid, s, agent, self._branches(nid, stmt.branches, cont))
        if isinstance(stmt, ast.BotHandoff):
            bot = ir.BotArgs(_ref(stmt.bot), _seconds(stmt.wait))
            return self._add(nid, s, bot, self._branches(nid, stmt.branches, cont))
        if isinstance(stmt, ast.DataAction):
            action = ir.DataActionArgs(
                _ref(stmt.action), stmt.into, _trees(stmt.args), _seconds(stmt.timeout)
            )
            self.data_actions.append((stmt.into, action.action))
            edges = self._branches(nid, stmt.branches, cont)
            self.data_actions.pop()
            return self._add(nid, s, action, edges)
        if isinstance(stmt, ast.CallTask):
            edges = self._branches(nid, stmt.branches, cont)
            edges["entry"] = self.task_entries[stmt.task]
            return self._add(nid, s, ir.CallArgs(stmt.task), edges)
        if isinstance(stmt, ast.CheckSchedule):
            schedule = ir.ScheduleArgs(_ref(stmt.schedule))
            return self._add(nid, s, schedule, self._branches(nid, stmt.branches, cont))
        if isinstance(stmt, ast.Survey):
            questions = tuple(
                ir.SurveyQuestion(q.kind, self._content(q.prompt), q.into, q.low, q.high, q.retry)
                for q in stmt.questions
            )
            survey = ir.SurveyArgs(stmt.name, questions, _seconds(stmt.wait))
            return self._add(nid, s, survey, self._branches(nid, stmt.branches, cont))
        assert_never(stmt)

    def _verifying_action(self, stmt: ast.LinkCustomer) -> ir.NameRef | None:
        """The data action whose result proves a verified link (the checker made sure of it)."""
        for into, action in reversed(self.data_actions):
            if into == stmt.verified_by:
                return action
        return None

    def _match(self, stmt: ast.Match, nid: str, cont: str) -> str:
        whens = tuple(
            ir.When(
                tuple(p.text for p in w.patterns if p.kind == "keyword"),
                tuple(p.text for p in w.patterns if p.kind == "regex"),
            )
            for w in stmt.whens
        )
        subject = to_tree(stmt.subject) if stmt.subject is not None else None
        otherwise = (
            self._block(stmt.otherwise, f"{nid}/otherwise", cont)
            if stmt.otherwise is not None
            else cont
        )
        args = ir.MatchArgs(stmt.first, subject, whens)
        if stmt.first:
            edges = {
                f"when{i}": self._block(w.body, f"{nid}/when{i}", cont)
                for i, w in enumerate(stmt.whens)
            }
            edges["otherwise"] = otherwise
            return self._add(nid, stmt.span, args, edges)
        # Every matching `when` runs in order: a chain of membership tests on the match result.
        after = self._add(
            f"{nid}/none", stmt.span, ir.MatchNoneArgs(nid), {"then": otherwise, "else": cont}
        )
        next_test = after
        for i in range(len(stmt.whens) - 1, -1, -1):
            body = self._block(stmt.whens[i].body, f"{nid}/when{i}", next_test)
            next_test = self._add(
                f"{nid}/test{i}",
                stmt.whens[i].span,
                ir.MatchCaseArgs(nid, i),
                {"then": body, "else": next_test},
            )
        return self._add(nid, stmt.span, args, {"next": next_test})

    def _loop(self, stmt: ast.Repeat | ast.While, nid: str, cont: str) -> str:
        test_id = f"{nid}/test"
        self.loop_exits.append(cont)
        body = self._block(stmt.body, f"{nid}/body", test_id)
        self.loop_exits.pop()
        limit = stmt.times if isinstance(stmt, ast.Repeat) else stmt.limit
        condition = to_tree(stmt.condition) if isinstance(stmt, ast.While) else None
        self._add(
            test_id,
            stmt.span,
            ir.LoopTestArgs(nid, limit, condition),
            {"then": body, "else": cont},
        )
        return self._add(nid, stmt.span, ir.LoopInitArgs(nid), {"next": test_id})

    # ------------------------------------------------------------------ content
    def _content(self, content: ast.Content) -> ir.Content:
        if isinstance(content, ast.TextContent):
            choices = None
            if content.choices is not None:
                choices = ir.Choices(content.choices.kind, tuple(content.choices.options))
            return ir.TextContent(content.text, choices)
        if isinstance(content, ast.TemplateContent):
            return ir.TemplateContent(_ref(content.template), _trees(content.args))
        if isinstance(content, ast.MediaContent):
            return ir.MediaContent(content.kind, content.url, content.caption)
        if isinstance(content, ast.LocationContent):
            return ir.LocationContent(content.latitude, content.longitude)
        assert_never(content)

    def _guard(self, guard: ast.WindowGuard | None) -> ir.Guard | None:
        if guard is None:
            return None
        return ir.Guard(guard.action, _maybe_ref(guard.template), _trees(guard.args))
