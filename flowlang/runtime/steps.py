"""Each node of a graph compiled once into a step function specialised to its arguments.

A step takes the run it belongs to and returns the id of the next node, or None when the run
stops (the flow suspended, ended or was routed); flow errors raise `FlowRuntimeError`. Everything
a node's arguments decide (names, literal values, compiled expressions, matchers, templates,
edges, trace texts that do not change) is worked out here, when the program is first run, so a
step does only what depends on the conversation. No source text is generated: a step is a
closure over values.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any, assert_never

from flowlang.compiler import ir
from flowlang.compiler.ir import Node
from flowlang.errors import FlowRuntimeError
from flowlang.runtime import effects as fx
from flowlang.runtime.agent_steps import binder, canonical
from flowlang.runtime.evaluate import Compiled, _number, _text
from flowlang.runtime.program import Program
from flowlang.runtime.splits import split_bucket
from flowlang.runtime.state import Frame
from flowlang.runtime.survey import read_answer

if TYPE_CHECKING:
    from flowlang.runtime.interpreter import Describe, Line, RunContext

Step = Callable[["RunContext"], str | None]
_Reader = Callable[["RunContext"], Any]
_Content = Callable[["RunContext"], dict[str, Any]]


def build_steps(program: Program) -> dict[str, Step]:
    """A step function for every node of the program's graph."""
    return {node.id: build_step(node, program) for node in program.graph.nodes.values()}


# Complex by design: one case per operation, exhaustive (assert_never).
def build_step(node: Node, program: Program) -> Step:  # noqa: C901
    """The step function of one node, by its operation (mypy checks that every one has a
    builder)."""
    a = node.args
    match a:
        case ir.ReplyArgs():
            return _reply(node, a, program)
        case ir.AskArgs():
            return _ask(node, a, program)
        case ir.LogArgs():
            return _log(node, a, program)
        case ir.SetVarArgs():
            return _set_var(node, a, program)
        case ir.SetPriorityArgs():
            return _set_priority(node, a, program)
        case ir.SetLanguageArgs():
            return _set_language(node, a, program)
        case ir.SetDataArgs():
            return _set_data(node, a, program)
        case ir.AddSkillArgs():
            return _add_skill(node, a, program)
        case ir.RemoveSkillArgs():
            return _remove_skill(node, a)
        case ir.LinkArgs():
            return _link(node, a, program)
        case ir.GotoArgs():
            return _goto(node, a.state)
        case ir.JumpArgs():
            return _goto(node, a.why)
        case ir.EndArgs():
            return _end(node, a)
        case ir.NotActionableArgs():
            return _not_actionable(node, a)
        case ir.CallArgs():
            return _call(node, a)
        case ir.OutcomeArgs():
            return _outcome(node, a.name, program)
        case ir.ReturnArgs():
            return _outcome(node, None, program)
        case ir.BranchArgs():
            return _branch(node, a, program)
        case ir.SwitchArgs():
            return _switch(node, a, program)
        case ir.LoopInitArgs():
            return _loop_init(node, a)
        case ir.LoopTestArgs():
            return _loop_test(node, a, program)
        case ir.MatchArgs():
            return _match(node, a, program)
        case ir.MatchCaseArgs():
            return _match_case(node, a, program)
        case ir.MatchNoneArgs():
            return _match_none(node, a)
        case ir.RecognizeArgs():
            return _recognize(node, a)
        case ir.ScheduleArgs():
            return _schedule(node, a)
        case ir.BotArgs():
            return _bot(node, a)
        case ir.DataActionArgs():
            return _data_action(node, a, program)
        case ir.RouteAgentArgs():
            return _route_agent(node, a, program)
        case ir.RouteQueueArgs():
            return _route_queue(node, a, program)
        case ir.KeepWaitingArgs():
            return _keep_waiting(node, a, program)
        case ir.SplitArgs():
            return _split(node, a, program)
        case ir.MilestoneArgs():
            return _milestone(node, a, program)
        case ir.SurveyArgs():
            return _survey(node, a, program)
        case ir.TransferFlowArgs():
            return _transfer_flow(node, a, program)
        case _:
            assert_never(a)


# ---------------------------------------------------------------------------- shared readers
def _name_reader(
    ref: ir.NameRef | None, program: Program | None = None
) -> Callable[[RunContext], str | None]:
    """A queue/skill/bot/... name: written in the flow, or a param's (for a routing target, a
    variable's or an expression's) value at run time."""
    if ref is None:
        return lambda _r: None
    if ref.expr is not None and program is not None:
        compiled = program.expr(ref.expr)

        def read_expr(r: RunContext) -> str | None:
            value = compiled(r)
            return None if value is None or value == "" else _text(value)

        return read_expr
    if not ref.is_param:
        name = ref.value
        return lambda _r: name
    param = ref.value

    def read_param(r: RunContext) -> str | None:
        value = r.get(param)
        return None if value is None else str(value)

    return read_param


