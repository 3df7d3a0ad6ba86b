"""The VS Code extension (editors/vscode/) run as VS Code would run it, short of VS Code itself
(which cannot be installed here): `vscode_host.js` loads `extension.js` under node with the
real `vscode-languageclient` the package depends on (installed from its package-lock.json by
`make test`) and a `vscode` module of its own, so the client starts the real `flowlang lsp`,
sends it the documents its selector picks, and hands its diagnostics to the editor.

Also the manifest against VS Code's contribution points, and the language configuration's
patterns as VS Code compiles them (JavaScript regular expressions). docs/editors.md says what is
verified and what is not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.editors.textmate import tokenize
from tests.requirements import missing

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
HOST = Path(__file__).with_name("vscode_host.js")
CLIENT = VSCODE / "node_modules" / "vscode-languageclient"
BROKEN_FLOW = (
    'flow "Claims"\nserve messages on web\n\nstate start:\n    route to queue "Retial Banking"\n'
)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing("node is missing: scripts/ensure-system-packages nodejs installs it")
    if not (CLIENT / "package.json").is_file():
        missing(f"{CLIENT} is missing: `make editor-packages` (npm ci in editors/vscode)")
    return node


def _host(workspace: Path, *files: str, setting: list[str] | None = None) -> list[dict[str, Any]]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if setting is not None:
        env["FLOWLANG_COMMAND"] = json.dumps(setting)
    done = subprocess.run(
        [_node(), str(HOST), str(VSCODE), str(workspace), *files],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, (events, done.stderr)
    return events


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "claims.flow").write_text(BROKEN_FLOW, "utf-8")
    (tmp_path / "notes.txt").write_text("not a flow\n", "utf-8")
    (tmp_path / "deployment.yaml").write_text(
        (ROOT / "examples" / "deployment.yaml").read_text("utf-8"), "utf-8"
    )
    return tmp_path


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


def test_the_extension_starts_flowlang_lsp_and_shows_its_diagnostics(workspace: Path) -> None:
    events = _host(workspace, "claims.flow", "notes.txt")
    (spawn,) = _of(events, "spawn")
    assert (spawn["command"], spawn["args"], spawn["cwd"]) == ("flowlang", ["lsp"], str(workspace))
    flow_uri = (workspace / "claims.flow").as_uri()
    # the selector: the flow is sent to the server, the text file is not
    opened = [e["uri"] for e in _of(events, "sent") if e["method"] == "textDocument/didOpen"]
    assert opened == [flow_uri]
    # the server's diagnostics reach the editor's collection, at the queue's name
    (shown,) = [e for e in _of(events, "diagnostics") if e["uri"] == flow_uri]
    (problem,) = shown["items"]
    assert problem["code"] == "FL101" and problem["severity"] == 0  # DiagnosticSeverity.Error
    assert problem["range"] == [4, 19, 4, 35]
    assert 'help: did you mean "Retail Banking"?' in problem["message"]
    # a deployment file changed on disk is watched for; deactivating stops the server cleanly
    assert _of(events, "watch") == [{"event": "watch", "glob": "**/deployment.y*ml"}]
    assert [e["method"] for e in _of(events, "sent")][-2:] == ["shutdown", "exit"]
    # the process ends (by itself after `exit`; the client kills one that lingers 2 s)
    assert len(_of(events, "server-exited")) == 1


def test_the_flowlang_command_setting_starts_that_server(workspace: Path) -> None:
    setting = [sys.executable, "-m", "flowlang", "lsp"]
    events = _host(workspace, "claims.flow", setting=setting)
    (spawn,) = _of(events, "spawn")
    assert [spawn["command"], *spawn["args"]] == setting
    assert [e["items"][0]["code"] for e in _of(events, "diagnostics") if e["items"]] == ["FL101"]


def test_the_manifest_fits_vs_codes_contribution_points() -> None:
    package = json.loads((VSCODE / "package.json").read_text("utf-8"))
    assert (VSCODE / package["main"]).is_file()
    contributes = package["contributes"]
    (language,) = contributes["languages"]
    assert language["id"] == "flowlang" and language["extensions"] == [".flow"]
    assert (VSCODE / language["configuration"]).is_file()
    (grammar,) = contributes["grammars"]
    assert grammar["language"] == language["id"]
    tm = json.loads((VSCODE / grammar["path"]).read_text("utf-8"))
    assert tm["scopeName"] == grammar["scopeName"] == "source.flowlang"
    # no activationEvents: VS Code 1.74+ activates on the contributed language by itself
    assert package["activationEvents"] == []
    assert package["engines"]["vscode"] == "^1.82.0"
    # the client library asks for the same VS Code as the extension declares
    lock = json.loads((VSCODE / "package-lock.json").read_text("utf-8"))
    client = lock["packages"]["node_modules/vscode-languageclient"]
    assert client["version"].startswith("9.") and client["engines"]["vscode"] == "^1.82.0"
    assert package["dependencies"] == lock["packages"][""]["dependencies"]
    # each setting has a type, a default and a description (the settings UI shows them)
    properties = contributes["configuration"]["properties"]
    assert set(properties) == {"flowlang.command"}
    assert all({"type", "default", "description"} <= set(p) for p in properties.values())
    assert properties["flowlang.command"]["default"] == ["flowlang", "lsp"]


def test_the_language_configuration_compiles_as_vs_code_compiles_it() -> None:
    node = _node()
    script = """
