"""The README's picture of a flow with an error in an editor: an HTML page of the flow coloured by
the editor package's grammar (`textmate.py`), with the diagnostics the language server computes
for it (`flowlang.lsp.analysis`, what `flowlang lsp` publishes) underlined and shown as an editor
shows them, photographed by headless Chromium. It is a rendering, not a screenshot of VS Code.

The picture goes to out/screenshots/ (FLOWLANG_SCREENSHOTS names another folder: `make
screenshots` refreshes docs/screenshots/)."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from pathlib import Path

from flowlang.diagnostics import Diagnostic, suggested_name
from flowlang.lsp.analysis import DeploymentCache, analyse
from tests.editors.textmate import Token, tokenize
from tests.requirements import CHROMIUM, require_chromium

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("FLOWLANG_SCREENSHOTS") or ROOT / "out" / "screenshots")

FLOW = """# Claims: a customer reports a claim on WhatsApp.
flow "Claims"
serve messages on whatsapp

state start:
    reply "Hello {{ customer.name }}, what happened?"
    check schedule "Contact Center Hours":
        on closed:
            reply "We open at 8:00."
            end
        on open:
            pass
    route to queue "Retial Banking":
        skill "Claims" min 2
        timeout 10m
"""

COLOURS = {
    "comment": "#6a9955",
    "string": "#ce9178",
    "meta.template": "#9cdcfe",
    "constant.numeric": "#b5cea8",
    "constant.language": "#569cd6",
    "storage.type": "#569cd6",
    "entity.name": "#dcdcaa",
    "keyword.control": "#c586c0",
    "keyword.other": "#569cd6",
    "keyword.operator": "#d4d4d4",
    "support.function": "#dcdcaa",
    "variable": "#9cdcfe",
    "punctuation.definition.string": "#ce9178",  # a text's quotes, as Dark+ colours them
    "punctuation": "#d4d4d4",
}


def _colour(scope: str) -> str:
    inner = scope.split()[-1]
    return next((c for key, c in COLOURS.items() if inner.startswith(key)), "#d4d4d4")


def _line_html(text: str, tokens: list[Token], marks: list[tuple[int, int, str]]) -> str:
    """One line: each character coloured by its token, the diagnostics' columns underlined."""
    colour = ["#d4d4d4"] * len(text)
    for token in tokens:
        for i in range(token.start, min(token.start + len(token.text), len(text))):
            colour[i] = _colour(token.scope)
    out = []
    for i, char in enumerate(text):
        underline = next((kind for start, end, kind in marks if start <= i < end), "")
        style = f"color:{colour[i]}"
        if underline:
            style += f";text-decoration:underline wavy {underline};text-underline-offset:3px"
        out.append(f'<span style="{style}">{html.escape(char)}</span>')
    return "".join(out)


def render(flow: str, diagnostics: list[Diagnostic], name: str, shown: str) -> str:
    """The page: the flow coloured, every diagnostic underlined, the `shown` one's hover open,
    and the problems panel."""
    tokens = tokenize(flow)
    lines = flow.rstrip("\n").split("\n")
    rows = []
    for number, text in enumerate(lines, 1):
        marks = [
            (d.span.column - 1, d.span.end_column - 1, "#f14c4c" if d.is_error else "#cca700")
            for d in diagnostics
            if d.span.line == number
        ]
        mine = [t for t in tokens if t.line == number]
        rows.append(
            f'<div class="row"><span class="gutter">{number}</span>'
            f"<span>{_line_html(text, mine, marks)}</span></div>"
        )
        for d in diagnostics:
            if d.span.line == number and d.code == shown:
                fix = suggested_name(d.hint)
                rows.append(
                    '<div class="hover" style="margin-left:'
                    f'{d.span.column + 3}ch"><b>{html.escape(d.message)}</b> '
                    f'<span class="code">flowlang({d.code})</span><br>'
                    f"help: {html.escape(d.hint)}"
                    + (
                        f"<div class='fix'>Quick Fix: Change to \"{html.escape(fix)}\"</div>"
                        if fix
                        else ""
                    )
                    + "</div>"
                )
    problems = "".join(
        f"<div><span style='color:{'#f14c4c' if d.is_error else '#cca700'}'>●</span> "
        f"{html.escape(d.message)} "
        f'<span class="code">flowlang({d.code}) [Ln {d.span.line}, '
        f"Col {d.span.column}]</span></div>"
        for d in diagnostics
    )
    return f"""<!doctype html><meta charset="utf-8"><style>
body {{ margin:0; background:#1e1e1e; color:#d4d4d4; font: 14px/1.5 "DejaVu Sans Mono", monospace }}
.tab {{ background:#252526; color:#fff; padding:6px 14px; font-family: sans-serif; font-size:13px }}
.row {{ white-space:pre }} .gutter {{ display:inline-block; width:3ch; margin-right:2ch;
 text-align:right; color:#858585 }}
.hover {{ background:#252526; border:1px solid #454545; padding:6px 10px; margin:2px 0 4px;
 width:max-content; font-size:13px; white-space:normal; max-width:70ch }}
.code {{ color:#858585 }} .fix {{ color:#3794ff; margin-top:4px }}
.panel {{ border-top:1px solid #454545; margin-top:10px; padding:6px 14px; font-size:13px }}
.panel h4 {{ margin:0 0 4px; font: 11px sans-serif; letter-spacing:.08em; color:#bbb }}
</style><div class="tab">{html.escape(name)}</div><div style="padding:8px 0">
{"".join(rows)}</div><div class="panel"><h4>PROBLEMS</h4>{problems}</div>"""


def test_the_readme_picture_of_a_flow_with_an_error(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "deployment.yaml", tmp_path / "deployment.yaml")
    flow = tmp_path / "claims.flow"
    flow.write_text(FLOW, "utf-8")
    result = analyse(FLOW, str(flow), DeploymentCache())
    assert [d.code for d in result.diagnostics] == ["FL302", "FL101", "FL102"]
    page = render(FLOW, result.diagnostics, "claims.flow", "FL101")
    assert "unknown queue &quot;Retial Banking&quot;" in page
    assert "did you mean &quot;Retail Banking&quot;?" in page
    (tmp_path / "editor.html").write_text(page, "utf-8")
    require_chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    picture = SCREENSHOTS / "editor-diagnostics.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=860,640",
            f"--screenshot={picture}",
            (tmp_path / "editor.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
