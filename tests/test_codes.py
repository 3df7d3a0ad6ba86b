"""The diagnostic codes: each one is registered, documented, and shown by a test.

Most codes are shown by a golden case in tests/cases/; the rest (files that cannot be read, huge
files, CLI arguments, sample files, runtime errors) by the tests below.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang import codes
from flowlang.cli import main
from flowlang.codes import ALL_CODES
from flowlang.config import load_deployment
from flowlang.harness import SampleError, load_samples
from flowlang.language.parser import MAX_FLOW_BYTES, parse_bytes
from flowlang.workspace import parse_file, validate

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"\bFL\d{3}\b")

# Codes a golden case cannot show, and the test in this file or elsewhere that does.
SHOWN_ELSEWHERE = {
    "FL007": "tests/test_codes.py",
    "FL016": "tests/language/test_formatter.py",
    "FL020": "tests/test_codes.py",
    "FL021": "tests/test_codes.py",
    "FL022": "tests/test_codes.py",
    "FL100": "tests/test_codes.py",
    "FL130": "tests/language/test_detect_checks.py",
    "FL131": "tests/language/test_transfer_checks.py",
    "FL132": "tests/language/test_modules.py",
    "FL133": "tests/language/test_modules.py",
    "FL134": "tests/language/test_modules.py",
    "FL325": "tests/language/test_modules.py",
    "FL326": "tests/language/test_modules.py",
    "FL500": "tests/test_codes.py",
    "FL701": "tests/test_codes.py",
    "FL702": "tests/test_codes.py",
    "FL900": "tests/runtime/test_interpreter.py",
    "FL901": "tests/runtime/test_interpreter.py",
}


def _golden_codes() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "tests" / "cases").glob("*/*.expected"):
        found |= set(re.findall(r"\[(FL\d{3})\]", path.read_text("utf-8", errors="replace")))
    return found


def test_every_code_in_the_source_is_registered() -> None:
    used: set[str] = set()
    for path in (ROOT / "flowlang").rglob("*.py"):
        if path.name != "codes.py":
            used |= set(CODE.findall(path.read_text("utf-8")))
    assert used - set(ALL_CODES) == set()


def test_code_reports_a_code_by_its_named_constant_never_a_literal() -> None:
    literals = []
    for path in sorted((ROOT / "flowlang").rglob("*.py")):
        if path.name == "codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if re.fullmatch(r"FL\d{3}", node.value):
                literals.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert literals == []


def test_each_named_code_is_registered_once_with_a_description() -> None:
    named = {
        name: value
        for name, value in vars(codes).items()
        if name.isupper() and isinstance(value, str)
    }
    assert sorted(named.values()) == sorted(ALL_CODES)
    assert codes.UNKNOWN_QUEUE == "FL101" and codes.DEPLOYMENT_UNKNOWN_KEY == "FL502"
    assert all(description.strip() for description in ALL_CODES.values())
    assert codes.describe(codes.STEP_LIMIT).startswith("a flow ran more than the step limit")
    assert codes.describe("FL013") == ""  # retired, never reused


def test_every_code_is_documented() -> None:
    documented = set(
        re.findall(r"^### (FL\d{3})", (ROOT / "docs" / "errors.md").read_text("utf-8"), re.M)
    )
    assert set(ALL_CODES) - documented == set()
    assert documented - set(ALL_CODES) == set()


def test_every_code_is_shown_by_a_golden_case_or_a_named_test() -> None:
    missing = set(ALL_CODES) - _golden_codes() - set(SHOWN_ELSEWHERE)
    assert missing == set()
    for code, test_file in SHOWN_ELSEWHERE.items():
        assert code in (ROOT / test_file).read_text("utf-8"), f"{code} not in {test_file}"


def test_fl007_a_huge_flow_file_is_refused_before_parsing() -> None:
    result = parse_bytes(b"#" * (MAX_FLOW_BYTES + 1), "huge.flow")
    assert result.flow is None
    assert [d.code for d in result.diagnostics] == ["FL007"]


def test_fl020_a_flow_that_cannot_be_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    flow = tmp_path / "locked.flow"
    flow.write_text('flow "X"\n', "utf-8")

    def refuse(_self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    (problem,) = parse_file(flow).diagnostics
    assert problem.code == "FL020" and "Permission denied" in problem.message


def test_fl021_a_path_that_is_neither_flow_nor_deployment(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", "utf-8")
    ws = validate([notes])
    assert [d.code for d in ws.diagnostics] == ["FL021"]


def test_fl022_two_deployment_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for path in (first, second):
        path.write_text("skills: [Loans]\n", "utf-8")
    ws = validate([first, second])
    assert "FL022" in [d.code for d in ws.diagnostics]


def test_fl100_flows_without_a_deployment_get_a_warning_and_exit_0() -> None:
    result = CliRunner().invoke(main, ["validate", str(ROOT / "flows" / "messaging.flow")])
    assert result.exit_code == 0
    assert "warning[FL100]" in result.output


def test_fl500_a_deployment_that_cannot_be_read(tmp_path: Path) -> None:
    folder = tmp_path / "deployment.yaml"
    folder.mkdir()
    deployment, problems = load_deployment(folder)
    assert deployment is None
    assert [d.code for d in problems] == ["FL500"]
    assert "cannot read the deployment file" in problems[0].message


def test_fl701_a_sample_file_that_is_not_yaml(tmp_path: Path) -> None:
    samples = tmp_path / "messages.yaml"
    samples.write_text("conversations: [\n", "utf-8")
    with pytest.raises(SampleError) as caught:
        load_samples(samples)
    assert [d.code for d in caught.value.diagnostics] == ["FL701"]


def test_fl702_a_sample_event_without_a_kind(tmp_path: Path) -> None:
    samples = tmp_path / "messages.yaml"
    samples.write_text(
        "conversations:\n  - name: one\n    channel: web\n    events:\n      - {text: hi}\n",
        "utf-8",
    )
    with pytest.raises(SampleError) as caught:
        load_samples(samples)
    (problem,) = caught.value.diagnostics
    assert problem.code == "FL702" and problem.span.line == 5