const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const patterns = [c.wordPattern, c.indentationRules.increaseIndentPattern,
  c.indentationRules.decreaseIndentPattern, ...c.onEnterRules.map((r) => r.beforeText)];
patterns.forEach((p) => new RegExp(p));
const increase = new RegExp(c.indentationRules.increaseIndentPattern);
const decrease = new RegExp(c.indentationRules.decreaseIndentPattern);
const outdent = new RegExp(c.onEnterRules[0].beforeText);
const all = (lines, pattern) => lines.map((l) => pattern.test(l));
console.log(JSON.stringify({
  opens: all(["state start:", "    if x > 1:  # why", "        on timeout:"], increase),
  notOpens: all(["    reply \\"Hi\\"", "# note:"], increase),
  closes: all(["    else:", "    elif x:", "        otherwise:"], decrease),
  outdents: all(["        end", "        go to state routing", "        break"], outdent),
}));
"""
    done = subprocess.run(
        [node, "-e", script, str(VSCODE / "language-configuration.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout)
    assert found == {
        "opens": [True, True, True],
        "notOpens": [False, False],
        "closes": [True, True, True],
        "outdents": [True, True, True],
    }


TOKENS = Path(__file__).with_name("textmate_tokens.js")


def _scopes(text: str, spans: list[tuple[int, int, int, str]]) -> dict[tuple[int, int], str]:
    """(line, column) of each non-blank character -> its scopes; spans in UTF-16 columns."""
    lines = text.split("\n")
    found: dict[tuple[int, int], str] = {}
    for line, start, end, scope in spans:
        units = 0
        for column, char in enumerate(lines[line - 1]):
            if start <= units < end and not char.isspace():
                found[(line, column)] = scope
            units += 2 if ord(char) > 0xFFFF else 1
    return found


def _utf16_spans(text: str) -> list[tuple[int, int, int, str]]:
    """`tokenize`'s tokens as (line, start, end, scope), columns in UTF-16 code units."""
    lines = text.split("\n")

    def units(line: int, column: int) -> int:
        return len(lines[line - 1][:column].encode("utf-16-le")) // 2

    return [
        (t.line, units(t.line, t.start), units(t.line, t.start + len(t.text)), t.scope)
        for t in tokenize(text)
    ]


def test_the_tests_tokenizer_scopes_every_character_as_vs_codes_engine_does() -> None:
    """vscode-textmate with vscode-oniguruma (the package's devDependencies) is the engine VS
    Code highlights with: on every flow of the repository (shipped, golden and broken ones), it
    and `textmate.py` (the snapshot's and the README picture's tokenizer) agree on each
    character's scopes."""
    node = _node()
    files = sorted([*(ROOT / "flows").glob("*.flow"), *(ROOT / "tests" / "cases").rglob("*.flow")])
    done = subprocess.run(
        [node, str(TOKENS), str(VSCODE), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    by_file: dict[str, list[tuple[int, int, int, str]]] = {}
    for row in done.stdout.splitlines():
        file, line, start, end, scopes = json.loads(row)
        by_file.setdefault(file, []).append((line, start, end, " ".join(scopes[1:])))
    differences = []
    for path in files:
        text = path.read_text("utf-8", errors="replace")
        theirs = _scopes(text, by_file.get(str(path), []))
        ours = _scopes(text, _utf16_spans(text))
        differences += [
            (path.name, at, ours.get(at), theirs.get(at))
            for at in sorted(set(ours) | set(theirs))
            if ours.get(at) != theirs.get(at)
        ]
    assert len(files) > 100 and differences == [], differences[:10]
