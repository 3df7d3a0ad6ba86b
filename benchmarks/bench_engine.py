"""The Engine around the interpreter: what one message costs as work accumulates.

1. Messages accumulating: a one-decision flow (`route to queue "Retail"`), each message a new
   customer, one agent with a capacity of 10,000 who never completes (in-memory store).
   Reported: the median cost of a message among the first hundred (the baseline, same run)
   and among the hundred ending at the 4,000th, and the ratio (goal: at most 1.2x, flat);
   the same without an agent (nothing is routed) for reference.
2. The Engine around the interpreter: the same flow and messages through `engine.handle`
   (in-memory store, the agent taking every conversation) against the interpreter's `run` on
   the same messages (a new conversation each), interleaved rounds. Reported: the median
   message's microseconds each (a shared machine's pauses land in the mean) and the ratio
   (goal: at most 4x).

Each figure is the minimum over interleaved rounds (a fresh engine each) of the medians.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.events import InboundEvent
from flowlang.runtime.engine import Engine
from flowlang.runtime.interpreter import run
from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.state import Facts, FlowState, Trigger
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


def engine_against_interpreter(count: int = 2_000) -> None:
    events = _messages(count)
    flow = program('route to queue "Retail"')
    facts = Facts(
        now=T0,
        message={"text": "hi", "channel": "whatsapp", "kind": "message"},
        customer={"known": False, "new": True},
        conversation={"ongoing": False, "last_agent": None, "messages": 0},
        window={"open": True},
    )
    engine_us: list[float] = []
    run_us: list[float] = []
    for _ in range(ROUNDS):  # the median message of each, a round of both at a time
        engine_us.append(statistics.median(_costs(_one_decision_engine(True), events)) * 1e6)
        costs = []
        for event in events:
            trigger = Trigger(kind="message", text=event.text)
            start = time.perf_counter()
            run(flow, FlowState(), trigger, facts)
            costs.append(time.perf_counter() - start)
        run_us.append(statistics.median(costs) * 1e6)
    a, b = min(engine_us), min(run_us)
    print(
        f"engine.handle against the interpreter's run ({count:,} new customers, same flow; "
        "median message, best round)"
    )
    print(f"  interpreter run (baseline)  {b:6.1f} µs")
    print(f"  engine.handle, in-memory    {a:6.1f} µs  ratio {a / b:5.1f}x  (goal <= 4x)")


def main() -> None:
    accumulating()
    engine_against_interpreter()


if __name__ == "__main__":
    main()
