"""`from flowlang import load_project`: the package is the entry point a host imports, and the
README's embedding example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import flowlang
from flowlang import Engine, FlowError, Project, Workspace, load_project, validate

ROOT = Path(__file__).resolve().parent.parent


def _embedding_example() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme[readme.index("## Embedding") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_the_package_exports_what_a_host_needs() -> None:
    assert set(flowlang.__all__) == {
        "Engine",
        "FlowError",
        "Project",
        "Workspace",
        "__version__",
        "load_project",
        "validate",
    }
    assert all(hasattr(flowlang, name) for name in flowlang.__all__)


def test_load_project_gives_a_project_whose_engine_runs_the_flow() -> None:
    project, workspace = load_project(
        ROOT / "flows" / "messaging.flow", ROOT / "examples" / "deployment.yaml"
    )
    assert isinstance(project, Project) and isinstance(workspace, Workspace)
    assert isinstance(project.engine(), Engine)
    assert issubclass(FlowError, Exception)


def test_a_flow_with_errors_gives_no_project_and_says_where(tmp_path: Path) -> None:
    flow = tmp_path / "bad.flow"
    flow.write_text(
        'flow "Bad"\nserve messages on web\nstate start:\n    route to queue\n', "utf-8"
    )
    project, workspace = load_project(flow)
    assert project is None
    report = workspace.render()
    assert "error[FL012]" in report and f"{flow}:4:" in report
    assert validate([flow]).render() == report


def test_the_readme_embedding_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _embedding_example()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sent "), done.stdout
