"""What handling one event did: the value every Engine method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowlang.runtime.agent_rules import Refusal
from flowlang.runtime.delivery import FailedSend
from flowlang.runtime.interpreter import TraceStep
from flowlang.runtime.ports import Delivery, RoutingNotice


@dataclass
class Outcome:
    """What handling one event did."""

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

    @property
    def blocked(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status in ("blocked", "skipped", "recorded")]
