"""The typed contract between compiler and runtime: one arguments class per operation, a JSON
form that stays byte for byte what stored versions hold, and a clear error for a graph that
cannot be read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowlang.compiler import ir
from flowlang.compiler.draw import _LABELS, to_mermaid
from flowlang.compiler.ir import ARGS_BY_OP, FlowGraph, GraphError, Op
from flowlang.project import load_project
from flowlang.runtime.program import Program
from flowlang.runtime.steps import build_steps
from tests.runtime.helpers import program

ROOT = Path(__file__).resolve().parents[2]

# The versions these flows have always compiled to. A change of the graph's JSON form changes
# them, and stored conversations would no longer find their version's graph as it was.
# (messaging.flow changed in content when it gained its `on wrap up` survey and `while queued`,
# then `on window closing` and the offer of WhatsApp while queued.)
PINNED = {"messaging.flow": "6f0643dedcc44693", "social.flow": "7fccdd9c708230a3"}


def _graph(name: str) -> FlowGraph:
    project, ws = load_project(ROOT / "flows" / name, ROOT / "examples" / "deployment.yaml")
    assert project is not None, ws.diagnostics
    return project.graph


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_version_of_each_shipped_flow_is_pinned(name: str) -> None:
    assert _graph(name).version == PINNED[name]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_graph_read_back_from_its_json_has_typed_arguments_and_the_same_json(name: str) -> None:
    graph = _graph(name)
    text = json.dumps(graph.to_dict(), ensure_ascii=False)
    again = FlowGraph.from_dict(json.loads(text))
    assert json.dumps(again.to_dict(), ensure_ascii=False) == text
    assert again.version == graph.version
    for node in again.nodes.values():
        assert isinstance(node.args, ARGS_BY_OP[node.op])
        assert node.args == graph.nodes[node.id].args


def test_every_operation_has_one_arguments_class_a_step_builder_and_a_label() -> None:
    assert set(ARGS_BY_OP) == set(Op)
    assert all(cls.op is op for op, cls in ARGS_BY_OP.items())
    assert set(_LABELS) == set(Op)


def test_arguments_are_frozen() -> None:
    args = ir.GotoArgs("routing")
    with pytest.raises(AttributeError):
        args.state = "elsewhere"  # type: ignore[misc]


def _stored(body: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(program(body).graph.to_dict()))
    data.pop("version")
    return data


def test_an_unknown_operation_in_a_stored_graph_is_named_with_its_node() -> None:
    data = _stored('reply "hi"')
    data["nodes"]["start/0"]["op"] = "teleport"
    with pytest.raises(GraphError) as caught:
        FlowGraph.from_dict(data)
    message = str(caught.value)
    assert "node start/0" in message and "unknown operation 'teleport'" in message
    assert "route_queue" in message  # the operations it knows are listed


def test_a_missing_argument_in_a_stored_graph_is_named_with_its_node() -> None:
    data = _stored("set priority to 3")
    del data["nodes"]["start/0"]["args"]["value"]
    with pytest.raises(GraphError, match=r"node start/0 \(set_priority\): argument 'value'"):
        FlowGraph.from_dict(data)


def test_a_graph_edited_after_compiling_is_refused() -> None:
    data = _stored('reply "hi"')
    data["version"] = "0000000000000000"
    with pytest.raises(GraphError, match="does not match its content"):
        FlowGraph.from_dict(data)


def test_optional_arguments_keep_the_json_shape_stored_versions_have() -> None:
    graph = program(
        """
        link customer by "email" to "a@b.c"
        end "done"
        """
    ).graph
    link, end = graph.nodes["start/0"], graph.nodes["start/1"]
    assert "verified_by" not in link.to_dict()["args"]  # written only for a verified link
    assert end.to_dict()["args"] == {"reason": "done"}
    assert graph.nodes["start/end"].to_dict()["args"] == {"implicit": True}


def test_content_kinds_round_trip_through_json() -> None:
    contents: list[ir.Content] = [
        ir.TextContent("Hi", ir.Choices("buttons", ("Yes", "No"))),
        ir.TemplateContent(ir.NameRef("welcome", is_param=True), {"name": {"lit": "Ana"}}),
        ir.MediaContent("image", "https://example.com/a.png", "A"),
        ir.LocationContent(40.4, -3.7),
    ]
    for content in contents:
        args = ir.ReplyArgs(content, "public")
        node = ir.Node("n", ir.SourceRef("f", 1, 1), args, {"next": "m"})
        assert ir.Node.from_dict(json.loads(json.dumps(node.to_dict()))).args == args


def test_every_node_of_a_graph_read_back_gets_a_step() -> None:
    graph = _graph("messaging.flow")
    again = FlowGraph.from_dict(json.loads(json.dumps(graph.to_dict())))
    assert set(build_steps(Program(again))) == set(again.nodes)


def test_pictures_name_each_step() -> None:
    text = to_mermaid(_graph("messaging.flow"))
    assert "route to queue" in text and "hand off to bot" in text


def test_every_arguments_class_is_a_frozen_dataclass() -> None:
    for cls in ARGS_BY_OP.values():
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
