"""mypy reports a dispatch that forgets an operation or a statement kind: every place that
switches on them ends in `assert_never` (docs/architecture.md, "Adding a language construct")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flowlang.compiler.ir import ARGS_BY_OP

ROOT = Path(__file__).resolve().parents[2]


def _mypy(tmp_path: Path, source: str) -> str:
    module = tmp_path / "dispatch.py"
    module.write_text(source, "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", str(module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.stdout


def _dispatch(classes: list[str]) -> str:
    cases = "".join(f"        case ir.{name}():\n            return 1\n" for name in classes)
    return (
        "from typing import assert_never\n\nfrom flowlang.compiler import ir\n\n\n"
        "def step(a: ir.OpArgs) -> int:\n    match a:\n"
        f"{cases}        case _:\n            assert_never(a)\n"
    )


def test_a_dispatch_over_every_operation_passes_and_one_without_keep_waiting_is_reported(
    tmp_path: Path,
) -> None:
    every = sorted(cls.__name__ for cls in ARGS_BY_OP.values())
    assert "Success" in _mypy(tmp_path, _dispatch(every))
    forgot = _mypy(tmp_path, _dispatch([c for c in every if c != "KeepWaitingArgs"]))
    assert 'incompatible type "KeepWaitingArgs"; expected "Never"' in forgot


def test_a_statement_kind_forgotten_in_a_dispatch_is_reported(tmp_path: Path) -> None:
    source = (
        "from typing import assert_never\n\nfrom flowlang.language import ast\n\n\n"
        "def kind(stmt: ast.Statement) -> str:\n"
        "    if isinstance(stmt, ast.End):\n        return 'end'\n"
        "    assert_never(stmt)\n"
    )
    reported = _mypy(tmp_path, source)
    assert 'to "assert_never" has incompatible type' in reported and "Reply" in reported
