"""`transfer to flow` checked against the flows validated together (FL131), and formatted."""

from __future__ import annotations

import os
from pathlib import Path

from flowlang import codes
from flowlang.language.formatter import format_text
from flowlang.workspace import render, validate

MAIN = """\
flow "Main line"
serve messages on web

state start:
    if message.text contains "card":
        transfer to flow "Card services"
    transfer to flow "Card service"
"""
CARDS = """\
flow "Card services"
serve messages on whatsapp

state start:
    route to queue "Cards"
"""


def _write(tmp_path: Path) -> list[Path]:
    (tmp_path / "main.flow").write_text(MAIN, "utf-8")
    (tmp_path / "cards.flow").write_text(CARDS, "utf-8")
    return [tmp_path / "main.flow", tmp_path / "cards.flow"]


def test_fl131_a_flow_not_among_those_validated_together(tmp_path: Path) -> None:
    _write(tmp_path)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        ws = validate([Path("main.flow"), Path("cards.flow")])
        shown = render(ws)
    finally:
        os.chdir(cwd)
    unknown = [d for d in ws.diagnostics if d.code == codes.UNKNOWN_FLOW]
    assert [(d.span.file, d.span.line) for d in unknown] == [("main.flow", 7)]
    assert 'no flow named "Card service" is loaded beside this one' in shown
    assert 'did you mean "Card services"?' in shown


def test_a_flow_validated_alone_is_not_checked_against_others(tmp_path: Path) -> None:
    main, _cards = _write(tmp_path)
    ws = validate([main])
    assert [d.code for d in ws.diagnostics if d.code == codes.UNKNOWN_FLOW] == []


def test_transfer_formats_canonically() -> None:
    messy = MAIN.replace('transfer to flow "Card service"', 'transfer  to flow   "X"')
    result = format_text(messy, "m.flow")
    assert result.text is not None and '    transfer to flow "X"\n' in result.text
