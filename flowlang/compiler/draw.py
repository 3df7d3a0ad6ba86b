"""Pictures of a FlowGraph: Mermaid and Graphviz DOT text, SVG through Graphviz's `dot`.

Nodes show the source line and the step; edges carry their outcome names. Nodes in `visited`
(from a dry-run's trace) are highlighted.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

from flowlang.compiler.ir import FlowGraph, Node

_LABELS = {
    "reply": "reply",
    "set_var": "set",
    "set_priority": "set priority",
    "set_language": "set language",
    "set_data": "set data",
    "add_skill": "add skill",
    "remove_skill": "remove skill",
    "not_actionable": "not actionable",
    "link": "link customer",
    "goto": "go to state",
    "jump": "break",
    "log": "log",
    "end": "end",
    "outcome": "outcome",
    "return": "return",
    "call": "call task",
    "branch": "if",
    "switch": "switch",
    "match": "match keywords",
    "match_case": "keyword group?",
    "match_none": "no keyword?",
    "loop_init": "loop",
    "loop_test": "loop again?",
    "recognize": "recognize customer",
    "schedule": "check schedule",
    "ask": "ask",
    "bot": "hand off to bot",
    "data_action": "data action",
    "route_agent": "route to agent",
    "route_queue": "route to queue",
    "keep_waiting": "keep waiting",
}


def _detail(node: Node) -> str:
    a = node.args
    for key in ("state", "task", "name", "message", "reason"):
        if isinstance(a.get(key), str):
            return str(a[key])
    for key in ("queue", "bot", "schedule", "action", "skill", "agent"):
        ref = a.get(key)
        if isinstance(ref, dict):
            return str(ref.get("name") or ref.get("param") or "")
    content = a.get("content") or a.get("prompt")
    if isinstance(content, dict):
        text = str(content.get("text") or content.get("url") or "")
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
