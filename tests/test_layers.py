"""Imports go one way down the pipeline; the grammar ships inside the package."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "flowlang"

# A module may import from its own layer or lower ones, never from a higher one.
LAYERS = [
    {
        "flowlang.codes",
        "flowlang.diagnostics",
        "flowlang.errors",
        "flowlang.durations",
        "flowlang.events",
        "flowlang.templates",
        "flowlang.private_files",
        "flowlang.batch",  # the garbage collector paused while a flow loads
        "flowlang.runtime.ports",  # the engine's contracts: protocols and plain values only
        "flowlang.runtime.state",  # a flow's state and its JSON form, which conversations carry
        "flowlang.runtime.users",  # API tokens and user names, as every store checks them
        "flowlang.runtime.phones",  # E.164, as the store, the channels and the engine compare
        "flowlang.account_names",  # an account found by any of its spellings, everywhere
        # a flow's expressions, as the interpreter and the ACD's agent conditions evaluate them
        "flowlang.runtime.evaluate",
        "flowlang.runtime.clock",
        "flowlang.runtime.detect",
    },
    {"flowlang.language"},
    # The in-memory parts sit beside the real ones they stand in for; the runtime's engine
    # modules import none of them (`test_the_engine_imports_no_..._implementation`).
    {
        "flowlang.config",
        "flowlang.channels",
        "flowlang.store",
        "flowlang.acd",
        "flowlang.runtime.memory",
    },
    {"flowlang.compiler", "flowlang.workspace"},
    {"flowlang.runtime"},
    {
        "flowlang.reporting",
        "flowlang.assembly",
        "flowlang.flow_routes",
        "flowlang.project",
        "flowlang.harness",
    },
    # The commands are below the CLI that registers them: none imports `flowlang.cli`.
    {"flowlang.commands", "flowlang.service", "flowlang.web", "flowlang.lsp"},
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
    """(imported module, is it type-only) for every flowlang import in the file, wherever it
    is: an import inside a function is an import. Only an `if TYPE_CHECKING:` block's are
    type-only (they run never)."""
    tree = ast.parse(path.read_text("utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "flowlang":
            # `from flowlang import codes` imports the module flowlang.codes (any other name is
            # the package's own, its top layer); `__version__` is the package's metadata
            found.extend(
                (f"flowlang.{a.name}", id(node) in type_only)
                for a in node.names
                if not a.name.startswith("__")
            )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flowlang"):
            found.append((str(node.module), id(node) in type_only))
        elif isinstance(node, ast.ImportFrom) and node.module is None and node.level:
            raise AssertionError(f"{path}: relative import; write the flowlang module's name")
        elif isinstance(node, ast.Import):
            found.extend(
                (a.name, id(node) in type_only) for a in node.names if a.name.startswith("flowlang")
            )
    return found


def module_name(path: Path, root: Path = ROOT) -> str:
    module = "flowlang." + ".".join(path.relative_to(root).with_suffix("").parts)
    return module.removesuffix(".__init__")


def test_no_module_imports_a_higher_layer() -> None:
    problems = []
    checked = 0
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        own = layer_of(module)
        for imported, type_only in imports(path):
            checked += 1
            if layer_of(imported) > own and not type_only:
                problems.append(f"{module} imports {imported}")
    assert checked > 50
    assert problems == []


# What the Engine is plugged into, never imported by it: `flowlang.assembly` puts them together.
IMPLEMENTATIONS = (
    "flowlang.acd",
    "flowlang.store",
    "flowlang.channels",
    "flowlang.runtime.memory",
    "flowlang.assembly",
    "flowlang.project",
)
# In runtime/ as implementations of its ports (in memory; from a deployment's accounts).
RUNTIME_IMPLEMENTATIONS = {"flowlang.runtime.memory", "flowlang.runtime.accounts"}


def engine_import_problems(root: Path) -> list[str]:
    """Imports of an implementation by the runtime's engine modules, type-only ones included."""
    problems = []
    for path in sorted((root / "runtime").rglob("*.py")):
        module = module_name(path, root)
        if module in RUNTIME_IMPLEMENTATIONS:
            continue
        for imported, _type_only in imports(path):
            if imported.startswith(IMPLEMENTATIONS) or imported in RUNTIME_IMPLEMENTATIONS:
                problems.append(f"{module} imports {imported}")
    return problems


def test_the_engine_imports_no_store_acd_or_channel_implementation() -> None:
    """docs/architecture.md: the runtime depends on the compiled graph and on protocols, never
    on a store, ACD or channel implementation."""
    assert engine_import_problems(ROOT) == []


def test_the_engine_rule_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    """The rule has no exemption for an import deferred into a function."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "sneaky.py").write_text(
        "def build():\n    from flowlang.acd import SkillsAcd\n    return SkillsAcd()\n"
    )
    assert engine_import_problems(tmp_path) == ["flowlang.runtime.sneaky imports flowlang.acd"]


def test_the_service_reads_the_acd_only_through_its_port() -> None:
    """docs/architecture.md: the service shows agents and interactions from the `Acd` port's
    views and catches the port's `AcdError`; it imports nothing of the built-in ACD, so any
    `Acd` plugged in works there."""
    found = [
        f"{module_name(path)} imports {imported}"
        for path in sorted((ROOT / "service").rglob("*.py"))
        for imported, _type_only in imports(path)
        if imported == "flowlang.acd" or imported.startswith("flowlang.acd.")
    ]
    assert found == []


def test_the_commands_do_not_import_the_cli_that_registers_them() -> None:
    """No cli <-> commands cycle: what a command and the CLI share lives in `commands/`."""
    found = [
        f"{module_name(path)} imports {imported}"
        for path in sorted((ROOT / "commands").rglob("*.py"))
        for imported, _type_only in imports(path)
        if imported == "flowlang.cli" or imported.startswith("flowlang.cli.")
    ]
    assert found == []
    assert layer_of("flowlang.commands.store") < layer_of("flowlang.cli")


def test_language_does_not_know_the_runtime() -> None:
    for path in (ROOT / "language").rglob("*.py"):
        for imported, _deferred in imports(path):
            assert not imported.startswith(("flowlang.runtime", "flowlang.compiler")), path


def test_the_grammar_ships_as_package_data() -> None:
    grammar = resources.files("flowlang.language").joinpath("grammar.lark").read_text("utf-8")
    assert "flow_header" in grammar
