"""The interpreter: one pure step of a conversation's flow.

`run(program, state, trigger, facts) -> RunResult(state, effects, trace)`. No I/O and no wall
clock: time comes from `facts.now`. A run executes nodes until the flow suspends (it asks the
customer, hands off to a bot, waits for an agent or a queue, calls a data action), ends, or fails.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple, NoReturn

from flowlang.compiler.ir import Node
from flowlang.errors import FlowRuntimeError
from flowlang.runtime import effects as fx
from flowlang.runtime.evaluate import _text
from flowlang.runtime.keywords import normalise
from flowlang.runtime.program import Program
from flowlang.runtime.scope import Scope
from flowlang.runtime.state import Facts, FlowState, Frame, Trigger, Waiting, WaitKind

MAX_STEPS = 10_000
_EXPECTED_TRIGGER: dict[str, str] = {
    "answer": "message",
    "bot": "bot",
    "agent": "agent",
    "queue": "queue",
    "data": "data",
}


class TraceStep(NamedTuple):
    """One line of a run's path: the node, its operation, its source line, what happened."""

    node: str
    op: str
    line: int
    detail: str = ""

    def __str__(self) -> str:
        detail = f"  {self.detail}" if self.detail else ""
        return f"line {self.line:>3}  {self.op:<14}{detail}"


@dataclass
class RunResult:
    state: FlowState
    effects: list[Any] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # every node executed, in order
    # (node, op, detail) per trace line, node None for notes; `trace` turns them into TraceSteps
    lines: list[tuple[Node | None, str, str]] = field(default_factory=list, repr=False)

    @property
    def trace(self) -> list[TraceStep]:
        """What each step did, with its source line (a new list on each read)."""
        return [
            TraceStep("-", op, 0, detail)
            if node is None
            else TraceStep(node.id, node.op, node.source.line, detail)
            for node, op, detail in self.lines
        ]


class _Failed(Exception):
    """The run failed; `_fail` has recorded why."""


