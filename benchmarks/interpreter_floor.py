"""What any flow interpreter would cost at best: messaging.flow's paths written out as the
straight-line code a perfect compiler would emit for them (a new conversation from an unknown or
a known customer, and a bot escalation).

It keeps everything `run` gives a host (a cloned resumable `FlowState`, the path, the trace
lines, the same effects, the same compiled keyword matchers and reply template) but pays no
dispatch at all: no step table, no handler calls, no expression lookups by tree. It is checked
to give exactly what `run` gives before it is timed. Its ratio to `hand_written` is the lowest
ratio a compile-to-Python backend could reach on these events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flowlang.compiler.ir import Node
from flowlang.runtime import effects as fx
from flowlang.runtime.evaluate import _text
from flowlang.runtime.interpreter import RunResult
from flowlang.runtime.keywords import normalise
from flowlang.runtime.program import Program
from flowlang.runtime.scope import Scope
from flowlang.runtime.state import Facts, FlowState, Frame, Trigger, Waiting, WaitKind
from flowlang.runtime.steps import _summary

Floor = Callable[[FlowState, Trigger, Facts], RunResult]


def mix_floor(program: Program) -> Floor:
    """The whole benchmark mix: new conversations and bot escalations, as straight code."""
    new, escalate = new_conversation_floor(program), escalation_floor(program)

    def either(state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
        return (
            new(state, trigger, facts)
            if trigger.kind == "message"
            else escalate(state, trigger, facts)
        )

    return either


def new_conversation_floor(program: Program) -> Floor:
    """A first message through state start: recognise, identify or go back to the last agent,
    check the schedule, hand off to the bot."""
    graph, params = program.graph, program.params({})
    nodes = graph.nodes
    recognize, known_log, returning = (
        nodes[n] for n in ("start/0", "start/0/on:known/0", "start/1")
    )
    call, has_phone, ask = (
        nodes[n]
        for n in ("start/0/on:unknown/0", "task:identify_customer/0", "task:identify_customer/1")
    )
    last_agent, schedule, to_self_service, bot = (
        nodes[n] for n in ("start/1/if0/0", "start/2", "start/2/on:open/0", "self_service/0")
    )
    phone_is_set = program.expr(has_phone.args["conditions"][0])
    ongoing_with_agent = program.expr(returning.args["conditions"][0])
    question = {"kind": "text", "text": ask.args["prompt"]["text"]}
    asked = f"asks {_summary(question)}; waits"
    kinds = frozenset(recognize.args["kinds"])
    bot_name, hours = params["faq_bot"], params["hours"]

    def wait(
        s: FlowState, result: RunResult, node: Node, kind: WaitKind, now: datetime, seconds: int
    ) -> None:
        s.timers += 1
        timer, deadline = f"{node.id}#{s.timers}", now + timedelta(seconds=seconds)
        result.effects.append(
            fx.StartTimer(step=node.id, line=node.source.line, timer=timer, at=deadline)
        )
        s.waiting = Waiting(kind, node.id, deadline, timer)
        s.position, s.status = node.id, "waiting"

    def start(state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
        s = FlowState(graph_version=graph.version, variables={"account_number": None})
        result = RunResult(s)
        lines, path, effects = result.lines, result.path, result.effects
        scope = Scope(s, facts, params)
        s.status, s.position = "running", recognize.id
        path.append(recognize.id)
        if kinds.isdisjoint(facts.known_by):
            lines.append((recognize, "", "unknown"))
            path.append(call.id)
            s.stack.append(Frame("identify_customer", call.id))
            lines.append((call, "", "identify_customer"))
            path.append(has_phone.id)
            assert not phone_is_set(scope), "the benchmark's customers give no phone number"
            lines.append((has_phone, "", "else"))
            path.append(ask.id)
            effects.append(fx.SendReply(step=ask.id, line=ask.source.line, content=question))
            lines.append((ask, "", asked))
            wait(s, result, ask, "answer", facts.now, 600)
            return result
        lines.append((recognize, "", "known"))
        path.append(known_log.id)
        effects.append(
            fx.LogMessage(
                step=known_log.id, line=known_log.source.line, message="returning customer"
            )
        )
        lines.append((known_log, "", "returning customer"))
        path.append(returning.id)
        if ongoing_with_agent(scope):
            lines.append((returning, "", "condition 1 true"))
            path.append(last_agent.id)
            agent = facts.conversation["last_agent"]
            effects.append(
                fx.RouteToAgent(
                    step=last_agent.id,
                    line=last_agent.source.line,
                    agent=agent,
                    last_agent=True,
                    wait_seconds=300,
                )
            )
            lines.append((last_agent, "", f"agent {agent}; waits up to 300s"))
            wait(s, result, last_agent, "agent", facts.now, 300)
            return result
        lines.append((returning, "", "else"))
        path.append(schedule.id)
        status = facts.schedule_state(hours, facts.now)
        lines.append((schedule, "", f"{hours}: {status}"))
        path.append(to_self_service.id)
        lines.append((to_self_service, "", "self_service"))
        path.append(bot.id)
        effects.append(
            fx.HandOffToBot(step=bot.id, line=bot.source.line, bot=bot_name, wait_seconds=900)
        )
        lines.append((bot, "", f"bot {bot_name}; waits"))
        wait(s, result, bot, "bot", facts.now, 900)
        return result

    return start


def escalation_floor(program: Program) -> Floor:
    """A bot escalation through states self_service, skills and routing, as straight code."""
    nodes, params = program.graph.nodes, program.params({})
    bot, set_intent, to_skills = (
        nodes[n]
        for n in ("self_service/0", "self_service/0/on:escalate/0", "self_service/0/on:escalate/1")
    )
    skills_match, language_match = nodes["skills/0"], nodes["skills/1"]
    by_skill, by_language = program.matcher(skills_match), program.matcher(language_match)
    tests = [f"skills/0/test{i}" for i in range(4)]
    add_skill = [nodes[f"skills/0/when{i}/0"] for i in range(4)]
    skill_names = [n.args["skill"]["name"] for n in add_skill]
    raise_priority = nodes["skills/0/when3/1"]
    priority_plus_10 = program.expr(raise_priority.args["value"])
    set_language = [
        nodes["skills/1/when0/0"],
        nodes["skills/1/when1/0"],
        nodes["skills/1/otherwise/0"],
    ]
    languages = [n.args["value"]["lit"] for n in set_language]
    to_routing, thanks, route = nodes["skills/2"], nodes["routing/0"], nodes["routing/1"]
    thanks_text = program.template_text(thanks.args["content"]["text"])
    assert thanks_text is not None
    queue = params["main_queue"]

    def escalate(state: FlowState, trigger: Trigger, facts: Facts) -> RunResult:
        s = state.clone()
        result = RunResult(s)
        lines, path, effects = result.lines, result.path, result.effects
        scope = Scope(s, facts, params)
        get = scope.get
        s.status, s.position = "running", bot.id
        s.bot = {"intent": trigger.intent, "slots": dict(trigger.slots), "outcome": trigger.outcome}
        s.waiting = None
        lines.append((bot, "", "resumed: escalate"))
        path.append(bot.id)

        path.append(set_intent.id)
        value = _member(get("bot"), "intent")
        s.interaction.conversation_data["intent"] = value
        effects.append(
            fx.SetData(
                step=set_intent.id,
                line=set_intent.source.line,
                scope="conversation",
                key="intent",
                value=value,
            )
        )
        lines.append((set_intent, "", f"conversation data intent = {value!r}"))
        path.append(to_skills.id)
        lines.append((to_skills, "", "skills"))

        path.append(skills_match.id)
        text = _text(_member(get("message"), "text"))
        norm = normalise(text)
        found = s.matches[skills_match.id] = by_skill.matches(text, norm)
        lines.append((skills_match, "", _matched(by_skill.labels, found)))
        for index in range(4):
            path.append(tests[index])
            if index in found:
                path.append(add_skill[index].id)
                s.interaction.skills[skill_names[index]] = None
                lines.append((add_skill[index], "", f"skill {skill_names[index]}"))
                if index == 3:
                    path.append(raise_priority.id)
                    s.interaction.priority = float(priority_plus_10(scope) or 0)
                    lines.append((raise_priority, "", f"priority {s.interaction.priority:g}"))
        path.append("skills/0/none")

        path.append(language_match.id)
        found = s.matches[language_match.id] = by_language.matches(text, norm)
        lines.append((language_match, "", _matched(by_language.labels, found)))
        chosen = found[0] if found else 2
        path.append(set_language[chosen].id)
        s.interaction.language = languages[chosen]
        lines.append((set_language[chosen], "", f"language {languages[chosen]}"))
        path.append(to_routing.id)
        lines.append((to_routing, "", "routing"))

        path.append(thanks.id)
        content = {"kind": "text", "text": thanks_text.render(get)}
        effects.append(
            fx.SendReply(
                step=thanks.id, line=thanks.source.line, content=content, guard={"action": "skip"}
            )
        )
        lines.append((thanks, "", _summary(content)))

        path.append(route.id)
        interaction = s.interaction
        skills = dict(interaction.skills)
        effects.append(
            fx.RouteToQueue(
                step=route.id,
                line=route.source.line,
                queue=queue,
                skills=[{"skill": k, "min": v} for k, v in skills.items()],
                language=interaction.language,
                priority=interaction.priority,
                prefer_last_agent=True,
                timeout_seconds=1800,
            )
        )
        skill_text = ", ".join(skills) or "no skills"
        lines.append(
            (route, "", f"queue {queue} ({skill_text}; priority {interaction.priority:g})")
        )
        s.timers += 1
        timer, deadline = f"{route.id}#{s.timers}", facts.now + timedelta(seconds=1800)
        effects.append(
            fx.StartTimer(step=route.id, line=route.source.line, timer=timer, at=deadline)
        )
        s.waiting = Waiting("queue", route.id, deadline, timer)
        s.position, s.status = route.id, "waiting"
        return result

    return escalate


def _member(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _matched(labels: list[str], found: list[int]) -> str:
    return "matched " + ", ".join([labels[i] for i in found]) if found else "no keyword matched"
