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
3. The garbage collector over a long run: 20,000 new customers through `engine.handle` (the
   in-memory store and the ACD's state growing all along), with Python's default collector
   with the engine process's settings (`flowlang/service/collector.py`: larger thresholds,
   what was loaded frozen) and with the collector off (the floor), interleaved rounds.
   Reported: each message's CPU time (a shared machine's preemptions are not the
   collector's), mean, median, p99 and max, the median over rounds; each mean against the
   floor's (goal: the service's at most 1.1x).

Each figure is the minimum over interleaved rounds (a fresh engine each) of the medians.
"""

from __future__ import annotations

import gc
import statistics
import time
from datetime import UTC, datetime, timedelta

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.events import InboundEvent
from flowlang.runtime.engine import Engine
from flowlang.runtime.interpreter import run
from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.state import Facts, FlowState, Trigger
from flowlang.service import collector
from tests.runtime.helpers import engine_of, program

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROUNDS = 3


def _one_decision_engine(with_agent: bool, capacity: int = 10_000) -> Engine:
    agents = (
        [AgentProfile("ana", frozenset({"Retail"}), {}, frozenset(), {"message": capacity}, True)]
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


def _cpu_costs(engine: Engine, events: list[InboundEvent]) -> list[float]:
    costs = []
    clock = time.thread_time
    for event in events:
        start = clock()
        engine.handle(event)
        costs.append(clock() - start)
    return costs


Collector = str  # "defaults", "service" or "off"
COLLECTORS: dict[Collector, str] = {
    "defaults": "Python's defaults",
    "service": "the service's settings",
    "off": "collector off (floor)",
}


def _with_collector(setting: Collector, events: list[InboundEvent]) -> list[float]:
    """Each message's CPU time through a fresh engine, the collector as Python's defaults, as
    the engine process sets it once loaded, or off; Python's collector restored after."""
    gc.collect()
    engine = _one_decision_engine(True, capacity=len(events))
    thresholds = gc.get_threshold()
    if setting == "service":
        collector.tune()
        collector.freeze_loaded()
    elif setting == "off":
        gc.disable()
    else:
        gc.set_threshold(700, 10, 10)  # Python's defaults
    try:
        return _cpu_costs(engine, events)
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        del engine
        gc.collect()


def collector_pauses(count: int = 20_000) -> None:
    events = _messages(count)
    figures: dict[Collector, list[tuple[float, float, float, float]]] = {c: [] for c in COLLECTORS}
    order = list(COLLECTORS)
    for round_ in range(ROUNDS):
        for setting in order[round_ % 3 :] + order[: round_ % 3]:  # each first in turn
            costs = sorted(_with_collector(setting, events))
            figures[setting].append(
                (
                    statistics.fmean(costs) * 1e6,
                    costs[len(costs) // 2] * 1e6,
                    costs[int(len(costs) * 0.99)] * 1e6,
                    costs[-1] * 1e3,
                )
            )
    print(
        f"the garbage collector over {count:,} new customers (store growing; CPU time a "
        "message, median over rounds)"
    )
    means = {}
    for setting, title in COLLECTORS.items():
        mean, median, p99, most = (
            statistics.median(f[i] for f in figures[setting]) for i in range(4)
        )
        means[setting] = mean
        print(
            f"  {title:<23} mean {mean:6.1f} µs  median {median:6.1f} µs  p99 {p99:6.1f} µs"
            f"  max {most:6.1f} ms"
        )
    floor = means["off"]
    print(
        f"  mean against the floor: defaults {means['defaults'] / floor:4.2f}x, "
        f"service {means['service'] / floor:4.2f}x  (goal: service <= 1.1x)"
    )


def main() -> None:
    accumulating()
    engine_against_interpreter()
    collector_pauses()


if __name__ == "__main__":
    main()