def run(program: Program, state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
    """Advance a conversation's flow by one event; never raises for flow errors.

    `state` is not changed: the result carries a new state.
    """
    return _Run(program, state, trigger, facts).execute()


class _Run:
    def __init__(self, program: Program, state: FlowState, trigger: Trigger, facts: Facts) -> None:
        self.p = program
        self.g = program.graph
        self.s = state  # the caller's until the run starts; then a clone or a fresh state
        self.trigger = trigger
        self.facts = facts
        self.result = RunResult(state)
        self._lines = self.result.lines
        self.scope = Scope(state, facts, program.params(facts.params))
        self._normalised: tuple[str, str] | None = None
        self._expr = program.expr

    # ------------------------------------------------------------------ entry points
    def execute(self) -> RunResult:
        start = self._resume_point()
        if start is None:
            return self.result
        self.s.status = "running"
        self.s.position = start
        with contextlib.suppress(_Failed):
            self._loop()
        return self.result

    def _resume_point(self) -> str | None:
        t = self.trigger
        if self.s.waiting is None:
            if t.kind != "message":
                self._use(self.s.clone())
                self._note("ignored", f"no step is waiting for a {t.kind} event")
                return None
            self._fresh_start()
            return self.g.entry
        s = self._use(self.s.clone())
        waiting = s.waiting
        assert waiting is not None
        node = self.g.nodes[waiting.node]
        expected = _EXPECTED_TRIGGER[waiting.kind]
        if t.kind == "timer":
            if t.timer != waiting.timer:
                self._note("ignored", f"timer {t.timer} is stale")
                return None
            outcome = "timeout"
        elif t.kind != expected:
            if t.kind == "message" and waiting.kind in ("agent", "queue", "bot"):
                self._note("waiting", f"message kept for the {waiting.kind}; flow still waits")
            else:
                self._note("ignored", f"flow waits for {waiting.kind}, got {t.kind}")
            return None
        else:
            outcome = self._outcome_of(waiting.kind, node)
        s.waiting = None
        self._trace(node, f"resumed: {outcome}")
        self.result.path.append(node.id)
        if outcome in ("routed", "accepted"):
            self._finish(node, "routed", f"{waiting.kind} accepted")
            return None
        edge = node.edges.get(f"on:{outcome}") or node.edges.get("next")
        if node.op == "route_queue" and edge is None:
            self._finish(node, "ended", f"queue {outcome}")
            return None
        return edge

    def _outcome_of(self, kind: str, node: Node) -> str:
        t = self.trigger
        if kind == "answer":
            self.s.variables[node.args["into"]] = t.text
            return "answer"
        if kind == "bot":
            self.s.bot = {"intent": t.intent, "slots": dict(t.slots), "outcome": t.outcome}
            return t.outcome or "failure"
        if kind == "data":
            into = node.args.get("into")
            if into:
                self.s.records[into] = dict(t.outputs)
            return t.outcome or "failure"
        return t.outcome or "unavailable"

    def _use(self, state: FlowState) -> FlowState:
        self.s = self.result.state = self.scope.state = state
        return state

    def _fresh_start(self) -> None:
        variables = self._use(FlowState(graph_version=self.g.version)).variables
        for name, spec in self.g.variables.items():
            initial = spec.get("initial")
            variables[name] = self.p.expr(initial)(self.scope) if initial else None

    # ------------------------------------------------------------------ main loop
    def _loop(self) -> None:
        steps, path = _steps(self.p), self.result.path
        position = self.s.position
        assert position is not None
        while True:
            handler, node, args, edges, line = steps[position]
            path.append(position)
            if len(path) > MAX_STEPS:
                self._step_limit()
            try:
                next_position = handler(self, node, args, edges, line)
            except FlowRuntimeError as exc:
                next_position = self._runtime_error(node, exc)
            if next_position is None:  # the flow suspended, ended or was routed
                return
            position = next_position

    def _step_limit(self) -> None:
        hottest, _count = Counter(self.result.path).most_common(1)[0]
        hot = self.g.nodes[hottest]
        message = (
            f"the flow ran {MAX_STEPS:,} steps for one event; it keeps looping through "
            f"line {hot.source.line} ({hot.op})"
        )
        self._fail(hot, "FL901", message)

    def _runtime_error(self, node: Node, exc: FlowRuntimeError) -> str | None:
        message = f"{exc} (line {node.source.line})"
        if self.g.on_error is not None and not self.s.in_error_handler:
            self.s.in_error_handler = True
            self.s.error = {"message": str(exc), "code": exc.code, "step": node.id}
            self.result.effects.append(
                fx.LogMessage(
                    step=node.id, line=node.source.line, message=f"error: {message}; on error runs"
                )
            )
            self._trace(node, f"error: {exc}; going to on error")
            self.s.stack.clear()
            return self.g.on_error
        self._fail(node, exc.code, str(exc))

    def _fail(self, node: Node, code: str, message: str) -> NoReturn:
        self.result.effects.append(
            fx.FlowFailed(
                step=node.id,
                line=node.source.line,
                code=code,
                message=message,
                file=node.source.file,
                column=node.source.column,
            )
        )
        self._trace(node, f"failed: {message}")
        self.s.status = "failed"
        self.s.ended_reason = message
        self.s.waiting = None
        raise _Failed

    def _finish(self, node: Node, status: str, reason: str | None) -> None:
        """End the run (the flow ended or was routed); handlers return what this returns."""
        self.s.status = status  # type: ignore[assignment]
        self.s.ended_reason = reason
        self.s.waiting = None
        self.s.position = node.id

    # ------------------------------------------------------------------ helpers
    def _trace(self, node: Node, detail: str = "") -> None:
        self._lines.append((node, "", detail))

    def _note(self, op: str, detail: str) -> None:
        self._lines.append((None, op, detail))

    def _emit(self, effect: Any) -> None:
        self.result.effects.append(effect)

    def _value(self, tree: dict[str, Any] | None) -> Any:
        return None if tree is None else self._expr(tree)(self.scope)

    def _name(self, ref: dict[str, str] | None) -> str | None:
        if ref is None:
            return None
        if "name" in ref:
            return ref["name"]
        value = self.scope.params[ref["param"]]
        return None if value is None else str(value)

    def _suspend(self, node: Node, kind: WaitKind, wait: int | None) -> None:
        """Wait for `kind` (up to `wait` seconds); handlers return what this returns."""
        deadline = timer = None
        if wait is not None:
            self.s.timers += 1
            timer = f"{node.id}#{self.s.timers}"
            deadline = self.facts.now + timedelta(seconds=wait)
            self._emit(fx.StartTimer(step=node.id, line=node.source.line, timer=timer, at=deadline))
        self.s.waiting = Waiting(kind, node.id, deadline, timer)
        self.s.position = node.id
        self.s.status = "waiting"

    def _render_text(self, text: str) -> str:
        template = self.p.template_text(text)
        if template is None:
            return text
        try:
            return template.render(self.scope.get)
        except Exception as exc:  # jinja raises many types; all mean the reply cannot be made
            raise FlowRuntimeError(f"reply template failed: {exc}") from exc

    def _content(self, content: dict[str, Any]) -> dict[str, Any]:
        kind = content["kind"]
        if kind == "text":
            out: dict[str, Any] = {"kind": "text", "text": self._render_text(content["text"])}
            if content.get("choices"):
                out = {
                    "kind": content["choices"]["kind"],
                    "text": out["text"],
                    "options": list(content["choices"]["options"]),
                }
            return out
        if kind == "template":
            return self._template(content["template"], content.get("args", {}))
        return dict(content)

    def _template(self, ref: dict[str, str], args: dict[str, Any]) -> dict[str, Any]:
        name = self._name(ref) or ""
        values = {k: self._value(v) for k, v in args.items()}
        template = self.p.templates.get(name)
        if template is None:
            return {"kind": "template", "name": name, "parameters": values}
        if template.kind == "whatsapp":
            return {"kind": "template", "name": name, "parameters": values, **template.data}
        if template.source is not None:
            compiled = self.p.template_text(template.source)
            try:
                text = (
                    compiled.render(self.scope.get, values)
                    if compiled is not None
                    else template.source
                )
            except Exception as exc:
                raise FlowRuntimeError(f"template {name!r} failed: {exc}") from exc
            if template.kind == "text":
                return {"kind": "text", "text": text, "template": name}
            return {"kind": template.kind, "text": text, "template": name, **template.data}
        return {"kind": template.kind, "template": name, **template.data}

    # ------------------------------------------------------------------ nodes
    def _op_unknown(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        raise FlowRuntimeError(f"unknown step kind {node.op!r}")

    def _op_reply(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        guard = a.get("guard")
        rendered_guard = None
        if guard is not None:
            rendered_guard = {"action": guard["action"]}
            if guard["action"] == "template":
                rendered_guard["content"] = self._template(guard["template"], guard["args"])
        content = self._content(a["content"])
        self._emit(
            fx.SendReply(
                step=node.id,
                line=line,
                content=content,
                visibility=a["visibility"],
                guard=rendered_guard,
            )
        )
        self._trace(node, _summary(content))
        return e["next"]

    def _op_set_var(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        self.s.variables[a["name"]] = self._value(a["value"])
        self._trace(node, f"{a['name']} = {_text(self.s.variables[a['name']])!r}")
        return e["next"]

    def _op_set_priority(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        value = self._value(a["value"])
        self.s.interaction.priority = float(value or 0)
        self._trace(node, f"priority {self.s.interaction.priority:g}")
        return e["next"]

    def _op_set_language(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        value = self._value(a["value"])
        self.s.interaction.language = None if value is None else str(value)
        self._trace(node, f"language {value}")
        return e["next"]

    def _op_set_data(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        value = self._value(a["value"])
        target = (
            self.s.interaction.participant_data
            if a["scope"] == "participant"
            else self.s.interaction.conversation_data
        )
        target[a["key"]] = value
        self._emit(fx.SetData(step=node.id, line=line, scope=a["scope"], key=a["key"], value=value))
        self._trace(node, f"{a['scope']} data {a['key']} = {value!r}")
        return e["next"]

    def _op_add_skill(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        skill = self._name(a["skill"]) or ""
        self.s.interaction.skills[skill] = a.get("min")
        self._trace(node, f"skill {skill}" + (f" min {a['min']}" if a.get("min") else ""))
        return e["next"]

    def _op_remove_skill(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        skill = self._name(a["skill"]) or ""
        self.s.interaction.skills.pop(skill, None)
        self._trace(node, f"skill {skill} removed")
        return e["next"]

    def _op_not_actionable(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        self._emit(fx.MarkNotActionable(step=node.id, line=line, reason=a.get("reason")))
        self._trace(node, a.get("reason") or "")
        self._finish(node, "ended", a.get("reason") or "not actionable")
        return None

    def _op_link(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        value = _text(self._value(a["value"]))
        self._emit(fx.LinkIdentity(step=node.id, line=line, kind=a["kind"], value=value))
        self._trace(node, f"{a['kind']} = {value}")
        return e["next"]

    def _op_goto(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        self._trace(node, a.get("state", a.get("why", "")))
        return e["target"]

    def _op_log(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        self._emit(fx.LogMessage(step=node.id, line=line, message=a["message"]))
        self._trace(node, a["message"])
        return e["next"]

    def _op_end(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        if a.get("implicit") and self.s.stack:
            raise FlowRuntimeError("a task ended without an outcome")
        reason = a.get("reason")
        self._emit(fx.EndFlow(step=node.id, line=line, reason=reason))
        self._trace(node, reason or ("end of state" if a.get("implicit") else ""))
        self._finish(node, "ended", reason)
        return None

    def _op_outcome(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        return self._return(node, a.get("name"))

    def _op_call(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        self.s.stack.append(Frame(task=a["task"], call_node=node.id))
        self._trace(node, a["task"])
        return e["entry"]

    def _op_branch(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        env = self.scope
        for index, tree in enumerate(a["conditions"]):
            if self.p.expr(tree)(env):
                self._trace(node, f"condition {index + 1} true")
                return e[f"case{index}"]
        self._trace(node, "else" if e["else"] else "no condition true")
        return e["else"]

    def _op_switch(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        subject = self._value(a["subject"])
        for index, values in enumerate(a["cases"]):
            if any(_same(subject, v) for v in values):
                self._trace(node, f"case {values}")
                return e[f"case{index}"]
        self._trace(node, "default")
        return e["else"]

    def _op_match(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        return self._match(node)

    def _op_match_case(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        hit = a["index"] in self.s.matches.get(a["match"], [])
        return e["then"] if hit else e["else"]

    def _op_match_none(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        return e["then"] if not self.s.matches.get(a["match"]) else e["else"]

    def _op_loop_init(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        self.s.loops[a["loop"]] = 0
        return e["next"]

    def _op_loop_test(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        count = self.s.loops.get(a["loop"], 0)
        keep = count < a["limit"]
        if keep and a.get("condition") is not None:
            keep = bool(self._value(a["condition"]))
        if keep:
            self.s.loops[a["loop"]] = count + 1
            return e["then"]
        self._trace(node, f"loop done after {count} time(s)")
        return e["else"]

    def _op_recognize(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        kinds = set(a["kinds"])
        known = bool(kinds & self.facts.known_by)
        self._trace(node, "known" if known else "unknown")
        return e.get("on:known" if known else "on:unknown") or e["next"]

    def _op_schedule(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        name = self._name(a["schedule"]) or ""
        status = self.facts.schedule_state(name, self.facts.now)
        self._trace(node, f"{name}: {status}")
        return e.get(f"on:{status}") or e["next"]

    def _op_ask(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        content = self._content(a["prompt"])
        self._emit(fx.SendReply(step=node.id, line=line, content=content))
        self._trace(node, f"asks {_summary(content)}; waits")
        self._suspend(node, "answer", a.get("wait"))
        return None

    def _op_bot(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str | None:
        bot = self._name(a["bot"]) or ""
        self._emit(fx.HandOffToBot(step=node.id, line=line, bot=bot, wait_seconds=a.get("wait")))
        self._trace(node, f"bot {bot}; waits")
        self._suspend(node, "bot", a.get("wait"))
        return None

    def _op_data_action(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        action = self._name(a["action"]) or ""
        inputs = {k: self._value(v) for k, v in a["args"].items()}
        self._emit(
            fx.CallDataAction(
                step=node.id,
                line=line,
                action=action,
                inputs=inputs,
                timeout_seconds=a.get("timeout"),
            )
        )
        self._trace(node, f"{action}; waits")
        self._suspend(node, "data", None)
        return None

    def _op_route_agent(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        return self._route_agent(node)

    def _op_route_queue(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str | None:
        self._route_queue(node)
        return None

    def _return(self, node: Node, outcome: str | None) -> str:
        if not self.s.stack:
            raise FlowRuntimeError("'outcome' outside a task")
        frame = self.s.stack.pop()
        call = self.g.nodes[frame.call_node]
        self._trace(node, f"task {frame.task} -> {outcome or 'done'}")
        if outcome is not None and f"on:{outcome}" in call.edges:
            return call.edges[f"on:{outcome}"]
        return call.edges["next"]

    def _match(self, node: Node) -> str:
        a, e = node.args, node.edges
        subject = self._value(a["subject"]) if a.get("subject") else self.facts.message.get("text")
        text = _text(subject)
        matcher = self.p.matcher(node)
        found = matcher.matches(text, self._normalise(text))
        self.s.matches[node.id] = found
        if found:
            self._trace(node, "matched " + ", ".join([matcher.labels[i] for i in found]))
        else:
            self._trace(node, "no keyword matched")
        if "next" in e:
            return e["next"]
        if found:
            return e[f"when{found[0]}"]
        return e["otherwise"]

    def _normalise(self, text: str) -> str:
        """The normalised text, computed once per run (match steps usually read the same)."""
        if self._normalised is None or self._normalised[0] != text:
            self._normalised = (text, normalise(text))
        return self._normalised[1]

    def _route_agent(self, node: Node) -> str | None:
        a = node.args
        agent = self._name(a.get("agent"))
        last = agent is None
        if last:
            agent = self.facts.conversation.get("last_agent")
            if not agent:
                self._trace(node, "no last agent")
                return node.edges.get("on:unavailable") or node.edges["next"]
        self._emit(
            fx.RouteToAgent(
                step=node.id,
                line=node.source.line,
                agent=agent,
                last_agent=last,
                wait_seconds=a.get("wait"),
            )
        )
        self._trace(node, f"agent {agent}; waits up to {a.get('wait') or 0}s")
        self._suspend(node, "agent", a.get("wait"))
        return None

    def _route_queue(self, node: Node) -> None:
        a = node.args
        interaction = self.s.interaction
        skills = dict(interaction.skills)
        for requirement in a["skills"]:
            skills[self._name(requirement["skill"]) or ""] = requirement.get("min")
        language = self._name(a.get("language")) or interaction.language
        priority = interaction.priority
        if a.get("priority") is not None:
            priority = float(self._value(a["priority"]) or 0)
        queue = self._name(a["queue"]) or ""
        effect = fx.RouteToQueue(
            step=node.id,
            line=node.source.line,
            queue=queue,
            skills=[{"skill": k, "min": v} for k, v in skills.items()],
            language=language,
            priority=priority,
            preferred_agents=[
                {"agent": self._name(p["agent"]), "score": p.get("score")} for p in a["preferred"]
            ],
            prefer_last_agent=a["prefer_last"],
            timeout_seconds=a.get("timeout"),
        )
        self._emit(effect)
        skill_text = ", ".join(k for k in skills) or "no skills"
        self._trace(node, f"queue {queue} ({skill_text}; priority {priority:g})")
        if a.get("timeout") is not None:
            self._suspend(node, "queue", a["timeout"])
            return None
        self._finish(node, "routed", f"routed to {queue}")
        return None


# A handler returns the id of the next node, or None when the run stops (it suspended, ended,
# was routed); failures raise.
_Handler = Callable[[_Run, Node, dict[str, Any], dict[str, str], int], str | None]
_Step = tuple[_Handler, Node, dict[str, Any], dict[str, str], int]

_OPS: dict[str, _Handler] = {
    "reply": _Run._op_reply,
    "set_var": _Run._op_set_var,
    "set_priority": _Run._op_set_priority,
    "set_language": _Run._op_set_language,
    "set_data": _Run._op_set_data,
    "add_skill": _Run._op_add_skill,
    "remove_skill": _Run._op_remove_skill,
    "not_actionable": _Run._op_not_actionable,
    "link": _Run._op_link,
    "goto": _Run._op_goto,
    "jump": _Run._op_goto,
    "log": _Run._op_log,
    "end": _Run._op_end,
    "outcome": _Run._op_outcome,
    "return": _Run._op_outcome,
    "call": _Run._op_call,
    "branch": _Run._op_branch,
    "switch": _Run._op_switch,
    "match": _Run._op_match,
    "match_case": _Run._op_match_case,
    "match_none": _Run._op_match_none,
    "loop_init": _Run._op_loop_init,
    "loop_test": _Run._op_loop_test,
    "recognize": _Run._op_recognize,
    "schedule": _Run._op_schedule,
    "ask": _Run._op_ask,
    "bot": _Run._op_bot,
    "data_action": _Run._op_data_action,
    "route_agent": _Run._op_route_agent,
    "route_queue": _Run._op_route_queue,
}


def _steps(program: Program) -> dict[str, _Step]:
    """Each node with its handler and the parts handlers read, looked up once per program."""
    steps: dict[str, _Step] | None = program.run_cache.get("steps")
    if steps is None:
        steps = program.run_cache["steps"] = {
            node.id: (
                _OPS.get(node.op, _Run._op_unknown),
                node,
                node.args,
                node.edges,
                node.source.line,
            )
            for node in program.graph.nodes.values()
        }
    return steps


def _same(subject: Any, value: Any) -> bool:
    if isinstance(subject, int | float) and isinstance(value, int | float):
        return float(subject) == float(value)
    return bool(subject == value)


def _summary(content: dict[str, Any]) -> str:
    text = content.get("text") or content.get("name") or content.get("url") or ""
    kind = content.get("kind", "text")
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"{kind}: {shown!r}" if kind != "text" else repr(shown)
