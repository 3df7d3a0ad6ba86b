"""Interpreter speed: flows/messaging.flow against a hand-written function, and keyword scaling.

1. A fixed mix of events (new unknown and known customers, ongoing threads with a last agent,
   bot escalations whose text picks skills and language) runs through the interpreter and
   through `hand_written`, a plain Python function that makes the same decisions and returns
   the same effects; the two are checked to agree before they are timed. Reported: events per
   second each, and the ratio (target: interpreter within 1.5x).
2. One `match keywords` step with 10, 1,000 and 10,000 keywords on the same messages: cost per
   message and the ratio to 10 keywords (target: 10,000 within 1.3x).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.interpreter_floor import mix_floor
from flowlang.project import load_project
from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import run
from flowlang.runtime.keywords import KeywordMatcher
from flowlang.runtime.program import Program
from flowlang.runtime.state import Facts, FlowState, Trigger

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEXTS = [
    "Hi, why are there new fees on my card?",
    "I want a loan for a new car",
    "ローンについて教えてください",
    "Quiero una tarjeta nueva",
    "Complaint: I am #nothappy with the refund",
    "hello",
]


def _facts(text: str, known: bool, last_agent: str | None) -> Facts:
    return Facts(
        now=NOW,
        message={"text": text, "channel": "whatsapp", "kind": "message"},
        customer={"known": known, "name": "Ana" if known else None},
        conversation={"ongoing": last_agent is not None, "last_agent": last_agent},
        window={"open": True},
        known_by=frozenset({"phone"}) if known else frozenset(),
        schedule_state=lambda _name, _now: "open",
    )


def build_mix(program: Program) -> list[tuple[FlowState, Trigger, Facts]]:
    """(state, trigger, facts) cases; escalations start from a state waiting on the bot."""
    cases: list[tuple[FlowState, Trigger, Facts]] = []
    for index, text in enumerate(TEXTS):
        cases.append((FlowState(), Trigger(kind="message", text=text), _facts(text, False, None)))
        cases.append(
            (
                FlowState(),
                Trigger(kind="message", text=text),
                _facts(text, True, "ana" if index % 2 else None),
            )
        )
        waiting = run(
            program, FlowState(), Trigger(kind="message", text=text), _facts(text, True, None)
        ).state
        cases.append(
            (
                waiting,
                Trigger(kind="bot", outcome="escalate", intent="fees"),
                _facts(text, True, None),
            )
        )
    return cases


# ----------------------------------------------------------------------------- hand-written
_SKILLS = [
    (("loan", "mortgage", "préstamo", "ローン"), "Loans"),
    (("card", "tarjeta", "カード"), "Cards"),
    (("fee", "charge", "refund"), "Billing"),
]


def hand_written(state: FlowState, trigger: Trigger, facts: Facts) -> list[Any]:
    """messaging.flow's decisions written by hand, returning the same effects."""
    customer, conversation = facts.customer, facts.conversation
    if trigger.kind == "message":
        if not facts.known_by:
            text = "Welcome to GBank! To help you faster, what is your account number?"
            return [
                fx.SendReply(
                    step="task:identify_customer/0", line=24, content={"kind": "text", "text": text}
                ),
                fx.StartTimer(
                    step="task:identify_customer/0",
                    line=24,
                    timer="task:identify_customer/0#1",
                    at=facts.now + timedelta(minutes=10),
                ),
            ]
        effects: list[Any] = [
            fx.LogMessage(step="start/0/on:known/0", line=47, message="returning customer")
        ]
        if conversation.get("ongoing") and conversation.get("last_agent"):
            effects += [
                fx.RouteToAgent(
                    step="start/1/if0/0",
                    line=52,
                    agent=conversation["last_agent"],
                    last_agent=True,
                    wait_seconds=300,
                ),
                fx.StartTimer(
                    step="start/1/if0/0",
                    line=52,
                    timer="start/1/if0/0#1",
                    at=facts.now + timedelta(minutes=5),
                ),
            ]
            return effects
        return [
            *effects,
            fx.HandOffToBot(step="self_service/0", line=68, bot="FAQ Bot", wait_seconds=900),
            fx.StartTimer(
                step="self_service/0",
                line=68,
                timer="self_service/0#1",
                at=facts.now + timedelta(minutes=15),
            ),
        ]
    text = _fold(facts.message["text"])
    words = text.replace("?", " ").replace(",", " ").split()
    skills: list[str] = []
    for keywords, skill in _SKILLS:
        if any(
            any(w.startswith(k) for w in words) or (not k.isascii() and k in text) for k in keywords
        ):
            skills.append(skill)
    priority = 0.0
    if any(w in ("#nothappy", "complaint", "complaint:", "unhappy") for w in words):
        skills.append("Complaints")
        priority += 10
    if any(k in text for k in ("ローン", "カード", "口座")):
        language = "ja"
    elif any(w in ("prestamo", "tarjeta", "cuenta") for w in words):
        language = "es"
    else:
        language = "en"
    name = customer.get("name") or "for your message"
    return [
        fx.SetData(
            step="self_service/0/on:escalate/0",
            line=73,
            scope="conversation",
            key="intent",
            value=trigger.intent,
        ),
        fx.SendReply(
            step="routing/0",
            line=103,
            guard={"action": "skip"},
            content={"kind": "text", "text": f"Thanks {name}! An agent will reply here shortly."},
        ),
        fx.RouteToQueue(
            step="routing/1",
            line=104,
            queue="Retail Banking",
            skills=[{"skill": s, "min": None} for s in skills],
            language=language,
            priority=priority,
            prefer_last_agent=True,
            timeout_seconds=1800,
        ),
        fx.StartTimer(
            step="routing/1", line=104, timer="routing/1#2", at=facts.now + timedelta(minutes=30)
        ),
    ]


