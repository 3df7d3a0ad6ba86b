"""Every package says in its docstring what it takes and what it gives."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "flowlang"


def test_every_package_docstring_says_what_it_is_for() -> None:
    vague = {}
    packages = sorted(ROOT.rglob("__init__.py"))
    for init in packages:
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8"))) or ""
        name = init.parent.name
        if len(doc.split()) < 10 or doc.strip(" .").lower() == name:
            vague[str(init.relative_to(ROOT.parent))] = doc
    assert len(packages) >= 10
    assert vague == {}
