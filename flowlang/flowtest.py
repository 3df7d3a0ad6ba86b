"""`flowlang test`: flow test files (YAML) that admins keep beside their flows.

A test file names a flow and a deployment and lists tests. Each test gives sample conversations
(the dry-run format: messages, bot outcomes, agent actions, scripted data actions, agents away)
and what must happen: the route, skills, priority, replies sent, replies blocked, the lines the
flow passed through. Failures show expected against actual and the path taken.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from flowlang.dryrun import DryRunReport, SampleError, _Reader, run_samples
from flowlang.project import Project, load_project
from flowlang.runtime import effects as fx

EXPECTATION_KEYS = (
    "notes",
    "routed_to",
    "skills",
    "priority",
    "language",
    "agent",
    "bot",
    "replies",
    "no_replies",
    "blocked",
    "path",
    "not_actionable",
    "ended",
    "failed",
)


@dataclass
class TestResult:
    file: str
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    path: list[int] = field(default_factory=list)


@dataclass
class TestRun:
    results: list[TestResult] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[TestResult]:
        return [r for r in self.results if not r.passed]

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
                }
                for r in self.results
            ],
            "coverage": self.coverage,
        }

    def render(self) -> str:
        lines = []
        for r in self.results:
            lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.file} :: {r.name}")
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
        lines.append(f"\n{len(self.results) - len(self.failed)} passed, {len(self.failed)} failed")
        return "\n".join(lines)


def run_test_paths(paths: list[Path], coverage: bool = False) -> TestRun:
    """Run every test file under `paths` (`*.yaml` / `*.yml` files or folders of them)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*.y*ml")) if path.is_dir() else [path])
    outcome = TestRun()
    visited: dict[str, tuple[Project, set[str], set[tuple[str, str]]]] = {}
    for file in files:
        _run_file(file, outcome, visited)
    if coverage:
        for flow, (project, nodes, taken) in visited.items():
            outcome.coverage[flow] = _coverage(project, nodes, taken)
    return outcome