def _unknown_target(node: Node) -> Callable[[RunContext, str, str | None], str]:
    """What a route does with a target its data names and the deployment does not have: a
    trace line, then its `on unknown` branch, else the flow's error (`on error`)."""
    branch, line, nid = node.edges.get("on:unknown"), node.source.line, node.id

    def unknown(r: RunContext, kind: str, name: str | None) -> str:
        shown = "not set" if name is None else repr(name)
        message = f"unknown {kind} {shown} at line {line}: no such {kind} in the deployment"
        if branch is None:
            raise FlowRuntimeError(message)
        r.effects.append(fx.LogMessage(step=nid, line=line, message=f"{message}; on unknown"))
        r.lines.append((node, "", f"{message}; on unknown"))
        return branch

    return unknown


def _value_reader(tree: ir.ExprTree | None, program: Program) -> _Reader:
    if tree is None:
        return lambda _r: None
    compiled = program.expr(tree)
    return lambda r: compiled(r)


def _text_renderer(text: str, program: Program) -> _Reader:
    template = program.template_text(text)
    if template is None:
        return lambda _r: text

    def render(r: RunContext) -> str:
        try:
            return template.render(r.get)
        except Exception as exc:  # jinja raises many types; all mean the reply cannot be made
            raise FlowRuntimeError(f"reply template failed: {exc}") from exc

    return render


_Sent = tuple[dict[str, Any], "str | Describe", Any]


def _sent(
    content: ir.Content, program: Program, describe: Callable[[str], str] = str
) -> Callable[[RunContext], _Sent]:
    """What a reply or question sends, with its trace line's (how, what): `describe` of its
    summary, worked out once when it is plain text without a template, else when the trace is
    read (effects copy the content, so the content made here is never changed)."""
    if (
        isinstance(content, ir.TextContent)
        and not content.choices
        and program.template_text(content.text) is None
    ):
        fixed: dict[str, Any] = {"kind": "text", "text": content.text}
        sent: _Sent = (fixed, "", describe(_summary(fixed)))
        return lambda _r: sent
    content_of = _content_maker(content, program)

    def describe_made(made: dict[str, Any]) -> str:
        return describe(_summary(made))

    def make(r: RunContext) -> _Sent:
        made = content_of(r)
        return made, describe_made, made

    return make


def _content_maker(content: ir.Content, program: Program) -> _Content:
    """What a reply or question sends: text (maybe with choices), a template, or rich content."""
    if isinstance(content, ir.TextContent):
        render = _text_renderer(content.text, program)
        choices = content.choices
        if not choices:
            return lambda r: {"kind": "text", "text": render(r)}
        choice_kind, options = choices.kind, choices.options
        return lambda r: {"kind": choice_kind, "text": render(r), "options": list(options)}
    if isinstance(content, ir.TemplateContent):
        return _template_maker(content.template, content.args, program)
    fixed = ir.to_json(content)
    assert isinstance(fixed, dict)
    return lambda _r: dict(fixed)


def _template_maker(
    ref: ir.NameRef | None, args: dict[str, ir.ExprTree], program: Program
) -> _Content:
    """A deployment template, filled in: WhatsApp ones by name and parameters, others rendered."""
    name_of = _name_reader(ref)
    arg_readers = {key: _value_reader(tree, program) for key, tree in args.items()}

    def make(r: RunContext) -> dict[str, Any]:
        name = name_of(r) or ""
        values = {key: read(r) for key, read in arg_readers.items()}
        template = program.templates.get(name)
        if template is None:
            return {"kind": "template", "name": name, "parameters": values}
        if template.kind == "whatsapp":
            return {"kind": "template", "name": name, "parameters": values, **template.data}
        if template.source is not None:
            compiled = program.template_text(template.source)
            try:
                text = compiled.render(r.get, values) if compiled is not None else template.source
            except Exception as exc:
                raise FlowRuntimeError(f"template {name!r} failed: {exc}") from exc
            if template.kind == "text":
                return {"kind": "text", "text": text, "template": name}
            return {"kind": template.kind, "text": text, "template": name, **template.data}
        return {"kind": template.kind, "template": name, **template.data}

    return make


