"""The editor package's TextMate grammar, tried on every shipped flow: each token gets a scope (no
word or symbol falls through unhighlighted), and the tokens of the shipped messaging flow match
a snapshot (`tests/cases/editors/messaging.tokens`; `pytest --update-golden` rewrites it).

The tokens come from `textmate.py`, which runs the grammar's rules as an editor does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.editors.textmate import GRAMMAR, VSCODE, tokenize

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "cases" / "editors" / "messaging.tokens"
SHIPPED = sorted([*(ROOT / "flows").rglob("*.flow"), *(ROOT / "tests/cases/stages").glob("*.flow")])


def test_the_package_names_the_grammar_and_language_configuration() -> None:
    package = json.loads((VSCODE / "package.json").read_text("utf-8"))
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["extensions"] == [".flow"] and grammar["language"] == language["id"]
    assert (VSCODE / grammar["path"]).is_file() and (VSCODE / language["configuration"]).is_file()
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.flowlang"
    assert (VSCODE / package["main"]).is_file()
    assert "flowlang" in (VSCODE / "extension.js").read_text("utf-8")
    assert package["contributes"]["configuration"]["properties"]["flowlang.command"]["default"] == [
        "flowlang",
        "lsp",
    ]
    config = json.loads((VSCODE / "language-configuration.json").read_text("utf-8"))
    assert config["comments"]["lineComment"] == "#"
    opens = re.compile(config["indentationRules"]["increaseIndentPattern"])
    assert opens.match("state start:") and opens.match("    on resolved:  # done")
    assert not opens.match('    reply "a: b"') and not opens.match("# note:")


@pytest.mark.parametrize("flow", SHIPPED, ids=lambda p: p.name)
def test_every_token_of_the_shipped_flows_is_scoped(flow: Path) -> None:
    unscoped = [t for t in tokenize(flow.read_text("utf-8")) if not t.scope]
    assert unscoped == [], unscoped[:5]


def test_the_scopes_of_the_constructs() -> None:
    text = (
        'state start:  # begin\n    if message.text contains "hi {{ customer.name }}" and x == 2:\n'
        '        route to queue "Retail Banking":\n            timeout 1h30m\n'
        "    set claim to lower(message.text)\n"
    )
    scopes = {(t.text, t.scope) for t in tokenize(text)}
    assert ("state", "storage.type.state.flowlang") in scopes
    assert ("start", "entity.name.function.state.flowlang") in scopes
    assert ("# begin", "comment.line.number-sign.flowlang") in scopes
    assert ("if", "keyword.control.flowlang") in scopes
    assert ("contains", "keyword.operator.flowlang") in scopes
    assert (
        "{{ customer.name }}",
        "string.quoted.double.flowlang meta.template.expression.flowlang",
    ) in scopes
    assert ("route", "keyword.other.flowlang") in scopes
    assert ("1h30m", "constant.numeric.duration.flowlang") in scopes
    assert ("2", "constant.numeric.flowlang") in scopes
    assert ("lower", "support.function.flowlang") in scopes
    assert ("claim", "variable.other.flowlang") in scopes


def test_snapshot_of_the_messaging_flow(request: pytest.FixtureRequest) -> None:
    tokens = tokenize((ROOT / "flows" / "messaging.flow").read_text("utf-8"))
    text = "".join(f"{t.line}:{t.start + 1} {t.scope} {t.text!r}\n" for t in tokens)
    if request.config.getoption("--update-golden"):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text, "utf-8")
    assert SNAPSHOT.exists(), "run pytest --update-golden to create it"
    assert text == SNAPSHOT.read_text("utf-8")
