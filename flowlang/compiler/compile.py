"""CheckedFlow -> FlowGraph.

Each statement becomes one node (loops and keyword matches a few). Node ids are derived from the
state or task name and the statement's position inside its block (`start/2/on:unknown/0`), so
adding a line in one state leaves the ids of every other state unchanged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flowlang.compiler.expressions import literal_value, to_tree
from flowlang.compiler.ir import FlowGraph, Node, SourceRef
from flowlang.language import ast
from flowlang.language.checker import CheckedFlow


def compile_flow(checked: CheckedFlow) -> FlowGraph:
    """Compile a checked flow to its graph (sealed: `version` set)."""
    return _Compiler(checked).run()


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _ref(ref: ast.NameRef | None) -> dict[str, str] | None:
    if ref is None:
        return None
    return {"param": ref.name} if ref.is_param else {"name": ref.name}


class _Compiler:
    def __init__(self, checked: CheckedFlow) -> None:
        self.checked = checked
        self.flow = checked.flow
        self.nodes: dict[str, Node] = {}
        self.state_entries: dict[str, str] = {}
        self.task_entries: dict[str, str] = {}
        self.loop_exits: list[str] = []
        self.routes: list[str] = []  # the route to queue whose `on timeout` is compiling
        self.data_actions: list[tuple[str | None, dict[str, str] | None]] = []  # (into, action)

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
            end = self._add(f"{state.name}/end", "end", state.span, {"implicit": True})
            self._block(state.body, state.name, end)
        for task in self.flow.tasks:
            ret = self._add(f"task:{task.name}/return", "return", task.span, {})
            self._block(task.body, f"task:{task.name}", ret)
        on_error = None
        if (handler := self.flow.on_error) is not None:
            end = self._add("on_error/end", "end", handler.span, {"implicit": True})
            on_error = self._block(handler.body, "on_error", end)
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
        )
        return graph.seal()

    # ------------------------------------------------------------------ helpers
    def _add(
        self,
        node_id: str,
        op: str,
        span: Any,
        args: dict[str, Any],
        edges: dict[str, str] | None = None,
    ) -> str:
        self.nodes[node_id] = Node(
            node_id, op, SourceRef(span.file, span.line, span.column), args, edges or {}
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

    # ------------------------------------------------------------------ statements
    def _statement(self, stmt: ast.Statement, nid: str, cont: str) -> str:
        s = stmt.span
        nxt = {"next": cont}
        if isinstance(stmt, ast.Reply):
            args: dict[str, Any] = {
                "content": self._content(stmt.content),
                "visibility": stmt.visibility,
                "guard": self._guard(stmt.guard),
            }
            return self._add(nid, "reply", s, args, nxt)
        if isinstance(stmt, ast.SetVariable):
            return self._add(
                nid, "set_var", s, {"name": stmt.name, "value": to_tree(stmt.value)}, nxt
            )
        if isinstance(stmt, ast.SetPriority):
            return self._add(nid, "set_priority", s, {"value": to_tree(stmt.value)}, nxt)
        if isinstance(stmt, ast.SetLanguage):
            return self._add(nid, "set_language", s, {"value": to_tree(stmt.value)}, nxt)
        if isinstance(stmt, ast.SetData):
            return self._add(
                nid,
                "set_data",
                s,
                {"scope": stmt.scope, "key": stmt.key, "value": to_tree(stmt.value)},
                nxt,
            )
        if isinstance(stmt, ast.AddSkill):
            return self._add(
                nid, "add_skill", s, {"skill": _ref(stmt.skill), "min": stmt.min_proficiency}, nxt
            )
        if isinstance(stmt, ast.RemoveSkill):
            return self._add(nid, "remove_skill", s, {"skill": _ref(stmt.skill)}, nxt)
        if isinstance(stmt, ast.MarkNotActionable):
            return self._add(nid, "not_actionable", s, {"reason": stmt.reason})
        if isinstance(stmt, ast.LinkCustomer):
            args = {"kind": stmt.kind, "value": to_tree(stmt.value)}
            if stmt.verified_by is not None:
                args["verified_by"] = self._verifying_action(stmt)
            return self._add(nid, "link", s, args, nxt)
        if isinstance(stmt, ast.GoToState):
            return self._add(
                nid, "goto", s, {"state": stmt.state}, {"target": self.state_entries[stmt.state]}
            )
        if isinstance(stmt, ast.OutcomeStmt):
            return self._add(nid, "outcome", s, {"name": stmt.name})
        if isinstance(stmt, ast.End):
            return self._add(nid, "end", s, {"reason": stmt.reason})
        if isinstance(stmt, ast.Break):
            return self._add(nid, "jump", s, {"why": "break"}, {"target": self.loop_exits[-1]})
        if isinstance(stmt, ast.KeepWaiting):
            return self._add(nid, "keep_waiting", s, {"route": self.routes[-1]})
        if isinstance(stmt, ast.Log):
            return self._add(nid, "log", s, {"message": stmt.message}, nxt)
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
            return self._add(
                nid,
                "branch",
                s,
                {"conditions": [to_tree(b.condition) for b in stmt.branches]},
                edges,
            )
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
            cases = [[literal_value(v) for v in c.values] for c in stmt.cases]
            return self._add(
                nid, "switch", s, {"subject": to_tree(stmt.subject), "cases": cases}, edges
            )
        if isinstance(stmt, ast.Match):
            return self._match(stmt, nid, cont)
        if isinstance(stmt, ast.Repeat | ast.While):
            return self._loop(stmt, nid, cont)
        if isinstance(stmt, ast.Ask):
            args = {
                "prompt": self._content(stmt.prompt),
                "into": stmt.into,
                "wait": _seconds(stmt.wait),
            }
            return self._add(nid, "ask", s, args, self._branches(nid, stmt.branches, cont))
        if isinstance(stmt, ast.Recognize):
            return self._add(
                nid,
                "recognize",
                s,
                {"kinds": list(stmt.kinds)},
                self._branches(nid, stmt.branches, cont),
            )
        if isinstance(stmt, ast.RouteQueue):
            args = {
                "queue": _ref(stmt.queue),
                "skills": [{"skill": _ref(k.skill), "min": k.min_proficiency} for k in stmt.skills],
                "language": _ref(stmt.language),
                "priority": to_tree(stmt.priority) if stmt.priority is not None else None,
                "preferred": [
                    {"agent": _ref(p.agent), "score": p.score} for p in stmt.preferred_agents
                ],
                "prefer_last": stmt.prefer_last_agent,
                "timeout": _seconds(stmt.timeout),
            }
            self.routes.append(nid)
            edges = self._branches(nid, stmt.branches, cont)
            self.routes.pop()
            edges.pop("next")
            return self._add(nid, "route_queue", s, args, edges)
        if isinstance(stmt, ast.RouteAgent):
            return self._add(
                nid,
                "route_agent",
                s,
                {"agent": _ref(stmt.agent), "wait": _seconds(stmt.wait)},
                self._branches(nid, stmt.branches, cont),
            )
        if isinstance(stmt, ast.BotHandoff):
            return self._add(
                nid,
                "bot",
                s,
                {"bot": _ref(stmt.bot), "wait": _seconds(stmt.wait)},
                self._branches(nid, stmt.branches, cont),
            )
        if isinstance(stmt, ast.DataAction):
            args = {
                "action": _ref(stmt.action),
                "into": stmt.into,
                "args": {a.name: to_tree(a.value) for a in stmt.args},
                "timeout": _seconds(stmt.timeout),
            }
            self.data_actions.append((stmt.into, _ref(stmt.action)))
            edges = self._branches(nid, stmt.branches, cont)
            self.data_actions.pop()
            return self._add(nid, "data_action", s, args, edges)
        if isinstance(stmt, ast.CallTask):
            edges = self._branches(nid, stmt.branches, cont)
            edges["entry"] = self.task_entries[stmt.task]
            return self._add(nid, "call", s, {"task": stmt.task}, edges)
        assert isinstance(stmt, ast.CheckSchedule)
        return self._add(
            nid,
            "schedule",
            s,
            {"schedule": _ref(stmt.schedule)},
            self._branches(nid, stmt.branches, cont),
        )

    def _verifying_action(self, stmt: ast.LinkCustomer) -> dict[str, str] | None:
        """The data action whose result proves a verified link (the checker made sure of it)."""
        for into, action in reversed(self.data_actions):
            if into == stmt.verified_by:
                return action
        return None

    def _match(self, stmt: ast.Match, nid: str, cont: str) -> str:
        whens = [
            {
                "keywords": [p.text for p in w.patterns if p.kind == "keyword"],
                "regexes": [p.text for p in w.patterns if p.kind == "regex"],
            }
            for w in stmt.whens
        ]
        subject = to_tree(stmt.subject) if stmt.subject is not None else None
        otherwise = (
            self._block(stmt.otherwise, f"{nid}/otherwise", cont)
            if stmt.otherwise is not None
            else cont
        )
        args = {"first": stmt.first, "subject": subject, "whens": whens}
        if stmt.first:
            edges = {
                f"when{i}": self._block(w.body, f"{nid}/when{i}", cont)
                for i, w in enumerate(stmt.whens)
            }
            edges["otherwise"] = otherwise
            return self._add(nid, "match", stmt.span, args, edges)
        # Every matching `when` runs in order: a chain of membership tests on the match result.
        after = self._add(
            f"{nid}/none",
            "match_none",
            stmt.span,
            {"match": nid},
            {"then": otherwise, "else": cont},
        )
        next_test = after
        for i in range(len(stmt.whens) - 1, -1, -1):
            body = self._block(stmt.whens[i].body, f"{nid}/when{i}", next_test)
            next_test = self._add(
                f"{nid}/test{i}",
                "match_case",
                stmt.whens[i].span,
                {"match": nid, "index": i},
                {"then": body, "else": next_test},
            )
        return self._add(nid, "match", stmt.span, args, {"next": next_test})

    def _loop(self, stmt: ast.Repeat | ast.While, nid: str, cont: str) -> str:
        test_id = f"{nid}/test"
        self.loop_exits.append(cont)
        body = self._block(stmt.body, f"{nid}/body", test_id)
        self.loop_exits.pop()
        limit = stmt.times if isinstance(stmt, ast.Repeat) else stmt.limit
        condition = to_tree(stmt.condition) if isinstance(stmt, ast.While) else None
        self._add(
            test_id,
            "loop_test",
            stmt.span,
            {"loop": nid, "limit": limit, "condition": condition},
            {"then": body, "else": cont},
        )
        return self._add(nid, "loop_init", stmt.span, {"loop": nid}, {"next": test_id})

    # ------------------------------------------------------------------ content
    def _content(self, content: ast.Content) -> dict[str, Any]:
        if isinstance(content, ast.TextContent):
            choices = None
            if content.choices is not None:
                choices = {"kind": content.choices.kind, "options": list(content.choices.options)}
            return {"kind": "text", "text": content.text, "choices": choices}
        if isinstance(content, ast.TemplateContent):
            return {
                "kind": "template",
                "template": _ref(content.template),
                "args": {a.name: to_tree(a.value) for a in content.args},
            }
        if isinstance(content, ast.MediaContent):
            return {"kind": content.kind, "url": content.url, "caption": content.caption}
        return {"kind": "location", "latitude": content.latitude, "longitude": content.longitude}

    def _guard(self, guard: ast.WindowGuard | None) -> dict[str, Any] | None:
        if guard is None:
            return None
        return {
            "action": guard.action,
            "template": _ref(guard.template),
            "args": {a.name: to_tree(a.value) for a in guard.args},
        }
