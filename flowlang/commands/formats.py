"""Machine-readable output of `flowlang validate` and `flowlang test` for CI: SARIF 2.1.0 (code
scanning), JUnit XML (test reports of GitLab, Jenkins, GitHub actions) and GitHub workflow
annotations. Each takes diagnostics or a test run and gives the text to print."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from flowlang import __version__, codes
from flowlang.diagnostics import Diagnostic, Severity, Span

if TYPE_CHECKING:
    from flowlang.harness import TestRun

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/flowlang/flowlang"
TEST_FAILED_RULE = "flow-test-failed"
TEST_UNREADABLE_RULE = "flow-test-unreadable"

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def relative_uri(file: str) -> str:
    """A path as code scanning wants it: relative to the working directory, with '/'."""
    path = Path(file)
    with contextlib.suppress(ValueError, OSError):
        path = path.resolve().relative_to(Path.cwd().resolve())
    return path.as_posix()


def _message(d: Diagnostic) -> str:
    text = d.message
    if d.label:
        text += f" ({d.label})"
    for note in d.notes:
        text += f"\nnote: {note}"
    if d.hint:
        text += f"\nhelp: {d.hint}"
    return text


def _region(span: Span) -> dict[str, int]:
    region = {"startLine": max(span.line, 1), "startColumn": max(span.column, 1)}
    if span.end_line >= span.line and span.end_column > 0:
        region["endLine"] = max(span.end_line, region["startLine"])
        end_column = span.end_column
        if region["endLine"] == region["startLine"]:
            end_column = max(end_column, region["startColumn"])
        region["endColumn"] = max(end_column, 1)
    return region


def _location(span: Span, message: str = "") -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": relative_uri(span.file)},
            "region": _region(span),
        }
    }
    if message:
        location["message"] = {"text": message}
    return location


@dataclass(frozen=True)
class SarifResult:
    """One SARIF result: a rule, its level, a message and where."""

    rule: str
    level: str
    message: str
    span: Span
    related: tuple[tuple[Span, str], ...] = ()


def sarif(results: Sequence[SarifResult], rules: dict[str, str]) -> str:
    """A SARIF 2.1.0 log with one run of flowlang; `rules` maps each rule id to its description."""
    used = sorted({r.rule for r in results})
    index = {rule: i for i, rule in enumerate(used)}
    entries: list[dict[str, Any]] = []
    for r in results:
        entry: dict[str, Any] = {
            "ruleId": r.rule,
            "ruleIndex": index[r.rule],
            "level": r.level,
            "message": {"text": r.message},
            "locations": [_location(r.span)],
        }
        if r.related:
            entry["relatedLocations"] = [
                {"id": i, **_location(span, text)} for i, (span, text) in enumerate(r.related)
            ]
        entries.append(entry)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "flowlang",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [
                            {
                                "id": rule,
                                "name": rule,
                                "shortDescription": {"text": rules.get(rule, rule)},
                            }
                            for rule in used
                        ],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": entries,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False)


def diagnostics_sarif(diagnostics: Iterable[Diagnostic]) -> str:
    """The diagnostics of `flowlang validate` as SARIF: one rule per FL code."""
    results = [
        SarifResult(d.code, _SARIF_LEVEL[d.severity], _message(d), d.span, d.related)
        for d in diagnostics
    ]
    return sarif(results, codes.ALL_CODES)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(
    severity: Severity, span: Span, title: str, message: str, whole_file: bool = False
) -> str:
    """One GitHub Actions workflow command (`::error file=...,line=...::message`)."""
    props = [f"file={_escape_property(relative_uri(span.file))}"]
    if not whole_file:
        region = _region(span)
        props += [f"line={region['startLine']}", f"col={region['startColumn']}"]
        if "endLine" in region:
            props += [f"endLine={region['endLine']}", f"endColumn={region['endColumn']}"]
    props.append(f"title={_escape_property(title)}")
    return f"::{_GITHUB_COMMAND[severity]} {','.join(props)}::{_escape_data(message)}"


def diagnostics_github(diagnostics: Iterable[Diagnostic]) -> str:
    """The diagnostics as GitHub Actions annotations, one line each."""
    return "\n".join(
        github_annotation(d.severity, d.span, d.code, _message(d)) for d in diagnostics
    )


@dataclass(frozen=True)
class JunitCase:
    """One test case: its name, its class (file) name, and a failure or error text if any."""

    name: str
    classname: str
    failure: str | None = None
    error: str | None = None
    message: str = ""


def junit(suites: dict[str, list[JunitCase]], output: str = "") -> str:
    """JUnit XML (`<testsuites>`, the Ant schema GitLab and Jenkins read): one suite per key."""
    root = ET.Element("testsuites")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    host = socket.gethostname() or "localhost"
    for number, (suite_name, cases) in enumerate(suites.items()):
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "package": "flowlang",
                "id": str(number),
                "name": suite_name or "flowlang",
                "timestamp": stamp,
                "hostname": host,
                "tests": str(len(cases)),
                "failures": str(sum(c.failure is not None for c in cases)),
                "errors": str(sum(c.error is not None for c in cases)),
                "time": "0",
            },
        )
        ET.SubElement(suite, "properties")
        for case in cases:
            element = ET.SubElement(
                suite,
                "testcase",
                {"name": case.name or "unnamed", "classname": case.classname, "time": "0"},
            )
            if case.error is not None:
                problem = ET.SubElement(element, "error", {"type": "error"})
                problem.set("message", case.message or case.error.splitlines()[0])
                problem.text = case.error
            elif case.failure is not None:
                problem = ET.SubElement(element, "failure", {"type": "failure"})
                problem.set("message", case.message or case.failure.splitlines()[0])
                problem.text = case.failure
        ET.SubElement(suite, "system-out").text = output
        ET.SubElement(suite, "system-err")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def diagnostics_junit(
    files: Sequence[str],
    diagnostics: Sequence[Diagnostic],
    rendered: dict[str, str],
    *,
    warnings_fail: bool = False,
) -> str:
    """`flowlang validate` as JUnit: one test case per file checked, failed when it has errors
    (or warnings, with `warnings_fail`); the failure's text is the rendered diagnostics."""
    cases: list[JunitCase] = []
    for file in files:
        mine = [d for d in diagnostics if d.span.file == file]
        failing = [d for d in mine if d.is_error or warnings_fail]
        text = rendered.get(file, "")
        if failing:
            summary = f"{len(failing)} problem(s): " + "; ".join(
                f"{d.code} {d.message}" for d in failing[:3]
            )
            cases.append(JunitCase(relative_uri(file), "flowlang.validate", text, None, summary))
        else:
            cases.append(JunitCase(relative_uri(file), "flowlang.validate"))
    warnings = "\n\n".join(
        text for file, text in rendered.items() if file in files and not warnings_fail
    )
    return junit({"flowlang validate": cases}, warnings)


