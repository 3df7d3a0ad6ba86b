"""After a syntax error the rest of the file is still checked for what a line has wrong on its
own; whole-flow checks wait until the syntax is fixed."""

from __future__ import annotations

from pathlib import Path

from flowlang import codes
from flowlang.workspace import CHECKED_AFTER_SYNTAX_ERRORS, validate

ROOT = Path(__file__).resolve().parents[2]

FLOW = """flow "Claims"
serve messages on whatsapp

state start:
    reply "Hi"
    if message.text = "claim":
        route to queue "Retial Banking"
    add skill "Lons"
    go to state nowhere
"""


def test_a_syntax_error_does_not_hide_the_unknown_names_of_other_lines(tmp_path: Path) -> None:
    flow = tmp_path / "claims.flow"
    flow.write_text(FLOW, "utf-8")
    ws = validate([flow], ROOT / "examples" / "deployment.yaml")
    found = [(d.code, d.span.line) for d in ws.diagnostics]
    assert found[0] == (codes.EQUALS_FOR_COMPARISON, 6)
    assert (codes.UNKNOWN_SKILL, 8) in found  # a line after the error, checked all the same
    # the route sits in the block of the line in error: replaced by a harmless block opener,
    # its body is still parsed and checked
    assert (codes.UNKNOWN_QUEUE, 7) in found
    # whole-flow checks wait: the line in error might have been the state's declaration
    assert all(code != codes.UNKNOWN_STATE for code, _ in found)
    assert all(d.is_error for d in ws.diagnostics)
    assert ws.flows == {}  # nothing is compiled from a file with syntax errors


def test_without_syntax_errors_every_check_runs(tmp_path: Path) -> None:
    flow = tmp_path / "claims.flow"
    flow.write_text(FLOW.replace(" = ", " == "), "utf-8")
    ws = validate([flow], ROOT / "examples" / "deployment.yaml")
    found = {d.code for d in ws.diagnostics}
    assert {codes.UNKNOWN_QUEUE, codes.UNKNOWN_SKILL, codes.UNKNOWN_STATE} <= found


def test_the_codes_checked_after_a_syntax_error_are_registered_codes() -> None:
    assert set(codes.ALL_CODES) >= CHECKED_AFTER_SYNTAX_ERRORS
    assert codes.UNKNOWN_STATE not in CHECKED_AFTER_SYNTAX_ERRORS
