"""flows/messaging.flow written by hand, the yardstick of the interpreter benchmark.

`by_hand(program)` gives a plain Python function that makes the flow's decisions and returns what
`run` returns: the resumable `FlowState`, the effects, the path and the trace lines. Conditions,
keyword tests and the reply text are written out in Python (no compiled expression, matcher or
template of ours); it looks up only the graph's version and nodes, which a state and a trace
name. It covers the benchmark's events: a first message from an unknown or a known customer, a
returning customer with a last agent, and a bot escalation.

`decisions_only` makes the same decisions and returns the effects alone: no state to resume
from, no path, no trace. It is what `run` would cost if a host needed none of those; the
benchmark reports it beside the main comparison.

Both are checked to agree with the interpreter before anything is timed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import RunResult
from flowlang.runtime.keywords import normalise
from flowlang.runtime.program import Program
from flowlang.runtime.state import Facts, FlowState, Frame, Trigger, Waiting, WaitKind

Run = Callable[[FlowState, Trigger, Facts], RunResult]

QUEUE, BOT, HOURS = "Retail Banking", "FAQ Bot", "Contact Center Hours"
QUESTION = "Welcome to GBank! To help you faster, what is your account number?"
ASKED = f"asks {QUESTION[:57] + '...'!r}; waits"  # a trace shows 60 characters of a text
# (keywords a word starts with, whole words, text anywhere, regex) for each `when` of the skills
# match, with the label its trace line shows and the skill it adds
_SKILL_WHENS = [
    (("loan", "mortgage"), ("prestamo",), ("ローン",), None, "Loans"),
    (("card",), ("tarjeta",), ("カード",), None, "Cards"),
    (("fee", "charge", "refund"), (), (), re.compile("over ?charged"), "Billing"),
    ((), ("#nothappy", "complaint", "unhappy"), (), None, "Complaints"),
]
_SKILL_LABELS = [
    "loan*/mortgage*/préstamo/ローン",
    "card*/tarjeta/カード",
    "fee*/charge*/refund*/over ?charged",
    "#nothappy/complaint/unhappy",
]
_LANGUAGE_LABELS = ["ローン/カード/口座", "préstamo/tarjeta/cuenta"]
_WORD = re.compile(r"[\w#@]+")


def by_hand(program: Program) -> Run:
    """messaging.flow by hand, returning what `run` returns."""
    version, node = program.graph.version, program.graph.nodes

    def run_by_hand(state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
        if trigger.kind == "message" and state.waiting is None:
            return first_message(facts)
        if trigger.kind == "bot" and state.waiting is not None:
            return escalation(state, trigger, facts)
        raise NotImplementedError("the benchmark's mix has no other events")

    def waits(
        s: FlowState, result: RunResult, at: str, kind: WaitKind, facts: Facts, seconds: int
    ) -> None:
        s.timers += 1
        timer, deadline = f"{at}#{s.timers}", facts.now + timedelta(seconds=seconds)
        result.effects.append(
            fx.StartTimer(step=at, line=node[at].source.line, timer=timer, at=deadline)
        )
        s.waiting = Waiting(kind, at, deadline, timer)
        s.position, s.status = at, "waiting"

    def first_message(facts: Facts) -> RunResult:
        s = FlowState.fresh(version, {"account_number": None})
        s.status, s.position = "running", "start/0"
        result = RunResult(s)
        path, lines, effects = result.path, result.lines, result.effects
        path.append("start/0")
        if "platform id" not in facts.known_by and "phone" not in facts.known_by:
            lines.append((node["start/0"], "", "unknown"))
            path += ["start/0/on:unknown/0", "task:identify_customer/0"]
            s.stack.append(Frame("identify_customer", "start/0/on:unknown/0"))
            lines.append((node["start/0/on:unknown/0"], "", "identify_customer"))
            if facts.customer.get("phone") not in (None, ""):
                raise NotImplementedError("the benchmark's customers give no phone number")
            lines.append((node["task:identify_customer/0"], "", "else"))
            path.append("task:identify_customer/1")
            question = {"kind": "text", "text": QUESTION}
            effects.append(fx.SendReply(step="task:identify_customer/1", line=36, content=question))
            lines.append((node["task:identify_customer/1"], "", ASKED))
            waits(s, result, "task:identify_customer/1", "answer", facts, 600)
            return result
        lines.append((node["start/0"], "", "known"))
        path += ["start/0/on:known/0", "start/1"]
        effects.append(
            fx.LogMessage(step="start/0/on:known/0", line=60, message="returning customer")
        )
        lines.append((node["start/0/on:known/0"], "", "returning customer"))
        conversation = facts.conversation
        if conversation.get("ongoing") and conversation.get("last_agent") not in (None, ""):
            lines.append((node["start/1"], "", "condition 1 true"))
            path.append("start/1/if0/0")
            agent = conversation["last_agent"]
            effects.append(
                fx.RouteToAgent(
                    step="start/1/if0/0", line=65, agent=agent, last_agent=True, wait_seconds=300
                )
            )
            lines.append((node["start/1/if0/0"], "", f"agent {agent}; waits up to 300s"))
            waits(s, result, "start/1/if0/0", "agent", facts, 300)
            return result
        lines.append((node["start/1"], "", "else"))
        path += ["start/2", "start/2/on:open/0", "self_service/0"]
        hours = facts.schedule_state(HOURS, facts.now)
        if hours != "open":
            raise NotImplementedError("the benchmark's contact center is open")
        lines.append((node["start/2"], "", f"{HOURS}: open"))
        lines.append((node["start/2/on:open/0"], "", "self_service"))
        effects.append(fx.HandOffToBot(step="self_service/0", line=81, bot=BOT, wait_seconds=900))
        lines.append((node["self_service/0"], "", f"bot {BOT}; waits"))
        waits(s, result, "self_service/0", "bot", facts, 900)
        return result

    def escalation(state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
        if trigger.outcome != "escalate":
            raise NotImplementedError("the benchmark's bot outcomes are escalations")
        s = state.clone()
        s.status, s.waiting = "running", None
        result = RunResult(s)
        path, lines, effects = result.path, result.lines, result.effects
        s.bot = {"intent": trigger.intent, "slots": dict(trigger.slots), "outcome": "escalate"}
        lines.append((node["self_service/0"], "", "resumed: escalate"))
        path += ["self_service/0", "self_service/0/on:escalate/0"]
        intent = trigger.intent
        s.interaction.conversation_data["intent"] = intent
        effects.append(
            fx.SetData(
                step="self_service/0/on:escalate/0",
                line=86,
                scope="conversation",
                key="intent",
                value=intent,
            )
        )
        lines.append(
            (node["self_service/0/on:escalate/0"], "", f"conversation data intent = {intent!r}")
        )
        path += ["self_service/0/on:escalate/1", "skills/0"]
        lines.append((node["self_service/0/on:escalate/1"], "", "skills"))

        text = normalise(facts.message.get("text") or "")
        words = _WORD.findall(text)
        found = _skill_whens(text, words)
        s.matches["skills/0"] = found
        shown = ", ".join(_SKILL_LABELS[i] for i in found)
        lines.append((node["skills/0"], "", f"matched {shown}" if found else "no keyword matched"))
        interaction = s.interaction
        for index in range(4):
            path.append(f"skills/0/test{index}")
            if index in found:
                skill = _SKILL_WHENS[index][4]
                path.append(f"skills/0/when{index}/0")
                interaction.skills[skill] = None
                lines.append((node[f"skills/0/when{index}/0"], "", f"skill {skill}"))
                if skill == "Complaints":
                    path.append("skills/0/when3/1")
                    interaction.priority += 10
                    lines.append(
                        (node["skills/0/when3/1"], "", f"priority {interaction.priority:g}")
                    )
        path += ["skills/0/none", "skills/1"]

        chosen = _language(text, words)
        at = "skills/1/otherwise/0" if chosen is None else f"skills/1/when{chosen}/0"
        s.matches["skills/1"] = [] if chosen is None else [chosen]
        matched = "no keyword matched" if chosen is None else f"matched {_LANGUAGE_LABELS[chosen]}"
        lines.append((node["skills/1"], "", matched))
        interaction.language = ("ja", "es", "en")[2 if chosen is None else chosen]
        path += [at, "skills/2", "routing/0"]
        lines.append((node[at], "", f"language {interaction.language}"))
        lines.append((node["skills/2"], "", "routing"))

        name = facts.customer.get("name") or "for your message"
        thanks = f"Thanks {name}! An agent will reply here shortly."
        effects.append(
            fx.SendReply(
                step="routing/0",
                line=116,
                content={"kind": "text", "text": thanks},
                guard={"action": "skip"},
            )
        )
        lines.append((node["routing/0"], "", repr(thanks)))
        path.append("routing/1")
        skills = list(interaction.skills)
        effects.append(
            fx.RouteToQueue(
                step="routing/1",
                line=117,
                queue=QUEUE,
                skills=[{"skill": skill, "min": None} for skill in skills],
                language=interaction.language,
                priority=interaction.priority,
                prefer_last_agent=True,
                timeout_seconds=1800,
            )
        )
        skill_text = ", ".join(skills) or "no skills"
        summary = f"queue {QUEUE} ({skill_text}; priority {interaction.priority:g})"
        lines.append((node["routing/1"], "", summary))
        waits(s, result, "routing/1", "queue", facts, 1800)
        return result

    return run_by_hand


def decisions_only(state: FlowState, trigger: Trigger, facts: Facts) -> list[Any]:
    """messaging.flow's decisions by hand, returning the effects alone."""
    now, conversation = facts.now, facts.conversation
    if trigger.kind == "message":
        if "platform id" not in facts.known_by and "phone" not in facts.known_by:
            at = "task:identify_customer/1"
            return [
                fx.SendReply(step=at, line=36, content={"kind": "text", "text": QUESTION}),
                fx.StartTimer(step=at, line=36, timer=f"{at}#1", at=now + timedelta(minutes=10)),
            ]
        known = fx.LogMessage(step="start/0/on:known/0", line=60, message="returning customer")
        if conversation.get("ongoing") and conversation.get("last_agent") not in (None, ""):
            at = "start/1/if0/0"
            agent = conversation["last_agent"]
            return [
                known,
                fx.RouteToAgent(step=at, line=65, agent=agent, last_agent=True, wait_seconds=300),
                fx.StartTimer(step=at, line=65, timer=f"{at}#1", at=now + timedelta(minutes=5)),
            ]
        at = "self_service/0"
        return [
            known,
            fx.HandOffToBot(step=at, line=81, bot=BOT, wait_seconds=900),
            fx.StartTimer(step=at, line=81, timer=f"{at}#1", at=now + timedelta(minutes=15)),
        ]
    text = normalise(facts.message.get("text") or "")
    words = _WORD.findall(text)
    found = _skill_whens(text, words)
    skills = [_SKILL_WHENS[index][4] for index in found]
    language = _language(text, words)
    name = facts.customer.get("name") or "for your message"
    return [
        fx.SetData(
            step="self_service/0/on:escalate/0",
            line=86,
            scope="conversation",
            key="intent",
            value=trigger.intent,
        ),
        fx.SendReply(
            step="routing/0",
            line=116,
            content={"kind": "text", "text": f"Thanks {name}! An agent will reply here shortly."},
            guard={"action": "skip"},
        ),
        fx.RouteToQueue(
            step="routing/1",
            line=117,
            queue=QUEUE,
            skills=[{"skill": skill, "min": None} for skill in skills],
            language=("ja", "es", "en")[2 if language is None else language],
            priority=10.0 if 3 in found else 0.0,
            prefer_last_agent=True,
            timeout_seconds=1800,
        ),
        fx.StartTimer(
            step="routing/1",
            line=117,
            timer=f"routing/1#{state.timers + 1}",
            at=now + timedelta(minutes=30),
        ),
    ]


def _skill_whens(text: str, words: list[str]) -> list[int]:
    """Which `when`s of the skills match hit the (normalised) text, in order."""
    return [
        index
        for index, (starts, whole, anywhere, pattern, _skill) in enumerate(_SKILL_WHENS)
        if any(w.startswith(starts) or w in whole for w in words)
        or any(k in text for k in anywhere)
        or (pattern is not None and pattern.search(text) is not None)
    ]


def _language(text: str, words: list[str]) -> int | None:
    """The first `when` of the language match that hits the text, if any."""
    if any(k in text for k in ("ローン", "カード", "口座")):
        return 0
    if any(w in ("prestamo", "tarjeta", "cuenta") for w in words):
        return 1
    return None
