"""What the language server says about flowlang itself: the statements and declarations with a
snippet and a one-line description each (completion and hover), the outcomes each statement
with outcomes handles, and what a deployment entry is (hover on a queue, template, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowlang.durations import format_duration
from flowlang.language.checker import OUTCOMES
from flowlang.language.exprtypes import BUILTINS, FUNCTIONS

if TYPE_CHECKING:
    from flowlang.config import Deployment


@dataclass(frozen=True)
class Keyword:
    """A statement or declaration: what completion inserts (a snippet) and what hover says."""

    label: str
    snippet: str
    doc: str


DECLARATIONS = (
    Keyword("flow", 'flow "${1:Name}"', "The flow's name; the first line of every flow file."),
    Keyword("description", 'description "${1}"', "What the flow is for, shown in reports."),
    Keyword(
        "serve",
        "serve messages on ${1:whatsapp}",
        "The channels and accounts whose conversations this flow handles.",
    ),
    Keyword(
        "threading window",
        "threading window ${1:72h}",
        "How long after its last message a conversation still continues (at most 72h).",
    ),
    Keyword(
        "param",
        "param ${1:name}: ${2:text} = ${3}",
        "A value set per environment in the deployment file (read-only in the flow).",
    ),
    Keyword("var", "var ${1:name}: ${2:text}", "A variable of the conversation, with its type."),
    Keyword("on error", "on error:\n    ${1:pass}", "What runs when a step fails (FL900)."),
    Keyword(
        "task",
        "task ${1:name}:\n    ${2:pass}",
        "Steps called from states with `call task`; may end with an `outcome`.",
    ),
    Keyword(
        "state", "state ${1:name}:\n    ${2:pass}", "A named step of the flow; `start` runs first."
    ),
)

STATEMENTS = (
    Keyword("reply", 'reply "${1}"', "Send a message to the customer (the channel's rules apply)."),
    Keyword("reply template", "reply template ${1}", "Send a deployment template to the customer."),
    Keyword(
        "set", "set ${1:name} to ${2}", "Give a variable, the priority or the language a value."
    ),
    Keyword("add skill", 'add skill "${1}"', "Require a skill of the agent who takes the work."),
    Keyword("remove skill", 'remove skill "${1}"', "No longer require a skill."),
    Keyword(
        "route to queue",
        'route to queue "${1}"',
        "Put the conversation in a queue; the ACD offers it to a matching agent.",
    ),
    Keyword(
        "route to agent",
        'route to agent "${1}"',
        "Offer the conversation to one agent (on unavailable: when they cannot take it).",
    ),
    Keyword(
        "route to last agent",
        "route to last agent wait ${1:5m}:\n    on unavailable:\n        ${2:pass}",
        "Offer the conversation to the agent who last served this customer.",
    ),
    Keyword(
        "hand off to bot",
        'hand off to bot "${1}":\n    on resolved:\n        ${2:end}\n    on escalate:\n'
        "        ${3:pass}",
        "Let a bot talk with the customer; resumes with the bot's outcome.",
    ),
    Keyword(
        "call data action",
        'call data action "${1}" into ${2:result}:\n    on success:\n        ${3:pass}',
        "Ask the host's system (CRM, orders) for data; resumes with its outcome.",
    ),
    Keyword("call task", "call task ${1}", "Run a task, then continue here (or by its outcome)."),
    Keyword(
        "check schedule",
        'check schedule "${1}":\n    on open:\n        ${2:pass}\n'
        "    on closed:\n        ${3:pass}",
        "Branch on opening hours: open, closed, holiday, emergency.",
    ),
    Keyword(
        "ask",
        'ask "${1}" into ${2:answer} wait ${3:10m}:\n    on answer:\n        ${4:pass}\n'
        "    on timeout:\n        ${5:pass}",
        "Ask the customer a question and wait for the answer (or the timeout).",
    ),
    Keyword(
        "recognize customer by",
        "recognize customer by ${1:phone}",
        "Find the customer by their platform id, phone or a volunteered identity.",
    ),
    Keyword("if", "if ${1:condition}:\n    ${2:pass}", "Run a block when a condition holds."),
    Keyword("elif", "elif ${1:condition}:\n    ${2:pass}", "Another condition of an `if`."),
    Keyword("else", "else:\n    ${1:pass}", "What runs when no condition of the `if` held."),
    Keyword(
        "switch", "switch ${1:value}:\n    case ${2}:\n        ${3:pass}", "Branch on a value."
    ),
    Keyword("case", "case ${1}:\n    ${2:pass}", "One value (or several) of a `switch`."),
    Keyword("default", "default:\n    ${1:pass}", "What a `switch` does for any other value."),
    Keyword(
        "match keywords",
        'match keywords:\n    when "${1}":\n        ${2:pass}',
        "Branch on keywords in the customer's message (every match, or `first`).",
    ),
    Keyword("when", 'when "${1}":\n    ${2:pass}', "Keywords (or `regex`) of a `match`."),
    Keyword("otherwise", "otherwise:\n    ${1:pass}", "What a `match` does when nothing matched."),
    Keyword(
        "repeat", "repeat ${1:3} times:\n    ${2:pass}", "Run a block a fixed number of times."
    ),
    Keyword(
        "while",
        "while ${1:condition} at most ${2:10} times:\n    ${3:pass}",
        "Run a block while a condition holds, with a bound.",
    ),
    Keyword("go to state", "go to state ${1}", "Continue in another state."),
    Keyword("outcome", "outcome ${1}", "End a task with one of its outcomes."),
    Keyword("end", "end", "End the flow for this conversation."),
    Keyword("break", "break", "Leave the enclosing loop."),
    Keyword("keep waiting", "keep waiting", "Keep the conversation where it is waiting."),
    Keyword("log", 'log "${1}"', "Write a line to the conversation's trace."),
    Keyword("pass", "pass", "Do nothing: a block that deliberately has no step."),
    Keyword(
        "mark not actionable",
        "mark not actionable",
        "Close a social message that needs no answer (spam, a like).",
    ),
    Keyword(
        "link customer by",
        'link customer by "${1:account}" to ${2}',
        "Record an identity of the customer (verified by a data action's result).",
    ),
    Keyword("on", "on ${1:outcome}:\n    ${2:pass}", "What runs for one outcome of the statement."),
)

KEYWORD_DOCS = {k.label: k.doc for k in (*DECLARATIONS, *STATEMENTS)}

OUTCOMES_BY_STATEMENT: dict[str, tuple[str, ...]] = {
    cls.__name__: outcomes for cls, outcomes in OUTCOMES.items()
}
"""The outcomes of each statement that has them, by its AST class name."""

_OPENERS = (
    (re.compile(r"^\s*ask\b"), "Ask"),
    (re.compile(r"^\s*recognize\b"), "Recognize"),
    (re.compile(r"^\s*route\s+to\s+(last\s+)?agent\b"), "RouteAgent"),
    (re.compile(r"^\s*route\s+to\s+queue\b"), "RouteQueue"),
    (re.compile(r"^\s*hand\s+off\s+to\s+bot\b"), "BotHandoff"),
    (re.compile(r"^\s*call\s+data\s+action\b"), "DataAction"),
    (re.compile(r"^\s*check\s+schedule\b"), "CheckSchedule"),
)


def outcomes_of_opener(line: str) -> tuple[str, ...]:
    """The outcomes of the statement a line opens (`hand off to bot "FAQ":` -> resolved, ...)."""
    for pattern, name in _OPENERS:
        if pattern.search(line):
            return OUTCOMES_BY_STATEMENT.get(name, ())
    return ()


def builtin_names() -> list[tuple[str, str]]:
    """Every built-in name (`message.text`) and function (`lower(text)`) with its type."""
    names = [
        (f"{root}.{field}", kind)
        for root, fields in BUILTINS.items()
        for field, kind in fields.items()
    ]
    names += [
        (f"{name}", f"({', '.join(args)}) -> {result}")
        for name, (args, result) in FUNCTIONS.items()
    ]
    names.append(("detect", '(text, among [...], fallback "en", confidence 0.7) -> text'))
    return names


def describe_entry(deployment: Deployment, kind: str, name: str) -> str | None:
    """Markdown saying what a deployment entry is: a queue's members, service level and wrap-up
    codes, a
    template's text, a bot's description, a data action's inputs and outputs."""
    if kind == "queues" and name in deployment.queues:
        queue = deployment.queues[name]
        level = queue.service_level
        lines = [f"**queue** `{name}`"]
        if queue.description:
            lines.append(queue.description)
        lines.append(f"members: {', '.join(queue.members) or 'none'}")
        lines.append(
            f"service level: {level.target:.0%} answered within "
            f"{format_duration(level.answer_within)}"
        )
        lines.append(f"media: {', '.join(str(m) for m in queue.media)}")
        wrap_up = queue.wrap_up_codes or deployment.wrap_up_codes
        required = " (required)" if queue.wrap_up_required else ""
        lines.append(f"wrap-up codes{required}: {', '.join(wrap_up) or 'none'}")
        return "\n\n".join(lines)
    if kind == "templates" and name in deployment.templates:
        template = deployment.templates[name]
        text = template.text or (template.whatsapp.body if template.whatsapp else None) or ""
        head = f"**template** `{name}` ({template.kind})"
        return head + (f"\n\n```\n{text}\n```" if text else "")
    if kind == "bots" and name in deployment.bots:
        bot = deployment.bots[name]
        intents = ", ".join(bot.intents) or "none"
        return f"**bot** `{name}`\n\n{bot.description or ''}\n\nintents: {intents}".strip()
    if kind == "data_actions" and name in deployment.data_actions:
        action = deployment.data_actions[name]
        return (
            f"**data action** `{name}`\n\ninputs: {', '.join(action.inputs) or 'none'}\n\n"
            f"outputs: {', '.join(action.outputs) or 'none'}"
        )
    if kind == "skills" and name in deployment.skills:
        agents = [a for a, agent in deployment.agents.items() if name in agent.skills]
        return f"**skill** `{name}`\n\nagents with it: {', '.join(agents) or 'none'}"
    if kind == "schedules" and name in deployment.schedules:
        return f"**schedule** `{name}`: opening hours, holidays and emergencies"
    if kind == "agents" and name in deployment.agents:
        agent = deployment.agents[name]
        skills = ", ".join(f"{s} {p}" for s, p in agent.skills.items()) or "none"
        return f"**agent** `{name}`\n\nskills: {skills}\n\nqueues: {', '.join(agent.queues)}"
    if kind == "languages" and name in deployment.languages:
        return f"**language** `{name}`"
    return None
