"""The command line as a user sees it: output, exit codes, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_validate_the_shipped_flows_is_clean() -> None:
    code, out = invoke("validate", "flows/")
    assert code == 0, out
    shipped = len(list(Path("flows").rglob("*.flow")))  # modules (flows/common/) too
    assert shipped >= 3 and f"{shipped} flow file(s) checked" in out and "0 error(s)" in out


def test_validate_reports_every_error_with_a_caret(tmp_path: Path) -> None:
    flow = tmp_path / "bad.flow"
    flow.write_text(
        'flow "Bad"\nserve messages on whatsap\n\nstate start:\n'
        "    go to state finish\n    set x to 1\n",
        "utf-8",
    )
    code, out = invoke("validate", str(flow))
    assert code == 1
    assert "error[FL109]: unknown channel 'whatsap'" in out
    assert "did you mean 'whatsapp'?" in out
    assert "error[FL110]: unknown state 'finish'" in out
    assert f"--> {flow}:5:17" in out
    assert "^^^^^^" in out
    assert "2 error(s)" in out or "3 error(s)" in out


def test_validate_json_for_editors(tmp_path: Path) -> None:
    flow = tmp_path / "bad.flow"
    flow.write_text(
        'flow "Bad"\nserve messages on web\nstate start:\n    route to queue\n', "utf-8"
    )
    code, out = invoke("validate", "--format", "json", str(flow))
    assert code == 1
    (first,) = [d for d in json.loads(out) if d["severity"] == "error"]
    assert (first["code"], first["line"]) == ("FL012", 4)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, out = invoke("validate", str(tmp_path / "missing.flow"))
    assert code == 2 and "no such file" in out
    code, _out = invoke("validate")
    assert code == 2
    code, _out = invoke("dry-run", "flows/messaging.flow")
    assert code == 2


def test_binary_garbage_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    flow = tmp_path / "garbage.flow"
    flow.write_bytes(b'flow "x"\n\xff\xfe\x00\x01state')
    code, out = invoke("validate", str(flow))
    assert code == 1 and "FL005" in out and "Traceback" not in out


def test_compile_writes_a_versioned_graph(tmp_path: Path) -> None:
    out_file = tmp_path / "graph.json"
    code, out = invoke("compile", "flows/social.flow", "-o", str(out_file))
    assert code == 0, out
    data = json.loads(out_file.read_text("utf-8"))
    assert data["name"] == "GBank social" and len(data["version"]) == 16
    code2, _ = invoke("compile", "flows/social.flow", "-o", str(tmp_path / "again.json"))
    again = json.loads((tmp_path / "again.json").read_text("utf-8"))
    assert code2 == 0 and again["version"] == data["version"]


def test_graph_mermaid_and_dot() -> None:
    code, out = invoke("graph", "flows/social.flow")
    assert code == 0 and out.startswith("flowchart TD")
    assert "route to queue" in out
    code, out = invoke("graph", "flows/social.flow", "--format", "dot")
    assert code == 0 and out.startswith('digraph "GBank social"')
