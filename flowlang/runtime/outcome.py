"""What handling one event did: the value every Engine method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowlang.runtime.agent_rules import Refusal
from flowlang.runtime.delivery import FailedSend
from flowlang.runtime.interpreter import RunResult, TraceStep
from flowlang.runtime.ports import Delivery, RoutingNotice


@dataclass
class _OutcomeFields:
    """`Outcome`'s fields."""

    event: Any
    conversation_id: str | None = None
    trace: list[TraceStep] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    effects: list[Any] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    failed_sends: list[FailedSend] = field(default_factory=list)  # allowed, but not delivered
    notices: list[RoutingNotice] = field(default_factory=list)
    duplicate: bool = False
    dead_lettered: bool = False
    note: str = ""
    refusal: Refusal | None = None  # an agent action refused: nothing was sent or changed


_new = object.__new__


class Outcome(_OutcomeFields):
    """What handling one event did. The flow's runs are added whole (`add_run`): their trace
    lines become `TraceStep`s when `trace` is first read (a host that never reads it pays
    nothing for them)."""

    _trace: list[TraceStep]
    _runs: list[RunResult]

    @classmethod
    def of(cls, event: Any, conversation_id: str | None = None) -> Outcome:
        """`Outcome(event=event, conversation_id=conversation_id)` without the dataclass's
        `__init__` (its factories and the trace's setter), which costs twice as much: every
        event makes one. Every field is set as `__init__` sets it (a test compares the two)."""
        outcome = _new(cls)
        outcome.event, outcome.conversation_id = event, conversation_id
        outcome._trace, outcome._runs = [], []
        outcome.path, outcome.effects, outcome.deliveries = [], [], []
        outcome.failed_sends, outcome.notices = [], []
        outcome.duplicate = outcome.dead_lettered = False
        outcome.note, outcome.refusal = "", None
        return outcome

    @property
    def trace(self) -> list[TraceStep]:
        """What each step of the flow's runs did, in order."""
        if self._runs:
            for result in self._runs:
                self._trace.extend(result.trace)
            self._runs.clear()
        return self._trace

    @trace.setter
    def trace(self, steps: list[TraceStep]) -> None:
        self._trace, self._runs = steps, []

    def add_run(self, result: RunResult) -> None:
        """A run of the flow: its trace, path and effects are the outcome's too."""
        self._runs.append(result)
        self.path.extend(result.path)
        self.effects.extend(result.effects)

    @property
    def blocked(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status in ("blocked", "skipped", "recorded")]
