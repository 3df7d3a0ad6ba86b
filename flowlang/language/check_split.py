"""`split` and `milestone`, statically: a split's shares add up to 100 and its branches have
distinct names (FL213, FL127); milestones whose names differ only in case or spacing (FL323)."""

from __future__ import annotations

from collections.abc import Iterable

from flowlang import codes
from flowlang.diagnostics import Diagnostic, error, warning
from flowlang.language import ast


def split_problems(stmt: ast.Split) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    seen: dict[str, ast.SplitBranch] = {}
    for branch in stmt.branches:
        if (first := seen.get(branch.name)) is not None:
            found.append(
                error(
                    codes.DUPLICATE_SPLIT_BRANCH,
                    f"split branch {branch.name!r} is named twice",
                    branch.span,
                    "second time",
                    hint="each branch needs its own name: reports count conversations per branch",
                    related=((first.span, "first named here"),),
                )
            )
        seen.setdefault(branch.name, branch)
    total = sum(round(b.percent * 100) for b in stmt.branches)
    if total != 10_000 or any(b.percent > 100 for b in stmt.branches):
        shares = " + ".join(b.source or f"{b.percent:g}%" for b in stmt.branches)
        found.append(
            error(
                codes.SPLIT_NOT_100,
                f"the split's shares add up to {total / 100:g}%, not 100%",
                stmt.span if len(stmt.branches) > 1 else stmt.branches[0].span,
                shares,
                hint="give every conversation a branch: the percentages must add up to 100",
            )
        )
    return found


def milestone_problems(milestones: Iterable[ast.Milestone]) -> list[Diagnostic]:
    """A milestone written at several places is one milestone (reached by several paths);
    two names that differ only in case or spacing are counted apart, which surprises."""
    first: dict[str, ast.Milestone] = {}
    found: list[Diagnostic] = []
    for stmt in milestones:
        key = " ".join(stmt.name.casefold().split())
        other = first.setdefault(key, stmt)
        if other.name != stmt.name:
            found.append(
                warning(
                    codes.MILESTONE_LOOKALIKE,
                    f"milestone {stmt.name!r} differs from {other.name!r} only in case or "
                    "spacing; reports count them as two milestones",
                    stmt.span,
                    hint=f"write {other.name!r} in both places",
                    related=((other.span, "written this way here"),),
                )
            )
    return found
