"""The Engine around the interpreter: what one message costs as work accumulates.

1. Messages accumulating: a one-decision flow (`route to queue "Retail"`), each message a new
   customer, one agent with a capacity of 10,000 who never completes (in-memory store).
   Reported: the median cost of a message among the first hundred (the baseline, same run)
   and among the hundred ending at the 4,000th, and the ratio (goal: at most 1.2x, flat);
   the same without an agent (nothing is routed) for reference.

Each figure is the minimum over interleaved rounds (a fresh engine each) of the medians.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.events import InboundEvent
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore
from tests.runtime.helpers import engine_of, program

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROUNDS = 3


def _one_decision_engine(with_agent: bool) -> Engine:
    agents = (
        [AgentProfile("ana", frozenset({"Retail"}), {}, frozenset(), {"message": 10_000}, True)]
        if with_agent
        else []
    )
    acd = SkillsAcd([QueueSettings("Retail")], agents)
    return engine_of(program('route to queue "Retail"'), store=MemoryStore(), acd=acd)


def _messages(count: int) -> list[InboundEvent]:
    return [
        InboundEvent(
            event_id=f"m{i}",
            channel="whatsapp",
            sender_id=f"4477{i:08d}",
            text="hi",
            timestamp=T0 + timedelta(seconds=i),
        )
        for i in range(count)
    ]


def _costs(engine: Engine, events: list[InboundEvent]) -> list[float]:
    costs = []
    for event in events:
        start = time.perf_counter()
        engine.handle(event)
        costs.append(time.perf_counter() - start)
    return costs


def accumulating(count: int = 4_000) -> None:
    events = _messages(count)
    first: dict[bool, list[float]] = {True: [], False: []}
    last: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(ROUNDS):
        for with_agent in (True, False):
            costs = _costs(_one_decision_engine(with_agent), events)
            first[with_agent].append(statistics.median(costs[:100]) * 1e6)
            last[with_agent].append(statistics.median(costs[-100:]) * 1e6)
    print(f"engine.handle as messages accumulate ({count:,} new customers, one-decision flow)")
    for with_agent, title in ((True, "one agent, capacity 10,000"), (False, "no agent")):
        a, b = min(first[with_agent]), min(last[with_agent])
        goal = "  (goal <= 1.2x)" if with_agent else ""
        print(
            f"  {title:<27} first 100: {a:6.1f} µs  at {count:,}: {b:6.1f} µs"
            f"  ratio {b / a:4.2f}x{goal}"
        )


def main() -> None:
    accumulating()


if __name__ == "__main__":
    main()