def _delay(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _summary(content: dict[str, Any]) -> str:
    text = content.get("text") or content.get("name") or content.get("url") or ""
    kind = content.get("kind", "text")
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"{kind}: {shown!r}" if kind != "text" else repr(shown)


_PLAIN = frozenset({str, int, float, bool, type(None)})
"""The classes of values nothing changes in place: a trace line describes them when read."""


def _priority(priority: float) -> str:
    return f"priority {priority:g}"


def _schedule_status(name_status: tuple[str, str]) -> str:
    name, status = name_status
    return f"{name}: {status}"


def _bot_waits(name: str) -> str:
    return f"bot {name}; waits"


def _line(node: Node, detail: str) -> Line:
    """A trace line whose detail is fixed, made once and recorded by every run (a tuple: no
    run changes it)."""
    return (node, "", detail)


def _same(subject: object, value: object) -> bool:
    if isinstance(subject, int | float) and isinstance(value, int | float):
        return float(subject) == float(value)
    return bool(subject == value)


# ---------------------------------------------------------------------------- messages
def _reply(node: Node, a: ir.ReplyArgs, program: Program) -> Step:
    nxt, line, nid = node.edges["next"], node.source.line, node.id
    sent, visibility = _sent(a.content, program), a.visibility
    guard = a.guard
    guard_of: Callable[[RunContext], dict[str, Any]] | None = None
    if guard is not None:
        action = guard.action
        if action == "template":
            fill = _template_maker(guard.template, guard.args, program)
            guard_of = lambda r: {"action": action, "content": fill(r)}  # noqa: E731
        else:
            guard_of = lambda _r: {"action": action}  # noqa: E731

    def reply(r: RunContext) -> str | None:
        rendered_guard = None if guard_of is None else guard_of(r)
        content, how, what = sent(r)
        r.effects.append(
            fx.SendReply(
                step=nid, line=line, content=content, visibility=visibility, guard=rendered_guard
            )
        )
        r.lines.append((node, how, what))
        return nxt

    # the usual replies leave out the fields they do not change (validating one costs)
    if visibility != "default":
        return reply
    if guard_of is None:

        def plain_reply(r: RunContext) -> str | None:
            content, how, what = sent(r)
            r.effects.append(fx.SendReply(step=nid, line=line, content=content))
            r.lines.append((node, how, what))
            return nxt

        return plain_reply
    guarded = guard_of

    def guarded_reply(r: RunContext) -> str | None:
        rendered_guard = guarded(r)
        content, how, what = sent(r)
        r.effects.append(fx.SendReply(step=nid, line=line, content=content, guard=rendered_guard))
        r.lines.append((node, how, what))
        return nxt

    return guarded_reply


def _ask(node: Node, a: ir.AskArgs, program: Program) -> Step:
    line, nid = node.source.line, node.id
    sent = _sent(a.prompt, program, lambda summary: f"asks {summary}; waits")
    wait = _delay(a.wait)

    def ask(r: RunContext) -> str | None:
        content, how, what = sent(r)
        r.effects.append(fx.SendReply(step=nid, line=line, content=content))
        r.lines.append((node, how, what))
        r.suspend(node, "answer", wait)
        return None

    return ask


def _survey(node: Node, a: ir.SurveyArgs, program: Program) -> Step:
    """Asks each question in turn, suspending for each answer; a rating out of its scale is
    asked once more when it has a `retry` text, else (or then) the survey ends with
    `invalid`. Which question waits, and whether it was asked again, are kept in the state's
    counters."""
    line, nid, name = node.source.line, node.id, a.name
    at_question, retried = f"{nid}#question", f"{nid}#retried"
    wait = _delay(a.wait)
    waits = lambda summary: f"asks {summary}; waits"  # noqa: E731
    asks = [_sent(q.prompt, program, waits) for q in a.questions]
    retries = [
        _sent(ir.TextContent(q.retry), program, waits) if q.retry is not None else None
        for q in a.questions
    ]
    answered = node.edges.get("on:answered") or node.edges["next"]
    invalid = node.edges.get("on:invalid") or node.edges["next"]

    def ask(r: RunContext, index: int, again: bool) -> None:
        sent = retries[index] if again else asks[index]
        assert sent is not None
        content, how, what = sent(r)
        r.effects.append(fx.SendReply(step=nid, line=line, content=content))
        r.lines.append((node, how, what))
        r.s.loops[at_question], r.s.loops[retried] = index, int(again)
        r.suspend(node, "answer", wait)

    def leave(r: RunContext, edge: str) -> str:
        r.s.loops.pop(at_question, None)
        r.s.loops.pop(retried, None)
        return edge

    def survey(r: RunContext) -> str | None:
        text = r.take_answer()
        if text is None:  # the survey starts
            ask(r, 0, False)
            return None
        index = r.s.loops.get(at_question, 0)
        question = a.questions[index]
        value = read_answer(question, text)
        if value is None:
            if retries[index] is not None and not r.s.loops.get(retried):
                r.lines.append(
                    (node, "", f"{text!r} is not a rating from {question.low} to {question.high}")
                )
                ask(r, index, True)
                return None
            r.lines.append((node, "", f"{text!r} is not an answer: invalid"))
            return leave(r, invalid)
        r.s.variables[question.into] = value
        r.effects.append(
            fx.SurveyAnswer(
                step=nid,
                line=line,
                survey=name,
                question=question.into,
                kind="rating" if question.kind == "rating" else "comment",
                value=value,
                low=question.low,
                high=question.high,
            )
        )
        r.lines.append((node, "", f"{question.into} = {value!r}"))
        if index + 1 < len(a.questions):
            ask(r, index + 1, False)
            return None
        return leave(r, answered)

    return survey


def _log(node: Node, a: ir.LogArgs, program: Program) -> Step:
    message, nxt, line, nid = a.message, node.edges["next"], node.source.line, node.id
    render = _text_renderer(message, program)

    def log(r: RunContext) -> str | None:
        try:
            text = render(r)
        except FlowRuntimeError as exc:  # a log line never fails the conversation
            text = f"{message} (not rendered: {exc})"
        r.effects.append(fx.LogMessage(step=nid, line=line, message=text))
        r.lines.append((node, "", text))
        return nxt

    return log


# ---------------------------------------------------------------------------- variables and data
def _set_var(node: Node, a: ir.SetVarArgs, program: Program) -> Step:
    name, value_of, nxt = a.name, program.expr(a.value), node.edges["next"]

    def describe(value: Any) -> str:
        return f"{name} = {_text(value)!r}"

    def set_var(r: RunContext) -> str | None:
        value = r.s.variables[name] = value_of(r)
        if value.__class__ in _PLAIN:
            r.lines.append((node, describe, value))
        else:  # a value that may change later is described now
            r.lines.append((node, "", describe(value)))
        return nxt

    return set_var


def _set_priority(node: Node, a: ir.SetPriorityArgs, program: Program) -> Step:
    value_of, nxt = program.expr(a.value), node.edges["next"]

    def set_priority(r: RunContext) -> str | None:
        priority = r.s.interaction.priority = float(_number(value_of(r) or 0))
        r.lines.append((node, _priority, priority))
        return nxt

    return set_priority


def _set_language(node: Node, a: ir.SetLanguageArgs, program: Program) -> Step:
    tree, nxt = a.value, node.edges["next"]
    if set(tree) == {"lit"}:  # the usual `set language to "es"`
        value = tree["lit"]
        language, traced = (None if value is None else str(value)), _line(node, f"language {value}")

        def set_written_language(r: RunContext) -> str | None:
            r.s.interaction.language = language
            r.lines.append(traced)
            return nxt

        return set_written_language
    value_of = program.expr(tree)

    def set_language(r: RunContext) -> str | None:
        value = value_of(r)
        r.s.interaction.language = None if value is None else str(value)
        r.lines.append((node, "", f"language {value}"))
        return nxt

    return set_language


def _set_data(node: Node, a: ir.SetDataArgs, program: Program) -> Step:
    nxt, line, nid = node.edges["next"], node.source.line, node.id
    value_of, scope, key = program.expr(a.value), a.scope, a.key
    participant = scope == "participant"

    def describe(value: Any) -> str:
        return f"{scope} data {key} = {value!r}"

    def set_data(r: RunContext) -> str | None:
        value = value_of(r)
        i = r.s.interaction
        (i.participant_data if participant else i.conversation_data)[key] = value
        r.effects.append(fx.SetData(step=nid, line=line, scope=scope, key=key, value=value))
        if value.__class__ in _PLAIN:
            r.lines.append((node, describe, value))
        else:  # a value that may change later is described now
            r.lines.append((node, "", describe(value)))
        return nxt

    return set_data


def _add_skill(node: Node, a: ir.AddSkillArgs, program: Program) -> Step:
    nxt, minimum = node.edges["next"], a.min
    suffix = f" min {minimum}" if minimum else ""
    if a.skill.written:
        skill, traced = a.skill.value, _line(node, f"skill {a.skill.value}{suffix}")

        def add_written_skill(r: RunContext) -> str | None:
            r.s.interaction.skills[skill] = minimum
            r.lines.append(traced)
            return nxt

        return add_written_skill
    skill_of, unknown = _name_reader(a.skill, program), _unknown_target(node)
    checked = a.skill.expr is not None  # a param's value was checked with the deployment

    def add_skill(r: RunContext) -> str | None:
        name = skill_of(r)
        if checked and (name is None or not r.facts.known("skill", name)):
            return unknown(r, "skill", name)
        name = name or ""
        r.s.interaction.skills[name] = minimum
        r.lines.append((node, "", f"skill {name}{suffix}"))
        return nxt

    return add_skill


def _remove_skill(node: Node, a: ir.RemoveSkillArgs) -> Step:
    skill_of, nxt = _name_reader(a.skill), node.edges["next"]

    def remove_skill(r: RunContext) -> str | None:
        name = skill_of(r) or ""
        r.s.interaction.skills.pop(name, None)
        r.lines.append((node, "", f"skill {name} removed"))
        return nxt

    return remove_skill


def _link(node: Node, a: ir.LinkArgs, program: Program) -> Step:
    nxt, line, nid = node.edges["next"], node.source.line, node.id
    kind, value_of = a.kind, program.expr(a.value)
    verified_by = _name_reader(a.verified_by) if a.verified_by else None

    def link(r: RunContext) -> str | None:
        value = _text(value_of(r))
        action = verified_by(r) if verified_by is not None else None
        r.effects.append(
            fx.LinkIdentity(step=nid, line=line, kind=kind, value=value, verified_by=action)
        )
        proof = f"verified by {action}" if action else "unverified claim"
        r.lines.append((node, "", f"{kind} = {value} ({proof})"))
        return nxt

    return link


def _split(node: Node, a: ir.SplitArgs, program: Program) -> Step:
    edges = [node.edges[f"branch:{b}"] for b in a.branches]
    bounds = list(accumulate(a.shares))
    flow, nid, line = program.graph.name, node.id, node.source.line
    name, branches = a.name, a.branches

    def split(r: RunContext) -> str | None:
        bucket = split_bucket(str(r.facts.conversation.get("id") or ""), name)
        index = min(bisect_right(bounds, bucket), len(edges) - 1)
        branch = branches[index]
        r.effects.append(fx.SplitTaken(step=nid, line=line, flow=flow, split=name, branch=branch))
        r.lines.append((node, "", f"{name}: {branch}"))
        return edges[index]

    return split


def _transfer_flow(node: Node, a: ir.TransferFlowArgs, program: Program) -> Step:
    target, nid, line, here = a.flow, node.id, node.source.line, program.graph.name

    def transfer_flow(r: RunContext) -> str | None:
        loaded, chain = r.facts.flows, r.facts.transfers or (here,)
        if loaded and target not in loaded:
            raise FlowRuntimeError(
                f"cannot transfer to flow {target!r}: no flow of that name is loaded "
                f"(loaded: {', '.join(sorted(loaded))})"
            )
        if target in chain:
            loop = " -> ".join((*chain, target))
            raise FlowRuntimeError(f"transfer loop: {loop}; the conversation stays in {here!r}")
        r.effects.append(fx.TransferToFlow(step=nid, line=line, flow=target, source=here))
        r.lines.append((node, "", target))
        r.finish(node, "ended", f"transferred to flow {target}")
        return None

    return transfer_flow


def _milestone(node: Node, a: ir.MilestoneArgs, program: Program) -> Step:
    nxt, flow, nid, line = node.edges["next"], program.graph.name, node.id, node.source.line
    name = a.name

    def milestone(r: RunContext) -> str | None:
        r.effects.append(fx.MilestoneReached(step=nid, line=line, flow=flow, milestone=name))
        r.lines.append((node, "", name))
        return nxt

    return milestone


# ---------------------------------------------------------------------------- control
def _goto(node: Node, detail: str) -> Step:
    """`go to state` (detail: the state) and `break` (detail: "break")."""
    target, traced = node.edges["target"], _line(node, detail)

    def goto(r: RunContext) -> str | None:
        r.lines.append(traced)
        return target

    return goto


def _end(node: Node, a: ir.EndArgs) -> Step:
    line, nid = node.source.line, node.id
    reason, implicit = a.reason, a.implicit
    traced = _line(node, reason or ("end of state" if implicit else ""))

    def end(r: RunContext) -> str | None:
        if implicit and r.s.stack:
            raise FlowRuntimeError("a task ended without an outcome")
        r.effects.append(fx.EndFlow(step=nid, line=line, reason=reason))
        r.lines.append(traced)
        r.finish(node, "ended", reason)
        return None

    return end


def _not_actionable(node: Node, a: ir.NotActionableArgs) -> Step:
    reason, line, nid = a.reason, node.source.line, node.id

    def not_actionable(r: RunContext) -> str | None:
        r.effects.append(fx.MarkNotActionable(step=nid, line=line, reason=reason))
        r.lines.append((node, "", reason or ""))
        r.finish(node, "ended", reason or "not actionable")
        return None

    return not_actionable


def _call(node: Node, a: ir.CallArgs) -> Step:
    entry, traced = node.edges["entry"], _line(node, a.task)
    frame = Frame(a.task, node.id)  # (a named tuple: no run changes it)

    def call(r: RunContext) -> str | None:
        r.s.stack.append(frame)
        r.lines.append(traced)
        return entry

    return call


def _outcome(node: Node, outcome: str | None, program: Program) -> Step:
    """`outcome` (named) and the end of a task's body (`return`, no outcome)."""
    nodes = program.graph.nodes
    edge, gives = f"on:{outcome}", outcome or "done"

    def describe(task: str) -> str:
        return f"task {task} -> {gives}"

    def give_outcome(r: RunContext) -> str | None:
        if not r.s.stack:
            raise FlowRuntimeError("'outcome' outside a task")
        frame = r.s.stack.pop()
        edges = nodes[frame.call_node].edges
        r.lines.append((node, describe, frame.task))
        if outcome is not None and edge in edges:
            return edges[edge]
        return edges["next"]

    return give_outcome


def _branch(node: Node, a: ir.BranchArgs, program: Program) -> Step:
    e = node.edges
    cases = [
        (program.expr(tree), e[f"case{index}"], _line(node, f"condition {index + 1} true"))
        for index, tree in enumerate(a.conditions)
    ]
    otherwise = e["else"]
    otherwise_traced = _line(node, "else" if otherwise else "no condition true")

    def branch(r: RunContext) -> str | None:
        for condition, target, traced in cases:
            if condition(r):
                r.lines.append(traced)
                return target
        r.lines.append(otherwise_traced)
        return otherwise

    return branch


def _switch(node: Node, a: ir.SwitchArgs, program: Program) -> Step:
    e = node.edges
    subject_of = program.expr(a.subject)
    cases = [
        (values, e[f"case{index}"], _line(node, f"case {list(values)}"))
        for index, values in enumerate(a.cases)
    ]
    default, default_traced = e["else"], _line(node, "default")

    def switch(r: RunContext) -> str | None:
        subject = subject_of(r)
        for values, target, traced in cases:
            if any(_same(subject, v) for v in values):
                r.lines.append(traced)
                return target
        r.lines.append(default_traced)
        return default

    return switch


def _loop_init(node: Node, a: ir.LoopInitArgs) -> Step:
    loop, nxt = a.loop, node.edges["next"]

    def loop_init(r: RunContext) -> str | None:
        r.s.loops[loop] = 0
        return nxt

    return loop_init


def _loop_test(node: Node, a: ir.LoopTestArgs, program: Program) -> Step:
    e = node.edges
    loop, limit, then, done = a.loop, a.limit, e["then"], e["else"]
    condition: Compiled | None = program.expr(a.condition) if a.condition is not None else None

    def loop_test(r: RunContext) -> str | None:
        loops = r.s.loops
        count = loops.get(loop, 0)
        keep = count < limit
        if keep and condition is not None:
            keep = bool(condition(r))
        if keep:
            loops[loop] = count + 1
            return then
        r.lines.append((node, "", f"loop done after {count} time(s)"))
        return done

    return loop_test


# ---------------------------------------------------------------------------- keywords
def _match(node: Node, a: ir.MatchArgs, program: Program) -> Step:
    e, nid = node.edges, node.id
    subject: Compiled | None = program.expr(a.subject) if a.subject else None
    matcher = program.matcher(node)
    labels = matcher.labels
    then = e.get("next")  # `match keywords`: the chain of `when` tests follows
    whens = [e[f"when{index}"] for index in range(matcher.count)] if then is None else []
    otherwise = e["otherwise"] if then is None else then

    tests, after = _when_tests(program, nid) if then is not None else ([], "")

    def describe(found: tuple[int, ...]) -> str:
        return "matched " + ", ".join([labels[i] for i in found])

    none_matched = _line(node, "no keyword matched")

    def match(r: RunContext) -> str | None:
        text = _text(subject(r) if subject is not None else r.facts.message.get("text"))
        found = r.s.matches[nid] = matcher.matches(text, r.normalised(text))
        if found:  # (a copy: the state's list is its holder's to change)
            r.lines.append((node, describe, tuple(found)))
        else:
            r.lines.append(none_matched)
        if then is not None:
            return _skip_to(r, tests, after, 0, found)
        return whens[found[0]] if found else otherwise

    return match


def _match_case(node: Node, a: ir.MatchCaseArgs, program: Program) -> Step:
    match_id, index = a.match, a.index
    hit = node.edges["then"]
    tests, after = _when_tests(program, match_id)

    def match_case(r: RunContext) -> str | None:
        found = r.s.matches.get(match_id, ())
        if index in found:
            return hit
        return _skip_to(r, tests, after, index + 1, found)

    return match_case


def _when_tests(program: Program, match_id: str) -> tuple[list[str], str]:
    """The membership tests of a `match keywords` step, one per `when` in order, and the node
    after the last (cached on the program: each test's step needs them)."""
    cache: dict[str, tuple[list[str], str]] = program.run_cache.setdefault("when_tests", {})
    if match_id in cache:
        return cache[match_id]
    nodes = program.graph.nodes
    tests: list[str] = []
    position = nodes[match_id].edges["next"]
    while isinstance(args := nodes[position].args, ir.MatchCaseArgs) and args.match == match_id:
        tests.append(position)
        position = nodes[position].edges["else"]
    cache[match_id] = (tests, position)
    return tests, position


def _skip_to(r: RunContext, tests: list[str], after: str, start: int, found: Sequence[int]) -> str:
    """The next `when` test from `start` whose `when` matched (`found`, ascending), else the
    node after the tests. The tests passed over are recorded in the path as if each had run
    and missed, in one step: a match costs per `when` that matches, not per `when`."""
    at = bisect_left(found, start)
    if at == len(found):
        r.result.path.extend(tests[start:])
        return after
    target = found[at]
    r.result.path.extend(tests[start:target])
    return tests[target]


def _match_none(node: Node, a: ir.MatchNoneArgs) -> Step:
    match_id, none, some = a.match, node.edges["then"], node.edges["else"]

    def match_none(r: RunContext) -> str | None:
        return some if r.s.matches.get(match_id) else none

    return match_none


# ---------------------------------------------------------------------------- facts
def _recognize(node: Node, a: ir.RecognizeArgs) -> Step:
    kinds, e = frozenset(a.kinds), node.edges
    known, unknown = e.get("on:known") or e["next"], e.get("on:unknown") or e["next"]
    known_traced, unknown_traced = _line(node, "known"), _line(node, "unknown")

    def recognize(r: RunContext) -> str | None:
        if kinds.isdisjoint(r.facts.known_by):
            r.lines.append(unknown_traced)
            return unknown
        r.lines.append(known_traced)
        return known

    return recognize


def _schedule(node: Node, a: ir.ScheduleArgs) -> Step:
    schedule_of, e = _name_reader(a.schedule), node.edges

    def schedule(r: RunContext) -> str | None:
        name = schedule_of(r) or ""
        facts = r.facts
        status = facts.schedule_state(name, facts.now)
        r.lines.append((node, _schedule_status, (name, status)))
        return e.get(f"on:{status}") or e["next"]

    return schedule


# ---------------------------------------------------------------------------- hand-offs
def _bot(node: Node, a: ir.BotArgs) -> Step:
    bot_of, seconds = _name_reader(a.bot), a.wait
    line, nid, wait = node.source.line, node.id, _delay(seconds)

    def bot(r: RunContext) -> str | None:
        name = bot_of(r) or ""
        r.effects.append(fx.HandOffToBot(step=nid, line=line, bot=name, wait_seconds=seconds))
        r.lines.append((node, _bot_waits, name))
        r.suspend(node, "bot", wait)
        return None

    return bot


def _data_action(node: Node, a: ir.DataActionArgs, program: Program) -> Step:
    line, nid = node.source.line, node.id
    action_of, timeout = _name_reader(a.action), a.timeout
    inputs_of = {key: _value_reader(tree, program) for key, tree in a.args.items()}

    def data_action(r: RunContext) -> str | None:
        action = action_of(r) or ""
        inputs = {key: read(r) for key, read in inputs_of.items()}
        r.effects.append(
            fx.CallDataAction(
                step=nid, line=line, action=action, inputs=inputs, timeout_seconds=timeout
            )
        )
        r.lines.append((node, "", f"{action}; waits"))
        r.suspend(node, "data", None)
        return None

    return data_action


def _route_agent(node: Node, a: ir.RouteAgentArgs, program: Program) -> Step:
    e, line, nid = node.edges, node.source.line, node.id
    agent_of, seconds, wait = _name_reader(a.agent, program), a.wait, _delay(a.wait)
    dynamic, unknown = a.agent is not None and not a.agent.written, _unknown_target(node)
    from_data = a.agent is not None and a.agent.expr is not None
    unavailable = e.get("on:unavailable") or e["next"]
    waits = f"waits up to {seconds or 0}s"

    def describe(agent: str) -> str:
        return f"agent {agent}; {waits}"

    def route_agent(r: RunContext) -> str | None:
        agent = agent_of(r)
        unknown_agent = agent is not None and not r.facts.known("agent", agent)
        if dynamic and (unknown_agent or (agent is None and from_data)):
            return unknown(r, "agent", agent)  # a known owner the CRM named, but not ours
        last = agent is None  # `route to last agent`, or a param naming no agent
        if last:
            agent = r.facts.conversation.get("last_agent")
            if not agent:
                r.lines.append((node, "", "no last agent"))
                return unavailable
        r.effects.append(
            fx.RouteToAgent(step=nid, line=line, agent=agent, last_agent=last, wait_seconds=seconds)
        )
        r.lines.append((node, describe, agent))
        r.suspend(node, "agent", wait)
        return None

    return route_agent


def _route_queue(node: Node, a: ir.RouteQueueArgs, program: Program) -> Step:
    line, nid = node.source.line, node.id
    queue_of, language_of = _name_reader(a.queue, program), _name_reader(a.language, program)
    required = [(_name_reader(q.skill, program), q.min) for q in a.skills]
    preferred = [(_name_reader(p.agent, program), p.score) for p in a.preferred]
    unknown = _unknown_target(node)
    # the targets named by data, checked against the deployment as the route runs: the queue
    # and the language as read for the route, then the skills' and agents' names
    queue_checked = a.queue is not None and not a.queue.written
    language_checked = a.language is not None and not a.language.written
    targets: list[tuple[str, Callable[[RunContext], str | None]]] = [
        (kind, _name_reader(ref, program))
        for kind, ref in (
            *(("skill", q.skill) for q in a.skills),
            *(("agent", p.agent) for p in a.preferred),
        )
        if ref is not None and not ref.written
    ]
    priority_of = program.expr(a.priority) if a.priority is not None else None
    prefer_last, timeout, wait = a.prefer_last, a.timeout, _delay(a.timeout)
    steps = [
        (binder(s.condition, program.expr) if s.condition is not None else None, s.seconds)
        for s in a.agent_steps or ()
    ]
    preferring = sum(1 for s in a.agent_steps or () if s.condition is not None)
    stepped = f"; preferred agents: {preferring} step(s)" if preferring else ""

    def describe(routed: tuple[str, dict[str, int | None], float]) -> str:
        queue, skills, priority = routed
        skill_text = ", ".join(skills) or "no skills"
        return f"queue {queue} ({skill_text}; priority {priority:g}{stepped})"

    def routed(
        r: RunContext, queue: str, skills: dict[str, int | None], language: str | None, p: float
    ) -> fx.RouteToQueue:
        # not validated: each part is typed by the compiled graph or by the run (`_name_reader`
        # gives text), and the effect is validated nowhere else between here and
        # the ACD (tests/runtime/test_route_effect.py checks it against the validated one)
        return fx.RouteToQueue.trusted(
            nid,
            line,
            queue,
            [{"skill": k, "min": v} for k, v in skills.items()],
            language,
            float(p),  # (a priority read back from a stored state may be an int)
            [{"agent": agent_of(r), "score": score} for agent_of, score in preferred]
            if preferred
            else [],
            prefer_last,
            timeout,
            [
                {"condition": canonical(bind(r)) if bind else None, "seconds": seconds}
                for bind, seconds in steps
            ]
            if steps
            else [],
        )

    def route_queue(r: RunContext) -> str | None:
        interaction = r.s.interaction
        skills = dict(interaction.skills)
        for skill_of, minimum in required:
            skills[skill_of(r) or ""] = minimum
        named_language = language_of(r)
        language = named_language or interaction.language
        priority = interaction.priority
        if priority_of is not None:
            priority = float(_number(priority_of(r) or 0))
        named_queue = queue_of(r)
        queue = named_queue or ""
        known = r.facts.known
        if queue_checked and (named_queue is None or not known("queue", named_queue)):
            return unknown(r, "queue", named_queue)
        if (
            language_checked
            and named_language is not None
            and not known("language", named_language)
        ):
            return unknown(r, "language", named_language)
        for kind, name_of in targets:
            name = name_of(r)
            if (name is None and kind == "skill") or (name is not None and not known(kind, name)):
                return unknown(r, kind, name)
        r.effects.append(routed(r, queue, skills, language, priority))
        r.lines.append((node, describe, (queue, skills, priority)))  # (`skills` is this run's)
        if wait is not None:
            r.suspend(node, "queue", wait)
        else:
            r.finish(node, "routed", f"routed to {queue}")
        return None

    return route_queue


def _keep_waiting(node: Node, a: ir.KeepWaitingArgs, program: Program) -> Step:
    """`keep waiting`: the route to queue whose timeout passed, again; the engine and the ACD
    keep the conversation's place and wait in that queue."""
    route = program.graph.nodes[a.route]
    if not isinstance(route.args, ir.RouteQueueArgs):
        raise ir.GraphError(f"node {node.id}: keep waiting names {a.route}, not a route to queue")
    return _route_queue(route, route.args, program)
