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
from typing import Any, NamedTuple, NoReturn

from flowlang import codes
from flowlang.compiler.ir import Node
from flowlang.errors import FlowError, FlowRuntimeError
from flowlang.runtime import effects as fx
from flowlang.runtime.keywords import normalise
from flowlang.runtime.program import Program
from flowlang.runtime.scope import Scope
from flowlang.runtime.state import Facts, FlowState, Status, Trigger, Waiting, WaitKind
from flowlang.runtime.steps import Step, build_steps

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


Describe = Callable[[Any], str]
Line = tuple[Node | None, str | Describe, Any]
"""One trace line as a run records it: `(node, "", detail)` for a step, `(None, op, detail)`
for a note, or `(node, describe, value)` for a step whose detail is `describe(value)`, written
only when the trace is read (`value` is never changed afterwards: text, numbers, tuples, or a
list nothing changes)."""


@dataclass(slots=True)
class RunResult:
    state: FlowState
    effects: list[Any] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # every node executed, in order
    # the trace as recorded (`Line`); `trace` turns them into TraceSteps
    lines: list[Line] = field(default_factory=list, repr=False)

    @property
    def trace(self) -> list[TraceStep]:
        """What each step did, with its source line (a new list on each read)."""
        return [trace_step(line) for line in self.lines]


def trace_step(line: Line) -> TraceStep:
    """The `TraceStep` of one recorded trace line, its detail written out."""
    node, how, what = line
    if node is None:
        assert isinstance(how, str)
        return TraceStep("-", how, 0, what)
    detail = what if isinstance(how, str) else how(what)
    return TraceStep(node.id, node.op, node.source.line, detail)


class _Failed(FlowError):
    """The run failed; `_fail` has recorded why."""

    def __init__(self) -> None:
        super().__init__("the run failed")


