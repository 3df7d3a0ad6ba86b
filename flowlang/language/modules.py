"""Shared modules: `use "common/identify.flow"` in a flow (or a module) names a module file,
relative to the file that uses it; its tasks and variables join the flow's before the checker
runs, so the compiled graph holds them (and its version changes when a module does).

A module file starts with `module "Name"` and holds `use` lines, variables and tasks only
(FL326, checked by the checker). Problems: a file that does not exist (FL132), a flow where a
module was meant (FL133), a task or variable named like one already there (FL134), modules that
use each other in a cycle (FL325, naming the files). A module used twice (directly and through
another) joins once. Diagnostics inside a module name the module's file: its AST's spans do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Span, error
from flowlang.language import ast
from flowlang.language.parser import ParseResult

Loader = Callable[[Path], ParseResult]
"""Reads and parses a module file (`workspace.parse_file`, or an editor's open document)."""


@dataclass
class Resolved:
    """A flow with its modules' tasks and variables, and what reading them found."""

    flow: ast.Flow
    diagnostics: list[Diagnostic] = field(default_factory=list)
    modules: dict[str, ParseResult] = field(default_factory=dict)  # by path, in order used


def module_path(using: str | Path, written: str) -> Path:
    """The module a `use` line names: relative to the using file's folder, normalised."""
    return Path(os.path.normpath(Path(using).parent / written))


def resolve_uses(
    flow: ast.Flow, path: str | Path, load: Loader, inside: Path | None = None
) -> Resolved:
    """`flow` (the file `path`) with the tasks and variables of every module it uses, directly
    or through other modules, appended to its declarations. With `inside` (a flow published to
    the service), a module outside that folder is not read: FL132, as for a missing file."""
    out = Resolved(flow)
    if not flow.uses:
        return out
    joined: list[ast.Declaration] = []
    names: dict[tuple[str, str], Span] = {
        (_kind(d), d.name): d.span
        for d in flow.declarations
        if isinstance(d, ast.Task | ast.VarDecl | ast.Param)
    }

    def visit(current: ast.Flow, current_path: Path, chain: list[Path]) -> None:
        for use in current.uses:
            target = module_path(current_path, use.path)
            if target in chain:
                cycle = " -> ".join(str(p) for p in (*chain[chain.index(target) :], target))
                out.diagnostics.append(
                    error(
                        codes.MODULE_CYCLE,
                        f"modules use each other in a cycle: {cycle}",
                        use.path_span,
                        "back to a file already using it",
                        hint="move what both need into a third module that uses neither",
                    )
                )
                continue
            if str(target) in out.modules:
                continue  # used already (directly or through another module): joins once
            if inside is not None and not _within(target, inside):
                out.diagnostics.append(
                    error(
                        codes.MODULE_NOT_FOUND,
                        f"{use.path!r} is outside the flows folder: no module is read from there",
                        use.path_span,
                        "outside the flows folder",
                        hint=f"a published flow uses modules from {inside} and the folders in it",
                    )
                )
                continue
            if not target.is_file():
                out.diagnostics.append(
                    error(
                        codes.MODULE_NOT_FOUND,
                        f"no module file {str(target)!r}",
                        use.path_span,
                        "no such file",
                        hint=f"the path is relative to the folder of {current_path}",
                    )
                )
                continue
            result = load(target)
            out.modules[str(target)] = result
            out.diagnostics.extend(result.diagnostics)
            module = result.flow
            if module is None:
                continue  # its syntax errors are reported in its own file
            if not module.module:
                out.diagnostics.append(
                    error(
                        codes.NOT_A_MODULE,
                        f"{str(target)!r} is a flow, not a module",
                        use.path_span,
                        "not a module",
                        hint='a module file starts with  module "Name"  and holds tasks',
                    )
                )
                continue
            visit(module, target, [*chain, target])
            for decl in module.declarations:
                if isinstance(decl, ast.Task | ast.VarDecl):
                    if _clashes(decl, names, out.diagnostics):
                        continue
                    joined.append(decl)

    visit(flow, Path(os.path.normpath(path)), [Path(os.path.normpath(path))])
    out.flow = ast.Flow(
        flow.span, flow.name, (*flow.declarations, *joined), flow.comments, flow.module
    )
    return out


def _within(target: Path, folder: Path) -> bool:
    """Whether `target` is in `folder` or below, links followed (no `..` or link leads out)."""
    return target.resolve().is_relative_to(folder.resolve())


def _kind(decl: ast.Task | ast.VarDecl | ast.Param) -> str:
    return "task" if isinstance(decl, ast.Task) else "variable"


def _clashes(
    decl: ast.Task | ast.VarDecl,
    names: dict[tuple[str, str], Span],
    diagnostics: list[Diagnostic],
) -> bool:
    key = (_kind(decl), decl.name)
    first = names.get(key)
    if first is None:
        names[key] = decl.span
        return False
    diagnostics.append(
        error(
            codes.MODULE_NAME_CLASH,
            f"{key[0]} {decl.name!r} is declared both in {first.file} and in {decl.span.file}",
            decl.span,
            "declared again here",
            hint="rename one of them: a flow and the modules it uses share one set of names",
            related=((first, "first declared here"),),
        )
    )
    return True
