"""Golden diagnostics: every broken flow in tests/cases/check/ and every broken deployment file in
tests/cases/deployment/, with exactly what `flowlang validate` prints for it.

Run `pytest tests/language/test_check_cases.py --update-golden` after an intended change and
review the diff of the `.expected` files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from flowlang.workspace import render, validate

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path("tests/cases/check")
DEPLOYMENT = Path("tests/cases/deployment")
FLOW_CASES = sorted((ROOT / CHECK).glob("*.flow"))
DEPLOYMENT_CASES = sorted((ROOT / DEPLOYMENT).glob("*.yaml"))


def _validate(paths: list[Path]) -> str:
    cwd = Path.cwd()
    os.chdir(ROOT)  # diagnostics name files relative to the repository, as a user would see them
    try:
        ws = validate(paths)
        return render(ws) + "\n"
    finally:
        os.chdir(cwd)


def _compare(actual: str, expected_path: Path, request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--update-golden"):
        expected_path.write_text(actual, "utf-8")
    assert expected_path.exists(), f"run pytest --update-golden to create {expected_path.name}"
    assert actual == expected_path.read_text("utf-8")


@pytest.mark.parametrize("path", FLOW_CASES, ids=lambda p: p.stem)
def test_flow_case(path: Path, request: pytest.FixtureRequest) -> None:
    actual = _validate([CHECK / path.name, CHECK / "deployment.yaml"])
    assert actual.strip(), f"{path.name} is meant to be broken but validates clean"
    _compare(actual, path.with_suffix(".expected"), request)


@pytest.mark.parametrize("path", DEPLOYMENT_CASES, ids=lambda p: p.stem)
def test_deployment_case(path: Path, request: pytest.FixtureRequest) -> None:
    actual = _validate([DEPLOYMENT / path.name])
    assert actual.strip(), f"{path.name} is meant to be broken but loads clean"
    _compare(actual, path.with_suffix(".expected"), request)


def test_the_case_deployment_itself_is_clean() -> None:
    assert _validate([CHECK / "deployment.yaml"]).strip() == ""


def test_there_are_enough_cases() -> None:
    assert len(FLOW_CASES) + len(DEPLOYMENT_CASES) >= 40


def _columns(block: list[str]) -> set[int]:
    """Where each line of one diagnostic puts its margin: the arrow's middle dash, the bar, the
    `=` of a note or help."""
    found: set[int] = set()
    for line in block[1:]:
        if line.lstrip().startswith("-->"):
            found.add(line.index("-->") + 1)
        elif line.lstrip().startswith("="):
            found.add(line.index("="))
        elif "|" in line:
            found.add(line.index("|"))
    return found


def test_every_diagnostic_keeps_one_margin_whatever_its_line_number() -> None:
    blocks = [
        block.splitlines()
        for path in sorted((ROOT / CHECK).glob("*.expected"))
        + sorted((ROOT / DEPLOYMENT).glob("*.expected"))
        for block in path.read_text("utf-8").split("\n\n")
        if "-->" in block
    ]
    wide = [block for block in blocks if any(re.match(r" \d{2,} \|", line) for line in block)]
    assert wide, "some golden diagnostic should point at line 10 or later"
    for block in blocks:
        assert len(_columns(block)) == 1, "\n".join(block)