def run(program: Program, state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
    """Advance a conversation's flow by one event; never raises for flow errors.

    A flow error (`FlowRuntimeError`: a value of the wrong type or shape in the flow's own
    expressions, a template that fails to render, FL900) runs the flow's `on error` or fails
    the run at its line. Any other exception is an internal error and is raised.

    `state` is not changed: the result carries a new state.
    """
    return RunContext(program, state, trigger, facts).execute()


class RunContext(Scope):
    """One run: the state being advanced (`s`), what it has produced, and what steps need. It
    is the run's `Scope` too: expressions and templates read the run's names from it."""

    __slots__ = (
        "_answer",
        "_normalised",
        "effects",
        "g",
        "lines",
        "p",
        "prepared",
        "result",
        "trigger",
    )

    def __init__(self, program: Program, state: FlowState, trigger: Trigger, facts: Facts) -> None:
        self.p = program
        self.g = program.graph
        self.prepared = _prepared(program)
        self.s = state  # the caller's until the run starts; then a clone or a fresh state
        self.trigger = trigger
        self.facts = facts
        self.params = program.params(facts.params)
        # `RunResult(state, [], [], [])` without the dataclass's `__init__` (every run makes one)
        result = self.result = _new(RunResult)
        result.state, result.path = state, []
        self.effects: list[Any] = []
        self.lines: list[Line] = []
        result.effects, result.lines = self.effects, self.lines
        self._normalised: tuple[str, str] | None = None
        self._answer: str | None = None  # the customer's answer to the survey that waited

    # ------------------------------------------------------------------ entry points
    def execute(self) -> RunResult:
        start = self._resume_point()
        if start is None:
            return self.result
        self.s.status = "running"
        self.s.position = start
        try:
            self._loop()
        except _Failed:  # `_fail` has recorded why in the result
            return self.result
        return self.result

    def _resume_point(self) -> str | None:
        t = self.trigger
        if t.kind == "event":
            return self._event_entry()
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
        elif node.op == "survey":  # the survey step reads the answer and goes on
            s.waiting = None
            self._answer = t.text
            self._trace(node, "resumed: answer")
            return node.id
        else:
            outcome = self._outcome_of(waiting.kind, node)
        s.waiting = None
        self.lines.append((node, _resumed, outcome))
        self.result.path.append(node.id)
        if outcome in ("routed", "accepted"):
            self.finish(node, "routed", f"{waiting.kind} accepted")
            return None
        edge = node.edges.get(f"on:{outcome}") or node.edges.get("next")
        if node.op == "route_queue" and edge is None:
            self.finish(node, "ended", f"queue {outcome}")
            return None
        return edge

    def _event_entry(self) -> str | None:
        """An `on <event>` block starts; the flow's variables are kept when the conversation
        ran this version before, and whatever the flow waited for is given up."""
        t = self.trigger
        name = str(t.event.get("name"))
        entry = self.g.handlers.get(name)
        if entry is None:
            self._use(self.s.clone())
            self._note("ignored", f"the flow has no 'on {name}'")
            return None
        if self.s.graph_version == self.g.version:
            s = self._use(self.s.clone())
            s.waiting, s.in_error_handler, s.error = None, False, {}
            s.stack.clear()
        else:
            self._fresh_start()
        self.s.event = dict(t.event)
        self._note("event", f"on {name}")
        return entry

    def take_answer(self) -> str | None:
        """The answer a resumed survey step reads (once); None when the step starts."""
        answer, self._answer = self._answer, None
        return answer

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
        self.s = self.result.state = state
        return state

    def _fresh_start(self) -> None:
        # A flow started by `transfer to flow` keeps what the one before built for routing.
        carried = self.s.clone().interaction if len(self.facts.transfers) > 1 else None
        fixed = self.prepared.fixed_variables
        if fixed is not None:
            fresh = self._use(FlowState.fresh(self.g.version, dict(fixed)))
            if carried is not None:
                fresh.interaction = carried
            return
        fresh = self._use(FlowState(graph_version=self.g.version))
        if carried is not None:
            fresh.interaction = carried
        variables = fresh.variables
        for name, spec in self.g.variables.items():
            initial = spec.get("initial")
            variables[name] = self.p.expr(initial)(self) if initial else None

    # ------------------------------------------------------------------ main loop
    def _loop(self) -> None:
        steps, path = self.prepared.steps, self.result.path
        position = self.s.position
        assert position is not None
        while True:
            path.append(position)
            if len(path) > MAX_STEPS:
                self._step_limit()
            try:
                next_position = steps[position](self)
            except FlowRuntimeError as exc:  # the flow's own failure: its `on error` runs
                next_position = self._runtime_error(self.g.nodes[position], exc)
            # Anything else is flowlang's or a plugged-in part's failure, not the flow's: it
            # propagates, and the Engine keeps the event as a dead letter to replay after a fix.
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
        self._fail(hot, codes.STEP_LIMIT, message)

    def _runtime_error(self, node: Node, exc: FlowRuntimeError) -> str | None:
        message = f"{exc} (line {node.source.line})"
        if self.g.on_error is not None and not self.s.in_error_handler:
            self.s.in_error_handler = True
            self.s.error = {"message": str(exc), "code": exc.code, "step": node.id}
            self.effects.append(
                fx.LogMessage(
                    step=node.id, line=node.source.line, message=f"error: {message}; on error runs"
                )
            )
            self._trace(node, f"error: {exc}; going to on error")
            self.s.stack.clear()
            return self.g.on_error
        self._fail(node, exc.code, str(exc))

    def _fail(self, node: Node, code: str, message: str) -> NoReturn:
        self.effects.append(
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

    # ------------------------------------------------------------------ what steps use
    def suspend(self, node: Node, kind: WaitKind, wait: timedelta | None) -> None:
        """Wait for `kind`, for at most `wait` when given (a timer then ends the wait)."""
        s = self.s
        deadline = timer = None
        if wait is not None:
            s.timers += 1
            timer = f"{node.id}#{s.timers}"
            deadline = self.facts.now + wait
            self.effects.append(
                fx.StartTimer(step=node.id, line=node.source.line, timer=timer, at=deadline)
            )
        s.waiting = Waiting(kind, node.id, deadline, timer)
        s.position = node.id
        s.status = "waiting"

    def finish(self, node: Node, status: Status, reason: str | None) -> None:
        """End the run: the flow ended or was routed."""
        self.s.status = status
        self.s.ended_reason = reason
        self.s.waiting = None
        self.s.position = node.id

    def normalised(self, text: str) -> str:
        """The normalised text, computed once per run (match steps usually read the same)."""
        if self._normalised is None or self._normalised[0] != text:
            self._normalised = (text, normalise(text))
        return self._normalised[1]

    def _trace(self, node: Node, detail: str = "") -> None:
        self.lines.append((node, "", detail))

    def _note(self, op: str, detail: str) -> None:
        self.lines.append((None, op, detail))


_new = object.__new__


def _resumed(outcome: str) -> str:
    return f"resumed: {outcome}"


class _Prepared(NamedTuple):
    """What runs of one program share, worked out on its first run."""

    steps: dict[str, Step]
    # a new conversation's variables, when every initial value is a constant
    fixed_variables: dict[str, Any] | None


def _prepared(program: Program) -> _Prepared:
    prepared: _Prepared | None = program.run_cache.get("prepared")
    if prepared is None:
        prepared = program.run_cache["prepared"] = _Prepared(
            build_steps(program), _fixed_variables(program)
        )
    return prepared


def _fixed_variables(program: Program) -> dict[str, Any] | None:
    fixed: dict[str, Any] = {}
    for name, spec in program.graph.variables.items():
        initial = spec.get("initial")
        if initial is None:
            fixed[name] = None
        elif set(initial) == {"lit"} and isinstance(initial["lit"], str | int | float | None):
            fixed[name] = initial["lit"]
        else:
            return None
    return fixed
