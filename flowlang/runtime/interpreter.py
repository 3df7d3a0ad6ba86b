"""The interpreter: one pure step of a conversation's flow.

`run(program, state, trigger, facts) -> RunResult(state, effects, trace)`. No I/O and no wall
clock: time comes from `facts.now`. A run executes nodes until the flow suspends (it asks the
customer, hands off to a bot, waits for an agent or a queue, calls a data action), ends, or fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

from flowlang.compiler.ir import Node
from flowlang.errors import FlowRuntimeError
from flowlang.runtime import effects as fx
from flowlang.runtime.evaluate import _text
from flowlang.runtime.program import Program
from flowlang.runtime.state import Facts, FlowState, Frame, Trigger, Waiting, WaitKind

MAX_STEPS = 10_000


@dataclass(frozen=True)
class TraceStep:
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
    trace: list[TraceStep] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # every node executed, in order


class _Suspend(Exception):
    pass


class _Finished(Exception):
    pass


def run(program: Program, state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
    """Advance a conversation's flow by one event; never raises for flow errors."""
    return _Run(program, state.clone(), trigger, facts).execute()


class _Run:
    def __init__(self, program: Program, state: FlowState, trigger: Trigger, facts: Facts) -> None:
        self.p = program
        self.g = program.graph
        self.s = state
        self.trigger = trigger
        self.facts = facts
        self.result = RunResult(state)
        self._env_cache: dict[str, Any] | None = None

    # ------------------------------------------------------------------ entry points
    def execute(self) -> RunResult:
        start = self._resume_point()
        if start is None:
            return self.result
        self.s.status = "running"
        self.s.position = start
        try:
            self._loop()
        except _Suspend:
            self.s.status = "waiting"
        except _Finished:
            pass
        return self.result

    def _resume_point(self) -> str | None:
        s, t = self.s, self.trigger
        if s.waiting is None:
            if t.kind != "message":
                self._note("ignored", f"no step is waiting for a {t.kind} event")
                return None
            self._fresh_start()
            return self.g.entry
        waiting = s.waiting
        node = self.g.nodes[waiting.node]
        expected = {
            "answer": "message",
            "bot": "bot",
            "agent": "agent",
            "queue": "queue",
            "data": "data",
        }[waiting.kind]
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
        self._changed()
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

    def _fresh_start(self) -> None:
        self.s = self.result.state = FlowState(graph_version=self.g.version)
        self._changed()
        env = self._env()
        for name, spec in self.g.variables.items():
            initial = spec.get("initial")
            self.s.variables[name] = self.p.expr(initial)(env) if initial else None
        self._changed()

    # ------------------------------------------------------------------ main loop
    def _loop(self) -> None:
        nodes, path, execute = self.g.nodes, self.result.path, self._execute
        position = self.s.position
        assert position is not None
        while True:
            node = nodes[position]
            path.append(position)
            if len(path) > MAX_STEPS:
                self._step_limit()
            try:
                position = execute(node)
            except FlowRuntimeError as exc:
                position = self._runtime_error(node, exc)

    def _step_limit(self) -> None:
        hottest, _count = Counter(self.result.path).most_common(1)[0]
        hot = self.g.nodes[hottest]
        message = (
            f"the flow ran {MAX_STEPS:,} steps for one event; it keeps looping through "
            f"line {hot.source.line} ({hot.op})"
        )
        self._fail(hot, "FL901", message)

    def _runtime_error(self, node: Node, exc: FlowRuntimeError) -> str:
        message = f"{exc} (line {node.source.line})"
        if self.g.on_error is not None and not self.s.in_error_handler:
            self.s.in_error_handler = True
            self.s.error = {"message": str(exc), "code": exc.code, "step": node.id}
            self._changed()
            self.result.effects.append(
                fx.LogMessage(
                    step=node.id, line=node.source.line, message=f"error: {message}; on error runs"
                )
            )
            self._trace(node, f"error: {exc}; going to on error")
            self.s.stack.clear()
            return self.g.on_error
        self._fail(node, exc.code, str(exc))
        raise AssertionError("unreachable")

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
        raise _Finished

    def _finish(self, node: Node, status: str, reason: str | None) -> None:
        self.s.status = status  # type: ignore[assignment]
        self.s.ended_reason = reason
        self.s.waiting = None
        self.s.position = node.id

    # ------------------------------------------------------------------ helpers
    def _trace(self, node: Node, detail: str = "") -> None:
        self.result.trace.append(TraceStep(node.id, node.op, node.source.line, detail))

    def _note(self, op: str, detail: str) -> None:
        self.result.trace.append(TraceStep("-", op, 0, detail))

    def _emit(self, effect: Any) -> None:
        self.result.effects.append(effect)

    def _env(self) -> dict[str, Any]:
        """The names expressions and templates see; rebuilt only after the flow changes them."""
        if self._env_cache is None:
            self._env_cache = self._build_env()
        return self._env_cache

    def _changed(self) -> None:
        self._env_cache = None

    def _build_env(self) -> dict[str, Any]:
        f, s = self.facts, self.s
        params = {n: f.params.get(n, spec["value"]) for n, spec in self.g.params.items()}
        interaction = s.interaction
        env: dict[str, Any] = {
            "message": f.message,
            "customer": f.customer,
            "conversation": f.conversation,
            "window": f.window,
            "bot": s.bot,
            "error": s.error,
            "interaction": {
                "priority": interaction.priority,
                "language": interaction.language,
                "skills": list(interaction.skills),
            },
            "priority": interaction.priority,
            "language": interaction.language,
        }
        env.update(params)
        env.update(s.records)
        env.update(s.variables)
        return env

    def _value(self, tree: dict[str, Any] | None) -> Any:
        return None if tree is None else self.p.expr(tree)(self._env())

    def _name(self, ref: dict[str, str] | None) -> str | None:
        if ref is None:
            return None
        if "name" in ref:
            return ref["name"]
        value = self.facts.params.get(ref["param"], self.g.params[ref["param"]]["value"])
        return None if value is None else str(value)

    def _suspend(self, node: Node, kind: WaitKind, wait: int | None) -> NoReturn:
        deadline = timer = None
        if wait is not None:
            self.s.timers += 1
            timer = f"{node.id}#{self.s.timers}"
            deadline = self.facts.now + timedelta(seconds=wait)
            self._emit(fx.StartTimer(step=node.id, line=node.source.line, timer=timer, at=deadline))
        self.s.waiting = Waiting(kind=kind, node=node.id, deadline=deadline, timer=timer)
        self.s.position = node.id
        raise _Suspend

    def _render_text(self, text: str) -> str:
        template = self.p.template_text(text)
        if template is None:
            return text
        try:
            return template.render(self._env())
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
            env = {**self._env(), **values}
            try:
                text = compiled.render(env) if compiled is not None else template.source
            except Exception as exc:
                raise FlowRuntimeError(f"template {name!r} failed: {exc}") from exc
            if template.kind == "text":
                return {"kind": "text", "text": text, "template": name}
            return {"kind": template.kind, "text": text, "template": name, **template.data}
        return {"kind": template.kind, "template": name, **template.data}

    # ------------------------------------------------------------------ nodes
    def _execute(self, node: Node) -> str:
        handler = _OPS.get(node.op)
        if handler is None:
            raise FlowRuntimeError(f"unknown step kind {node.op!r}")
        return handler(self, node, node.args, node.edges, node.source.line)

    def _op_reply(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
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

    def _op_set_var(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        self.s.variables[a["name"]] = self._value(a["value"])
        self._changed()
        self._trace(node, f"{a['name']} = {_text(self.s.variables[a['name']])!r}")
        return e["next"]

    def _op_set_priority(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        value = self._value(a["value"])
        self.s.interaction.priority = float(value or 0)
        self._changed()
        self._trace(node, f"priority {self.s.interaction.priority:g}")
        return e["next"]

    def _op_set_language(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        value = self._value(a["value"])
        self.s.interaction.language = None if value is None else str(value)
        self._changed()
        self._trace(node, f"language {value}")
        return e["next"]

    def _op_set_data(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
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

    def _op_add_skill(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        skill = self._name(a["skill"]) or ""
        self.s.interaction.skills[skill] = a.get("min")
        self._changed()
        self._trace(node, f"skill {skill}" + (f" min {a['min']}" if a.get("min") else ""))
        return e["next"]

    def _op_remove_skill(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        skill = self._name(a["skill"]) or ""
        self.s.interaction.skills.pop(skill, None)
        self._changed()
        self._trace(node, f"skill {skill} removed")
        return e["next"]

    def _op_not_actionable(
        self, node: Node, a: dict[str, Any], e: dict[str, str], line: int
    ) -> str:
        self._emit(fx.MarkNotActionable(step=node.id, line=line, reason=a.get("reason")))
        self._trace(node, a.get("reason") or "")
        self._finish(node, "ended", a.get("reason") or "not actionable")
        raise _Finished

    def _op_link(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        value = _text(self._value(a["value"]))
        self._emit(fx.LinkIdentity(step=node.id, line=line, kind=a["kind"], value=value))
        self._trace(node, f"{a['kind']} = {value}")
        return e["next"]

    def _op_goto(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        self._trace(node, a.get("state", a.get("why", "")))
        return e["target"]

    def _op_log(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        self._emit(fx.LogMessage(step=node.id, line=line, message=a["message"]))
        self._trace(node, a["message"])
        return e["next"]

    def _op_end(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        if a.get("implicit") and self.s.stack:
            raise FlowRuntimeError("a task ended without an outcome")
        reason = a.get("reason")
        self._emit(fx.EndFlow(step=node.id, line=line, reason=reason))
        self._trace(node, reason or ("end of state" if a.get("implicit") else ""))
        self._finish(node, "ended", reason)
        raise _Finished

    def _op_outcome(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        return self._return(node, a.get("name"))

    def _op_call(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        self.s.stack.append(Frame(task=a["task"], call_node=node.id))
        self._trace(node, a["task"])
        return e["entry"]

    def _op_branch(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        env = self._env()
        for index, tree in enumerate(a["conditions"]):
            if self.p.expr(tree)(env):
                self._trace(node, f"condition {index + 1} true")
                return e[f"case{index}"]
        self._trace(node, "else" if e["else"] else "no condition true")
        return e["else"]

    def _op_switch(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        subject = self._value(a["subject"])
        for index, values in enumerate(a["cases"]):
            if any(_same(subject, v) for v in values):
                self._trace(node, f"case {values}")
                return e[f"case{index}"]
        self._trace(node, "default")
        return e["else"]

    def _op_match(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        return self._match(node)

    def _op_match_case(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        hit = a["index"] in self.s.matches.get(a["match"], [])
        return e["then"] if hit else e["else"]

    def _op_match_none(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        return e["then"] if not self.s.matches.get(a["match"]) else e["else"]

    def _op_loop_init(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        self.s.loops[a["loop"]] = 0
        return e["next"]

    def _op_loop_test(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        count = self.s.loops.get(a["loop"], 0)
        keep = count < a["limit"]
        if keep and a.get("condition") is not None:
            keep = bool(self._value(a["condition"]))
        if keep:
            self.s.loops[a["loop"]] = count + 1
            return e["then"]
        self._trace(node, f"loop done after {count} time(s)")
        return e["else"]

    def _op_recognize(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        kinds = set(a["kinds"])
        known = bool(kinds & self.facts.known_by)
        self._trace(node, "known" if known else "unknown")
        return e.get("on:known" if known else "on:unknown") or e["next"]

    def _op_schedule(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        name = self._name(a["schedule"]) or ""
        status = self.facts.schedule_state(name, self.facts.now)
        self._trace(node, f"{name}: {status}")
        return e.get(f"on:{status}") or e["next"]

    def _op_ask(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        content = self._content(a["prompt"])
        self._emit(fx.SendReply(step=node.id, line=line, content=content))
        self._trace(node, f"asks {_summary(content)}; waits")
        self._suspend(node, "answer", a.get("wait"))

    def _op_bot(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        bot = self._name(a["bot"]) or ""
        self._emit(fx.HandOffToBot(step=node.id, line=line, bot=bot, wait_seconds=a.get("wait")))
        self._trace(node, f"bot {bot}; waits")
        self._suspend(node, "bot", a.get("wait"))

    def _op_data_action(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
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

    def _op_route_agent(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        return self._route_agent(node)

    def _op_route_queue(self, node: Node, a: dict[str, Any], e: dict[str, str], line: int) -> str:
        self._route_queue(node)

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
        found = self.p.matcher(node).matches(_text(subject))
        self.s.matches[node.id] = found
        shown = ", ".join(
            "/".join(a["whens"][i]["keywords"] + a["whens"][i]["regexes"])[:40] for i in found
        )
        self._trace(node, f"matched {shown}" if found else "no keyword matched")
        if "next" in e:
            return e["next"]
        if found:
            return e[f"when{found[0]}"]
        return e["otherwise"]

    def _route_agent(self, node: Node) -> str:
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
        raise AssertionError("unreachable")

    def _route_queue(self, node: Node) -> NoReturn:
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
        self._finish(node, "routed", f"routed to {queue}")
        raise _Finished


_OPS: dict[str, Callable[[_Run, Node, dict[str, Any], dict[str, str], int], str]] = {
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


def _same(subject: Any, value: Any) -> bool:
    if isinstance(subject, int | float) and isinstance(value, int | float):
        return float(subject) == float(value)
    return bool(subject == value)


def _summary(content: dict[str, Any]) -> str:
    text = content.get("text") or content.get("name") or content.get("url") or ""
    kind = content.get("kind", "text")
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"{kind}: {shown!r}" if kind != "text" else repr(shown)