def tests_junit(run: TestRun) -> str:
    """`flowlang test` as JUnit: a suite per test file, a case per test, unreadable ones errors."""
    suites: dict[str, list[JunitCase]] = {}
    for result in run.results:
        name = relative_uri(result.file)
        failure = None
        if not result.passed:
            failure = "\n".join(
                [*result.failures, f"path taken: lines {', '.join(map(str, result.path))}"]
            )
        suites.setdefault(name, []).append(JunitCase(result.name, name, failure))
    for problem in run.unreadable:
        file, _, reason = problem.partition(": ")
        name = relative_uri(file.split(" :: ")[0])
        suites.setdefault(name, []).append(JunitCase(file, name, None, problem, reason or problem))
    return junit(suites)


def tests_sarif(run: TestRun) -> str:
    """Failed and unreadable tests as SARIF results at the test's line in its file."""
    results = [
        SarifResult(
            TEST_FAILED_RULE,
            "error",
            f"test failed: {r.name}\n" + "\n".join(r.failures),
            Span.point(r.file, r.line or 1, 1),
        )
        for r in run.failed
    ]
    results += [
        SarifResult(TEST_UNREADABLE_RULE, "error", problem, _unreadable_span(problem))
        for problem in run.unreadable
    ]
    rules = {
        TEST_FAILED_RULE: "a flow test whose expectations were not met",
        TEST_UNREADABLE_RULE: "a flow test file (or test) that could not be read or run",
    }
    return sarif(results, rules)


def tests_github(run: TestRun) -> str:
    """Failed and unreadable tests as GitHub annotations, then the summary line."""
    lines = [
        github_annotation(
            Severity.ERROR,
            Span.point(r.file, r.line or 1, 1),
            f"flow test failed: {r.name}",
            "\n".join(r.failures),
        )
        for r in run.failed
    ]
    lines += [
        github_annotation(
            Severity.ERROR, _unreadable_span(p), "flow test not run", p, whole_file=True
        )
        for p in run.unreadable
    ]
    lines.append(f"{len(run.results) - len(run.failed)} passed, {len(run.failed)} failed")
    return "\n".join(lines)


def _unreadable_span(problem: str) -> Span:
    return Span.whole_file(problem.partition(": ")[0].split(" :: ")[0])
