"""Pictures of a FlowGraph: Mermaid and Graphviz DOT text, SVG through Graphviz's `dot`.

Nodes show the source line and the step; edges carry their outcome names. Nodes in `visited`
(from a dry-run's trace) are highlighted.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

from flowlang.compiler import ir
from flowlang.compiler.ir import FlowGraph, Node, Op

_LABELS: dict[Op, str] = {
    Op.REPLY: "reply",
    Op.SET_VAR: "set",
    Op.SET_PRIORITY: "set priority",
    Op.SET_LANGUAGE: "set language",
    Op.SET_DATA: "set data",
    Op.ADD_SKILL: "add skill",
    Op.REMOVE_SKILL: "remove skill",
    Op.NOT_ACTIONABLE: "not actionable",
    Op.LINK: "link customer",
    Op.GOTO: "go to state",
    Op.JUMP: "break",
    Op.LOG: "log",
    Op.END: "end",
    Op.OUTCOME: "outcome",
    Op.RETURN: "return",
    Op.CALL: "call task",
    Op.BRANCH: "if",
    Op.SWITCH: "switch",
    Op.MATCH: "match keywords",
    Op.MATCH_CASE: "keyword group?",
    Op.MATCH_NONE: "no keyword?",
    Op.LOOP_INIT: "loop",
    Op.LOOP_TEST: "loop again?",
    Op.RECOGNIZE: "recognize customer",
    Op.SCHEDULE: "check schedule",
    Op.ASK: "ask",
    Op.BOT: "hand off to bot",
    Op.DATA_ACTION: "data action",
    Op.ROUTE_AGENT: "route to agent",
    Op.ROUTE_QUEUE: "route to queue",
    Op.KEEP_WAITING: "keep waiting",
    Op.SPLIT: "split",
    Op.MILESTONE: "milestone",
    Op.SURVEY: "survey",
    Op.TRANSFER_FLOW: "transfer to flow",
}
"""What a picture calls each operation (a test checks that every one has a label)."""


def _detail(node: Node) -> str:
    """The name or text that says what the step does, if it has one."""
    a = node.args
    named: str | None = None
    ref: ir.NameRef | None = None
    content: ir.Content | None = None
    match a:
        case ir.GotoArgs(state=named) | ir.CallArgs(task=named) | ir.LogArgs(message=named):
            pass
        case ir.SetVarArgs(name=named) | ir.OutcomeArgs(name=named) | ir.SurveyArgs(name=named):
            pass
        case ir.EndArgs(reason=named) | ir.NotActionableArgs(reason=named):
            pass
        case (
            ir.SplitArgs(name=named)
            | ir.MilestoneArgs(name=named)
            | ir.TransferFlowArgs(flow=named)
        ):
            pass
        case ir.RouteQueueArgs(queue=ref) | ir.BotArgs(bot=ref) | ir.ScheduleArgs(schedule=ref):
            pass
        case ir.DataActionArgs(action=ref) | ir.AddSkillArgs(skill=ref):
            pass
        case ir.RemoveSkillArgs(skill=ref) | ir.RouteAgentArgs(agent=ref):
            pass
        case ir.ReplyArgs(content=content) | ir.AskArgs(prompt=content):
            pass
    if named is not None:
        return named
    if ref is not None and isinstance(a, ir.RouteQueueArgs) and a.agent_steps:
        steps = sum(1 for step in a.agent_steps if step.condition is not None)
        return f"{ref.value} (preferred agents: {steps} step{'s' if steps > 1 else ''})"
    if ref is not None:
        return ref.value
    if isinstance(content, ir.TextContent | ir.MediaContent):
        text = content.text if isinstance(content, ir.TextContent) else content.url
        return text if len(text) < 30 else text[:27] + "..."
    return ""


def label(node: Node) -> str:
    detail = _detail(node)
    base = f"{node.source.line}: {_LABELS.get(node.op, node.op)}"
    return f"{base} {detail}" if detail else base


def edges(graph: FlowGraph) -> Iterator[tuple[str, str, str]]:
    for node in graph.nodes.values():
        for name, target in node.edges.items():
            shown = "" if name == "next" else name.removeprefix("on:")
            yield node.id, target, shown


def _ids(graph: FlowGraph) -> dict[str, str]:
    return {nid: f"n{i}" for i, nid in enumerate(sorted(graph.nodes))}


def _escape(text: str) -> str:
    return text.replace('"', "'").replace("{", "(").replace("}", ")")


def to_mermaid(graph: FlowGraph, visited: set[str] | None = None) -> str:
    ids = _ids(graph)
    out = ["flowchart TD", f'    start(["{_escape(graph.name)}"]) --> {ids[graph.entry]}']
    for nid, node in sorted(graph.nodes.items()):
        out.append(f'    {ids[nid]}["{_escape(label(node))}"]')
    for source, target, name in edges(graph):
        arrow = f"-- {_escape(name)} -->" if name else "-->"
        out.append(f"    {ids[source]} {arrow} {ids[target]}")
    if visited:
        out.append("    classDef visited fill:#ffe08a,stroke:#b8860b,stroke-width:2px")
        out.append(
            "    class " + ",".join(ids[v] for v in sorted(visited) if v in ids) + " visited"
        )
    return "\n".join(out) + "\n"


def to_dot(graph: FlowGraph, visited: set[str] | None = None) -> str:
    ids = _ids(graph)
    visited = visited or set()
    out = [
        f'digraph "{_escape(graph.name)}" {{',
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        f'  start [label="{_escape(graph.name)}", shape=oval];',
        f"  start -> {ids[graph.entry]};",
    ]
    for nid, node in sorted(graph.nodes.items()):
        fill = ', fillcolor="#ffe08a", penwidth=2' if nid in visited else ""
        out.append(f'  {ids[nid]} [label="{_escape(label(node))}"{fill}];')
    for source, target, name in edges(graph):
        extra = f' [label="{_escape(name)}"]' if name else ""
        out.append(f"  {ids[source]} -> {ids[target]}{extra};")
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(graph: FlowGraph, visited: set[str] | None = None) -> str:
    """Render with Graphviz; raises FileNotFoundError when `dot` is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise FileNotFoundError("dot")
    done = subprocess.run(
        [dot, "-Tsvg"],
        input=to_dot(graph, visited),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout
