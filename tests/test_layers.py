"""Imports go one way down the pipeline; the grammar ships inside the package."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "flowlang"

# A module may import from its own layer or lower ones, never from a higher one.
LAYERS = [
    {
        "flowlang.diagnostics",
        "flowlang.errors",
        "flowlang.durations",
        "flowlang.events",
        "flowlang.templates",
        "flowlang.private_files",
        "flowlang.runtime.ports",  # the engine's contracts: protocols and plain values only
        "flowlang.runtime.users",  # API tokens and user names, as every store checks them
    },
    {"flowlang.language"},
    # The in-memory parts sit beside the real ones they stand in for.
    {
        "flowlang.config",
        "flowlang.channels",
        "flowlang.store",
        "flowlang.acd",
        "flowlang.runtime.memory",
    },
    {"flowlang.compiler", "flowlang.workspace"},
    {"flowlang.runtime"},
    {"flowlang.reporting", "flowlang.project", "flowlang.dryrun", "flowlang.flowtest"},
    {"flowlang.cli", "flowlang.__main__", "flowlang"},
]


def layer_of(module: str) -> int:
    """The layer of the longest matching prefix (`flowlang.runtime.ports` before `flowlang`)."""
    best, length = -1, -1
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, is it inside a TYPE_CHECKING or function-level deferred import)."""
    tree = ast.parse(path.read_text("utf-8"))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flowlang"):
            found.append((node.module, node.col_offset > 0))
        elif isinstance(node, ast.Import):
            found.extend(
                (a.name, node.col_offset > 0) for a in node.names if a.name.startswith("flowlang")
            )
    return found


def test_no_module_imports_a_higher_layer() -> None:
    problems = []
    checked = 0
    for path in sorted(ROOT.rglob("*.py")):
        module = "flowlang." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        own = layer_of(module)
        for imported, deferred in imports(path):
            checked += 1
            if layer_of(imported) > own and not deferred:
                problems.append(f"{module} imports {imported}")
    assert checked > 50
    assert problems == []


def test_language_does_not_know_the_runtime() -> None:
    for path in (ROOT / "language").rglob("*.py"):
        for imported, _deferred in imports(path):
            assert not imported.startswith(("flowlang.runtime", "flowlang.compiler")), path


def test_the_grammar_ships_as_package_data() -> None:
    grammar = resources.files("flowlang.language").joinpath("grammar.lark").read_text("utf-8")
    assert "flow_header" in grammar