def _run_file(
    file: Path, outcome: TestRun, visited: dict[str, tuple[Project, set[str], set[tuple[str, str]]]]
) -> None:
    try:
        data = YAML(typ="rt").load(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        outcome.unreadable.append(f"{file}: {exc}")
        return
    if not isinstance(data, dict) or "flow" not in data or "tests" not in data:
        outcome.unreadable.append(f"{file}: a test file needs 'flow:' and 'tests:'")
        return
    flow = (file.parent / str(data["flow"])).resolve()
    deployment = (
        (file.parent / str(data["deployment"])).resolve() if data.get("deployment") else None
    )
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
    for test in data["tests"] or []:
        name = str(test.get("name", "unnamed"))
        try:
            samples = _Reader(str(file)).read(test)
        except SampleError as exc:
            outcome.unreadable.append(
                f"{file} :: {name}: " + "; ".join(f"{d.span}: {d.message}" for d in exc.diagnostics)
            )
            continue
        report = run_samples(project, samples)
        for step in report.steps:
            path = step.outcome.path
            nodes.update(path)
            taken.update(itertools.pairwise(path))
        failures = check_expectations(test.get("expect") or {}, report)
        lines = [t.line for s in report.steps for t in s.outcome.trace if t.line]
        outcome.results.append(TestResult(str(file), name, not failures, failures, lines))


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def check_expectations(expect: dict[str, Any], report: DryRunReport) -> list[str]:
    """Every way the run differs from what the test expects (empty: it passed)."""
    failures: list[str] = [
        f"unknown expectation {k!r} (use: {', '.join(EXPECTATION_KEYS)})"
        for k in expect
        if k not in EXPECTATION_KEYS
    ]
    effects = [e for s in report.steps for e in s.outcome.effects]
    routes = [e for e in effects if isinstance(e, fx.RouteToQueue)]
    route = routes[-1] if routes else None
    sent = [
        d for s in report.steps for d in s.outcome.deliveries if d.status in ("sent", "degraded")
    ]
    held = [
        d
        for s in report.steps
        for d in s.outcome.deliveries
        if d.status not in ("sent", "degraded")
    ]
    notices = [n for s in report.steps for n in s.outcome.notices]

    def compare(what: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            failures.append(f"{what}: expected {expected!r}, got {actual!r}")

    if "routed_to" in expect:
        compare("routed_to", expect["routed_to"], route.queue if route else None)
    if "skills" in expect:
        compare(
            "skills",
            sorted(map(str, expect["skills"])),
            sorted(s["skill"] for s in route.skills) if route else None,
        )
    if "priority" in expect:
        compare("priority", float(expect["priority"]), route.priority if route else None)
    if "language" in expect:
        compare("language", expect["language"], route.language if route else None)
    if "agent" in expect:
        agents = [n.agent for n in notices if n.kind == "accepted"]
        compare("agent", expect["agent"], agents[-1] if agents else None)
    if "bot" in expect:
        bots = [e.bot for e in effects if isinstance(e, fx.HandOffToBot)]
        compare("bot", expect["bot"], bots[-1] if bots else None)
    if "replies" in expect:
        texts = [
            str(d.message.content.get("text") or d.message.content.get("name") or "") for d in sent
        ]
        _in_order("replies", [str(p) for p in expect["replies"]], texts, failures)
    if expect.get("no_replies"):
        compare("replies sent", [], [d.message.content.get("text") for d in sent])
    if "blocked" in expect:
        compare("blocked", [str(b) for b in expect["blocked"]], [d.reason_code for d in held])
    if "path" in expect:
        lines = [t.line for s in report.steps for t in s.outcome.trace if t.line]
        missing = _subsequence([int(x) for x in expect["path"]], lines)
        if missing is not None:
            failures.append(
                f"path: expected to pass line {missing} (in this order: "
                f"{list(expect['path'])}); it passed {lines}"
            )
    if "notes" in expect:
        notes = [s.outcome.note for s in report.steps if s.outcome.note]
        _in_order("notes", [str(p) for p in expect["notes"]], notes, failures)
    if "not_actionable" in expect:
        marked = any(isinstance(e, fx.MarkNotActionable) for e in effects)
        compare("not_actionable", bool(expect["not_actionable"]), marked)
    if "ended" in expect:
        ends = [e.reason for e in effects if isinstance(e, fx.EndFlow)]
        compare("ended", expect["ended"], ends[-1] if ends else None)
    if "failed" in expect:
        errors = [e.code for e in effects if isinstance(e, fx.FlowFailed)]
        compare("failed", expect["failed"], errors[-1] if errors else None)
    return failures


def _in_order(what: str, patterns: list[str], texts: list[str], failures: list[str]) -> None:
    position = 0
    for pattern in patterns:
        while position < len(texts) and not fnmatch.fnmatchcase(texts[position], pattern):
            position += 1
        if position == len(texts):
            failures.append(f"{what}: no reply matching {pattern!r} (in order); sent {texts!r}")
            return
        position += 1


def _subsequence(wanted: list[int], seen: list[int]) -> int | None:
    """The first wanted line not found in order in `seen`, or None."""
    iterator = iter(seen)
    for line in wanted:
        if not any(line == s for s in iterator):
            return line
    return None


# Outcomes of the steps that wait for one; when a step handles all of them, its "next" edge (what
# an unhandled outcome falls through to) can never be taken and is not a branch to cover.
_OUTCOMES = {
    "recognize": {"known", "unknown"},
    "schedule": {"open", "closed", "holiday", "emergency"},
    "bot": {"resolved", "escalate", "failure", "timeout"},
    "data_action": {"success", "failure", "timeout", "not_found"},
    "ask": {"answer", "timeout"},
}


def _dead_fallthrough(node: Any, edge: str) -> bool:
    outcomes = _OUTCOMES.get(node.op)
    if edge != "next" or outcomes is None:
        return False
    return all(f"on:{o}" in node.edges for o in outcomes)


def _coverage(project: Project, nodes: set[str], taken: set[tuple[str, str]]) -> dict[str, Any]:
    graph = project.graph
    # A task's `return` and a call's "next" edge are how a task without an outcome gets back
    # to its caller; outcomes jump straight to the caller's next step, so neither is a step or
    # branch an admin wrote.
    reachable = [
        n
        for n in graph.nodes.values()
        if n.op != "return" and (n.op != "end" or not n.args.get("implicit"))
    ]
    branches = [
        (n, name, target)
        for n in graph.nodes.values()
        for name, target in n.edges.items()
        if n.op
        in (
            "branch",
            "switch",
            "match",
            "match_case",
            "match_none",
            "recognize",
            "schedule",
            "ask",
            "bot",
            "data_action",
            "route_agent",
            "route_queue",
            "call",
            "loop_test",
        )
    ]
    branches = [
        b
        for b in branches
        if not _dead_fallthrough(b[0], b[1]) and not (b[0].op == "call" and b[1] == "next")
    ]
    untaken = [
        {"line": n.source.line, "branch": f"{n.op} -> {name}"}
        for n, name, target in branches
        if (n.id, target) not in taken
    ]
    unreached = [{"line": n.source.line, "step": n.op} for n in reachable if n.id not in nodes]
    return {
        "steps": len(reachable),
        "steps_reached": len(reachable) - len(unreached),
        "branches": len(branches),
        "branches_taken": len(branches) - len(untaken),
        "unreached": sorted(unreached, key=lambda i: i["line"]),
        "untaken": sorted(untaken, key=lambda i: i["line"]),
    }
