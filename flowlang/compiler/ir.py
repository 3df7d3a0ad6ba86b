"""FlowGraph: the executable, serialisable form of a checked flow.

A graph is plain data (JSON-able): nodes with stable ids, an operation name, arguments, named
edges to other nodes, and the source span they came from. Expressions inside arguments are small
JSON trees (see `flowlang.compiler.expressions`). The graph's version is the SHA-256 of its
canonical JSON (without the file's path), so the same flow always compiles to the same version,
wherever its file lies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceRef:
    file: str
    line: int
    column: int


@dataclass
class Node:
    """One step. `edges` maps an edge name (`next`, `then`, `on:known`, ...) to a node id."""

    id: str
    op: str
    source: SourceRef
    args: dict[str, Any] = field(default_factory=dict)
    edges: dict[str, str] = field(default_factory=dict)


@dataclass
class FlowGraph:
    name: str
    entry: str
    nodes: dict[str, Node]
    states: dict[str, str]  # state name -> first node id
    tasks: dict[str, dict[str, Any]]  # task name -> {"entry": id, "outcomes": [...]}
    params: dict[str, dict[str, Any]]  # name -> {"type": ..., "value": ...}
    variables: dict[str, dict[str, Any]]  # name -> {"type": ..., "initial": expr | None}
    on_error: str | None
    serve: list[dict[str, Any]]
    threading_window_seconds: int | None
    source_file: str
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = self.version
        return data

    def canonical_json(self) -> str:
        """What the version hashes: the graph without where its file lies (the same flow in
        another folder is the same version)."""
        data = self.to_dict()
        data.pop("version", None)
        data.pop("source_file", None)
        for node in data["nodes"].values():
            node["source"].pop("file", None)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def seal(self) -> FlowGraph:
        """Set `version` to the content hash and return self."""
        self.version = hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowGraph:
        nodes = {
            nid: Node(
                n["id"], n["op"], SourceRef(**n["source"]), n.get("args", {}), n.get("edges", {})
            )
            for nid, n in data["nodes"].items()
        }
        graph = cls(
            name=data["name"],
            entry=data["entry"],
            nodes=nodes,
            states=data["states"],
            tasks=data["tasks"],
            params=data["params"],
            variables=data["variables"],
            on_error=data.get("on_error"),
            serve=data.get("serve", []),
            threading_window_seconds=data.get("threading_window_seconds"),
            source_file=data.get("source_file", ""),
        )
        graph.seal()
        if data.get("version") and data["version"] != graph.version:
            raise ValueError(
                f"graph version {data['version']} does not match its content "
                f"({graph.version}); the file was edited after compiling"
            )
        return graph