def _fold(text: str) -> str:
    from flowlang.runtime.keywords import normalise

    return normalise(text)


def _comparable(effects: list[Any]) -> list[Any]:
    return [e.model_dump(exclude={"step", "line", "timer"}) for e in effects]


def _time(fn: Callable[[], object], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def messaging_program() -> Program:
    """flows/messaging.flow with the example deployment, ready to run."""
    project, ws = load_project(
        ROOT / "flows" / "messaging.flow", ROOT / "examples" / "deployment.yaml"
    )
    assert project is not None, ws.diagnostics
    return project.program


def check_the_comparisons(program: Program) -> int:
    """Fail unless, on every event of the mix, `hand_written` returns the interpreter's effects
    and the straight-line floor its whole result (state, effects, path, trace); the number of
    events checked."""
    cases, floor = build_mix(program), mix_floor(program)
    for state, trigger, facts in cases:
        ours = run(program, state, trigger, facts)
        by_hand = _comparable(hand_written(state, trigger, facts))
        assert _comparable(ours.effects) == by_hand, (
            f"hand_written differs for {trigger} / {facts.message}:\n{ours.effects}\n{by_hand}"
        )
        straight = floor(state, trigger, facts)
        assert (ours.state, ours.effects, ours.path, ours.lines) == (
            straight.state,
            straight.effects,
            straight.path,
            straight.lines,
        ), f"the floor differs from the interpreter for {trigger.kind} {facts.message}"
    return len(cases)


def interpreter_vs_hand_written(program: Program) -> None:
    cases = build_mix(program)
    rounds = 200

    def interpreted() -> None:
        for _ in range(rounds):
            for state, trigger, facts in cases:
                run(program, state, trigger, facts)

    def by_hand() -> None:
        for _ in range(rounds):
            for state, trigger, facts in cases:
                hand_written(state, trigger, facts)

    events = rounds * len(cases)
    t_interp, t_hand = _time(interpreted), _time(by_hand)
    print(f"messaging.flow, {len(cases)} event kinds x {rounds} (outcomes checked equal)")
    print(
        f"  interpreter   {events / t_interp:>10,.0f} events/s  {t_interp / events * 1e6:7.1f} µs"
    )
    print(f"  hand-written  {events / t_hand:>10,.0f} events/s  {t_hand / events * 1e6:7.1f} µs")
    print(f"  ratio interpreter / hand-written: {t_interp / t_hand:.2f}x (target <= 1.5x)")


def against_the_floor(program: Program) -> None:
    """The mix and its escalations: the interpreter, the straight-line floor, and by hand."""
    cases, floor = build_mix(program), mix_floor(program)
    rounds = 300

    def timed(fn: Callable[[FlowState, Trigger, Facts], object], events: list[Any]) -> float:
        def go() -> None:
            for _ in range(rounds):
                for case in events:
                    fn(*case)

        return _time(go) / (rounds * len(events))

    print("the straight-line floor: what a perfect compiler would emit (results checked equal)")
    for title, events in (("whole mix", cases), ("bot escalations", cases[2::3])):
        t_run = timed(lambda s, t, f: run(program, s, t, f), events)
        t_floor, t_hand = timed(floor, events), timed(hand_written, events)
        print(f"  {title} ({len(events)} events x {rounds}), × hand-written")
        print(f"    interpreter          {t_run * 1e6:6.1f} µs  ×{t_run / t_hand:.2f}")
        print(f"    straight-line floor  {t_floor * 1e6:6.1f} µs  ×{t_floor / t_hand:.2f}")
        print(f"    hand-written         {t_hand * 1e6:6.1f} µs")


def keyword_scaling() -> None:
    rng = random.Random(7)
    messages = [
        " ".join(
            rng.choice(
                ["fees", "card", "hello", "loan", "please", "thanks", "account", "why", "my", "the"]
            )
            for _ in range(20)
        )
        for _ in range(200)
    ]
    results = {}
    for count in (10, 1_000, 10_000):
        words = {f"kw{rng.randrange(10**9)}" for _ in range(count - 2)} | {"fee*", "loan"}
        matcher = KeywordMatcher([(sorted(words), [])])
        per = _time(lambda m=matcher: [m.matches(t) for t in messages]) / len(messages)
        results[count] = per
        print(f"  {count:>6,} keywords: {per * 1e6:6.2f} µs per message")
    print(f"  ratio 10,000 / 10 keywords: {results[10_000] / results[10]:.2f}x (target <= 1.3x)")


def main() -> None:
    program = messaging_program()
    check_the_comparisons(program)
    interpreter_vs_hand_written(program)
    against_the_floor(program)
    print("keyword matching, one match step, 20-word messages")
    keyword_scaling()


if __name__ == "__main__":
    main()
