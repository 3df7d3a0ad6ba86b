"""`flowlang test`: takes flow test files (YAML) that admins keep beside their flows, gives a
`TestRun`: each test passed or failed (expected against actual, and the path taken), the files
that could not be read, and with --coverage the steps and branches no test reached.

A test file names a flow and a deployment and lists tests. Each test gives sample conversations
(the dry-run format: messages, bot outcomes, agent actions, scripted data actions, agents away)
and what must happen (`expectations`): the route, skills, priority, replies sent, replies
blocked, the lines the flow passed through.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlang.harness.coverage import coverage_of
from flowlang.harness.driver import run_samples
from flowlang.harness.expectations import check_expectations
from flowlang.harness.samples import SampleError, SampleReader, read_yaml
from flowlang.project import Project, load_project
from flowlang.runtime.program import Program


@dataclass
class TestResult:
    file: str
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    path: list[int] = field(default_factory=list)
    line: int = 0
    """The line of the test in its file."""


@dataclass
class TestRun:
    results: list[TestResult] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[TestResult]:
        return [r for r in self.results if not r.passed]

    def coverage_percent(self) -> float:
        """Steps reached and branches taken, as a percentage of all of them in every flow tested
        (100 when there is nothing to cover)."""
        total = sum(c["steps"] + c["branches"] for c in self.coverage.values())
        done = sum(c["steps_reached"] + c["branches_taken"] for c in self.coverage.values())
        return 100.0 if total == 0 else 100.0 * done / total

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": len(self.results) - len(self.failed),
            "failed": len(self.failed),
            "unreadable": self.unreadable,
            "tests": [
                {
                    "file": r.file,
                    "name": r.name,
                    "passed": r.passed,
                    "failures": r.failures,
                    "path": r.path,
                    "line": r.line,
                }
                for r in self.results
            ],
            "coverage": self.coverage,
            "coverage_percent": round(self.coverage_percent(), 2) if self.coverage else None,
        }

    def render(self, color: bool = False) -> str:
        """The results for a terminal: PASS / FAIL per test (green / red with `color`)."""
        lines = []
        for r in self.results:
            verdict = "PASS" if r.passed else "FAIL"
            if color:
                verdict = f"\x1b[{'32' if r.passed else '31'}m{verdict}\x1b[0m"
            lines.append(f"{verdict}  {r.file} :: {r.name}")
            for failure in r.failures:
                lines.append(f"      {failure}")
            if not r.passed:
                lines.append(f"      path taken: lines {', '.join(map(str, r.path))}")
        lines.extend(f"ERROR {u}" for u in self.unreadable)
        for flow, cov in self.coverage.items():
            lines.append(
                f"\ncoverage of {flow}: {cov['steps_reached']}/{cov['steps']} steps, "
                f"{cov['branches_taken']}/{cov['branches']} branches"
            )
            for item in cov["unreached"]:
                lines.append(f"  not reached: line {item['line']} {item['step']}")
            for item in cov["untaken"]:
                lines.append(f"  branch never taken: line {item['line']} {item['branch']}")
        if self.coverage:
            lines.append(f"\ncoverage: {self.coverage_percent():.1f}% of steps and branches")
        lines.append(f"\n{len(self.results) - len(self.failed)} passed, {len(self.failed)} failed")
        return "\n".join(lines)


def run_test_paths(
    paths: list[Path], coverage: bool = False, select: Callable[[str], bool] | None = None
) -> TestRun:
    """Run every test file under `paths` (`*.yaml` / `*.yml` files or folders of them); with
    `select`, only the tests whose `file :: name` it accepts (`selection.keyword_filter`)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*.y*ml")) if path.is_dir() else [path])
    outcome = TestRun()
    visited: dict[str, tuple[Project, set[str], set[tuple[str, str]]]] = {}
    for file in files:
        _run_file(file, outcome, visited, select)
    if coverage:
        for flow, (project, nodes, taken) in visited.items():
            outcome.coverage[flow] = coverage_of(project, nodes, taken)
    return outcome


def _run_file(
    file: Path,
    outcome: TestRun,
    visited: dict[str, tuple[Project, set[str], set[tuple[str, str]]]],
    select: Callable[[str], bool] | None = None,
) -> None:
    try:
        data, index = read_yaml(file)
    except SampleError as exc:
        outcome.unreadable.append(f"{file}: {exc.diagnostics[0].message}")
        return
    if not isinstance(data, dict) or "flow" not in data or "tests" not in data:
        outcome.unreadable.append(f"{file}: a test file needs 'flow:' and 'tests:'")
        return
    flow = (file.parent / str(data["flow"])).resolve()
    deployment = (
        (file.parent / str(data["deployment"])).resolve() if data.get("deployment") else None
    )
    tests = [
        (number, test)
        for number, test in enumerate(data["tests"] or [])
        if select is None or select(f"{file} :: {_name(test)}")
    ]
    if not tests:
        return
    others = _other_flows(file, data.get("flows"), deployment, outcome)
    if others is None:
        return
    key = str(flow)
    if key not in visited:
        project, ws = load_project(_relative(flow), _relative(deployment) if deployment else None)
        if project is None:
            outcome.unreadable.append(
                f"{file}: {flow} has {len(ws.errors)} error(s); run flowlang validate"
            )
            return
        visited[key] = (project, set(), set())
    project, nodes, taken = visited[key]
    for number, test in tests:
        name = _name(test)
        try:
            samples = SampleReader(index, ("tests", number)).read(test)
        except SampleError as exc:
            outcome.unreadable.append(
                f"{file} :: {name}: " + "; ".join(f"{d.span}: {d.message}" for d in exc.diagnostics)
            )
            continue
        report = run_samples(project, samples, flows=others)
        for step in report.steps:
            path = step.outcome.path
            nodes.update(path)
            taken.update(itertools.pairwise(path))
        failures = check_expectations(test.get("expect") or {}, report)
        lines = [t.line for s in report.steps for t in s.outcome.trace if t.line]
        line = index.key_span(("tests", number)).line
        outcome.results.append(TestResult(str(file), name, not failures, failures, lines, line))


def _other_flows(
    file: Path, listed: Any, deployment: Path | None, outcome: TestRun
) -> list[Program] | None:
    """The flows a test file loads beside its own (`flows:`), for `transfer to flow`; None when
    one cannot be loaded (the file's tests are not run)."""
    programs: list[Program] = []
    for entry in listed or []:
        path = (file.parent / str(entry)).resolve()
        project, ws = load_project(_relative(path), _relative(deployment) if deployment else None)
        if project is None:
            outcome.unreadable.append(
                f"{file}: {path} has {len(ws.errors)} error(s); run flowlang validate"
            )
            return None
        programs.append(project.program)
    return programs


def _name(test: Any) -> str:
    return str(test.get("name", "unnamed")) if isinstance(test, dict) else "unnamed"


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
