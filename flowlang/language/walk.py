"""Walking the AST: the statements nested in a block, and whether a statement leaves its block.

Every statement kind is listed here (mypy reports a kind added to `ast.Statement` and forgotten).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_never

from flowlang.language import ast


def walk(block: ast.Block) -> Iterator[ast.Statement]:
    """Every statement of a block, nested ones included, in source order."""
    for stmt in block:
        yield stmt
        yield from walk_children(stmt)


def walk_children(stmt: ast.Statement) -> Iterator[ast.Statement]:
    """Every statement nested in `stmt`, in source order."""
    for child in child_blocks(stmt):
        yield from walk(child)


def child_blocks(stmt: ast.Statement) -> list[ast.Block]:
    """The nested blocks of a statement, in source order."""
    match stmt:
        case ast.If():
            blocks = [b.body for b in stmt.branches]
            return [*blocks, stmt.else_body] if stmt.else_body is not None else blocks
        case ast.Switch():
            blocks = [c.body for c in stmt.cases]
            return [*blocks, stmt.default] if stmt.default is not None else blocks
        case ast.Match():
            blocks = [w.body for w in stmt.whens]
            return [*blocks, stmt.otherwise] if stmt.otherwise is not None else blocks
        case ast.Repeat() | ast.While():
            return [stmt.body]
        case ast.Split():
            return [b.body for b in stmt.branches]
        case (
            ast.Ask()
            | ast.Recognize()
            | ast.RouteQueue()
            | ast.RouteAgent()
            | ast.BotHandoff()
            | ast.DataAction()
            | ast.CallTask()
            | ast.CheckSchedule()
            | ast.Survey()
        ):
            return [b.body for b in stmt.branches]
        case (
            ast.Reply()
            | ast.SetVariable()
            | ast.SetPriority()
            | ast.SetLanguage()
            | ast.SetData()
            | ast.AddSkill()
            | ast.RemoveSkill()
            | ast.MarkNotActionable()
            | ast.LinkCustomer()
            | ast.GoToState()
            | ast.OutcomeStmt()
            | ast.End()
            | ast.Break()
            | ast.Pass()
            | ast.KeepWaiting()
            | ast.Log()
            | ast.Milestone()
            | ast.TransferFlow()
        ):
            return []
        case _:
            assert_never(stmt)


def is_terminal(stmt: ast.Statement) -> bool:
    """True when control never continues to the next statement of the same block."""
    if isinstance(
        stmt,
        ast.End
        | ast.GoToState
        | ast.OutcomeStmt
        | ast.Break
        | ast.KeepWaiting
        | ast.TransferFlow
        | ast.MarkNotActionable
        | ast.RouteQueue,
    ):
        return True
    if isinstance(stmt, ast.If):
        return (
            stmt.else_body is not None
            and all(block_terminal(b.body) for b in stmt.branches)
            and block_terminal(stmt.else_body)
        )
    if isinstance(stmt, ast.Split):  # one branch always runs
        return all(block_terminal(b.body) for b in stmt.branches)
    if isinstance(stmt, ast.Switch):
        return (
            stmt.default is not None
            and all(block_terminal(c.body) for c in stmt.cases)
            and block_terminal(stmt.default)
        )
    return False


def block_terminal(block: ast.Block) -> bool:
    """True when some statement of the block always leaves it."""
    return any(is_terminal(s) for s in block)
