"""`flowlang lsp` driven as an editor drives it: a subprocess speaking JSON-RPC over stdio.

Each test opens a flow in a project folder with the shipped deployment file beside it (found as
`flowlang validate` finds it) and checks what the editor would show."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowlang.cli import main
from tests.lsp.client import LspClient

ROOT = Path(__file__).resolve().parents[2]

FLOW = """flow "Insurance"
serve messages on whatsapp

param greeting: text = "Hello"
var claim: text

state start:
    reply "{{ greeting }}, ご用件は？"
    if message.text contains "claim":
        go to state routng
    route to queue "Retial Banking"

state routing:
    call task triage
    hand off to bot "FAQ Bot" wait 10m:
        on resolved:
            end
        on escalate:
            route to queue "Loans"
        on failure:
            route to queue "Loans"
        on timeout:
            route to queue "Loans"

task triage:
    set claim to message.text
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "examples" / "deployment.yaml", tmp_path / "deployment.yaml")
    (tmp_path / "claims.flow").write_text(FLOW, "utf-8")
    return tmp_path


@pytest.fixture
def client(project: Path) -> Iterator[LspClient]:
    with LspClient(project) as running:
        yield running


def _line(text: str, needle: str) -> tuple[int, int]:
    """0-based line and UTF-16 column of the first `needle` in `text`."""
    for number, line in enumerate(text.split("\n")):
        if needle in line:
            prefix = line[: line.index(needle)]
            return number, len(prefix.encode("utf-16-le")) // 2
    raise AssertionError(needle)


def test_the_server_says_what_it_can_do(client: LspClient) -> None:
    caps = client.initialize["capabilities"]
    assert client.initialize["serverInfo"]["name"] == "flowlang"
    for capability in (
        "completionProvider",
        "hoverProvider",
        "definitionProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
        "codeActionProvider",
    ):
        assert caps.get(capability), capability


def test_diagnostics_on_open_are_validates_with_the_deployment_found_beside_the_flow(
    client: LspClient, project: Path
) -> None:
    uri = client.open(project / "claims.flow")
    diagnostics = client.diagnostics(uri)
    by_code = {d["code"]: d for d in diagnostics}
    assert set(by_code) >= {"FL101", "FL110"}
    queue = by_code["FL101"]
    assert queue["severity"] == 1 and queue["source"] == "flowlang"
    assert queue["message"].startswith('unknown queue "Retial Banking"')
    assert 'help: did you mean "Retail Banking"?' in queue["message"]
    line, column = _line(FLOW, '"Retial Banking"')
    assert queue["range"] == {
        "start": {"line": line, "character": column},
        "end": {"line": line, "character": column + len('"Retial Banking"')},
    }
    # the same findings, codes and places as `flowlang validate` gives for the saved file
    result = CliRunner().invoke(
        main, ["validate", str(project / "claims.flow"), "--format", "json"]
    )
    validated = json.loads(result.output)
    assert sorted((d["code"], d["line"] - 1, d["column"] - 1) for d in validated) == sorted(
        (d["code"], d["range"]["start"]["line"], d["range"]["start"]["character"])
        for d in diagnostics
    )


def test_diagnostics_follow_each_change_and_clear_when_fixed(
    client: LspClient, project: Path
) -> None:
    uri = client.open(project / "claims.flow")
    assert client.diagnostics(uri, 1)
    fixed = FLOW.replace("Retial", "Retail").replace("routng", "routing")
    client.change(uri, 2, fixed)
    assert client.diagnostics(uri, 2) == []
    client.change(uri, 3, fixed.replace('route to queue "Loans"', 'route to queue "Lons"', 1))
    (only,) = client.diagnostics(uri, 3)
    assert only["code"] == "FL101" and 'did you mean "Loans"?' in only["message"]


def test_a_syntax_error_is_shown_while_typing_with_the_rest_still_checked(
    client: LspClient, project: Path
) -> None:
    uri = client.open(project / "claims.flow")
    client.change(uri, 2, FLOW.replace("state routing:", "state routing"))
    codes = [d["code"] for d in client.diagnostics(uri, 2)]
    assert "FL010" in codes  # a missing ':'
    assert "FL101" in codes  # the unknown queue of another line is still reported
    assert "FL110" not in codes  # whole-flow checks wait for the syntax to be fixed


def test_columns_are_utf16_code_units_after_cjk_and_emoji(client: LspClient, project: Path) -> None:
    text = FLOW.replace('reply "{{ greeting }}, ご用件は？"', 'reply "🙂 ご用件は？" to nobody')
    uri = client.open(project / "claims.flow", text)
    (syntax,) = [d for d in client.diagnostics(uri) if d["code"] == "FL001"]
    line, column = _line(text, "to nobody")
    # the emoji is two UTF-16 code units, each CJK character one
    assert syntax["range"]["start"] == {"line": line, "character": column}


def _labels(items: Any) -> list[str]:
    listed = items["items"] if isinstance(items, dict) else items
    return [item["label"] for item in listed]


def test_completion_of_deployment_names_states_tasks_and_keywords(
    client: LspClient, project: Path
) -> None:
    text = FLOW + (
        "\nstate more:\n"
        '    route to queue "\n'
        "    go to state \n"
        "    call task \n"
        '    add skill "Lo\n'
        "    hand off to bot \n"
        '    check schedule "\n'
        '    call data action "\n'
        "    \n"
    )
    uri = client.open(project / "claims.flow", text)
    lines = text.split("\n")

    def at_end_of(needle: str) -> list[str]:
        number = next(i for i, line in enumerate(lines) if line.startswith(needle))
        return _labels(client.at("textDocument/completion", uri, number, len(needle)))

    assert "Retail Banking" in at_end_of('    route to queue "')
    assert "Social DM" in at_end_of('    route to queue "')
    assert at_end_of("    go to state ") == ["start", "routing", "more"]
    assert at_end_of("    call task ") == ["triage"]
    assert "Loans" in at_end_of('    add skill "Lo')
    assert at_end_of("    hand off to bot ") == ["FAQ Bot"]
    assert at_end_of('    check schedule "') == ["Contact Center Hours"]
    assert "CRM Send Code" in at_end_of('    call data action "')
    statements = at_end_of("    ")
    assert {"reply", "route to queue", "hand off to bot", "if", "go to state"} <= set(statements)
    # at the margin: declarations, not statements
    last = len(lines) - 1
    margin = _labels(client.at("textDocument/completion", uri, last, 0))
    assert {"state", "task", "param", "var"} <= set(margin) and "reply" not in margin


def test_completion_of_outcomes_variables_and_params(client: LspClient, project: Path) -> None:
    text = FLOW.replace(
        '            route to queue "Loans"\n',
        '            route to queue "Loans"\n        on \n',
        1,
    ).replace("    set claim to message.text\n", "    set claim to \n")
    uri = client.open(project / "claims.flow", text)
    line, _ = _line(text, "        on \n".rstrip("\n"))
    line = text.split("\n").index("        on ")
    outcomes = _labels(client.at("textDocument/completion", uri, line, len("        on ")))
    assert outcomes == ["resolved", "escalate", "failure", "timeout"]
    line = text.split("\n").index("    set claim to ")
    names = _labels(client.at("textDocument/completion", uri, line, len("    set claim to ")))
    assert {"claim", "greeting", "message.text", "customer.name", "lower", "detect"} <= set(names)


def test_hover_on_a_queue_a_template_a_statement_and_a_state(
    client: LspClient, project: Path
) -> None:
    text = FLOW.replace('"Retial Banking"', '"Retail Banking"') + '    reply template "welcome"\n'
    uri = client.open(project / "claims.flow", text)
    line, column = _line(text, "Retail Banking")
    queue = client.at("textDocument/hover", uri, line, column + 2)["contents"]["value"]
    assert "**queue** `Retail Banking`" in queue
    assert "members: alice, bob, carmen, kenji" in queue
    assert "service level: 80% answered within 5m" in queue
    # the language has no place for wrap-up codes (agents give them): hover is where they show
    assert "wrap-up codes (required): Resolved, Follow-up, No response" in queue
    line, column = _line(text, '"welcome"')
    template = client.at("textDocument/hover", uri, line, column + 1)["contents"]["value"]
    assert "Welcome to GBank" in template
    line, column = _line(text, "hand off to bot")
    statement = client.at("textDocument/hover", uri, line, column + 1)["contents"]["value"]
    assert statement.startswith("**hand off to bot**: Let a bot talk with the customer")
    line, column = _line(text, "call task triage")
    task = client.at("textDocument/hover", uri, line, column + len("call task t"))
    assert task["contents"]["value"].startswith("**task** `triage`")
    serve = client.at("textDocument/hover", uri, 1, 1)["contents"]["value"]
    assert serve.startswith("**serve**: The channels and accounts")
    assert client.at("textDocument/hover", uri, 2, 0) is None  # a blank line says nothing


def test_go_to_definition_of_states_tasks_params_and_deployment_entries(
    client: LspClient, project: Path
) -> None:
    text = FLOW.replace("routng", "routing")
    uri = client.open(project / "claims.flow", text)
    line, column = _line(text, "go to state routing")
    found = client.at("textDocument/definition", uri, line, column + len("go to state r"))
    assert found["uri"] == uri
    assert found["range"]["start"] == {
        "line": text.split("\n").index("state routing:"),
        "character": len("state "),
    }
    line, column = _line(text, "call task triage")
    found = client.at("textDocument/definition", uri, line, column + len("call task t"))
    assert found["range"]["start"]["line"] == text.split("\n").index("task triage:")
    line, column = _line(text, "{{ greeting }}")
    found = client.at("textDocument/definition", uri, line, column + 4)
    assert found["range"]["start"]["line"] == text.split("\n").index(
        'param greeting: text = "Hello"'
    )
    # a deployment entry jumps into the YAML
    line, column = _line(text, '"Loans"')
    found = client.at("textDocument/definition", uri, line, column + 2)
    assert found["uri"] == (project / "deployment.yaml").resolve().as_uri()
    yaml_lines = (project / "deployment.yaml").read_text("utf-8").split("\n")
    assert yaml_lines[found["range"]["start"]["line"]].strip().startswith("Loans:") or (
        "Loans" in yaml_lines[found["range"]["start"]["line"] - 1]
    )


def test_go_to_definition_of_a_task_opens_the_module_that_declares_it(
    client: LspClient, project: Path
) -> None:
    (project / "common").mkdir()
    module = project / "common" / "crm.flow"
    module.write_text(
        'module "CRM"\n\n# Looks the customer up.\ntask look_up outcomes found:\n'
        "    outcome found\n",
        "utf-8",
    )
    text = (
        'flow "Uses"\nuse "common/crm.flow"\n\nserve messages on web\n\nstate start:\n'
        '    call task look_up\n    route to queue "Loans"\n'
    )
    uri = client.open(project / "uses.flow", text)
    line, column = _line(text, "call task look_up")
    found = client.at("textDocument/definition", uri, line, column + len("call task l"))
    assert found["uri"] == module.resolve().as_uri()
    assert found["range"]["start"] == {"line": 3, "character": len("task ")}


def test_document_symbols_are_the_states_and_tasks(client: LspClient, project: Path) -> None:
    uri = client.open(project / "claims.flow")
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert [(s["name"], s["detail"]) for s in symbols] == [
        ("start", "state"),
        ("routing", "state"),
        ("triage", "task"),
    ]
    routing = symbols[1]
    lines = FLOW.split("\n")
    first = lines.index("state routing:")
    last = lines.index("task triage:") - 2  # the last line of the state (a blank line follows)
    assert routing["selectionRange"]["start"] == {"line": first, "character": len("state ")}
    assert routing["range"]["start"]["line"] == first and routing["range"]["end"]["line"] == last


def test_formatting_returns_the_formatters_text(client: LspClient, project: Path) -> None:
    ugly = FLOW.replace('flow "Insurance"', 'flow    "Insurance"').replace(
        "    reply ", "    reply    "
    )
    uri = client.open(project / "claims.flow", ugly)
    edits = client.request(
        "textDocument/formatting",
        {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}},
    )
    (edit,) = edits
    assert edit["newText"].startswith('flow "Insurance"\n')
    assert '    reply "{{ greeting }}' in edit["newText"]
    # a flow with a syntax error is not rewritten
    client.change(uri, 2, ugly.replace("state start:", "state start"))
    client.diagnostics(uri, 2)
    none = client.request(
        "textDocument/formatting",
        {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}},
    )
    assert none == []


def test_quick_fixes_apply_the_did_you_mean(client: LspClient, project: Path) -> None:
    uri = client.open(project / "claims.flow")
    diagnostics = client.diagnostics(uri)
    whole = {"start": {"line": 0, "character": 0}, "end": {"line": 30, "character": 0}}
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": whole, "context": {"diagnostics": diagnostics}},
    )
    fixes = {a["title"]: a["edit"]["changes"][uri][0] for a in actions}
    assert fixes['Change to "Retail Banking"']["newText"] == '"Retail Banking"'
    assert fixes["Change to routing"]["newText"] == "routing"
    line, column = _line(FLOW, "routng")
    assert fixes["Change to routing"]["range"]["start"] == {"line": line, "character": column}
    assert all(a["kind"] == "quickfix" for a in actions)
    # applying both leaves nothing to fix
    fixed = FLOW.replace('"Retial Banking"', '"Retail Banking"').replace("routng", "routing")
    client.change(uri, 2, fixed)
    assert client.diagnostics(uri, 2) == []


def test_a_broken_deployment_file_gets_its_own_diagnostics(
    client: LspClient, project: Path
) -> None:
    deployment = project / "deployment.yaml"
    deployment.write_text(
        deployment.read_text("utf-8").replace("threading_window: 72h", "threading_window: 96h"),
        "utf-8",
    )
    uri = client.open(project / "claims.flow")
    flow_codes = [d["code"] for d in client.diagnostics(uri)]
    # while the deployment file has errors the flow's names are not checked against it
    assert "FL101" not in flow_codes
    (problem,) = client.diagnostics(deployment.resolve().as_uri())
    assert problem["code"].startswith("FL5") and problem["severity"] == 1
    line = deployment.read_text("utf-8").split("\n").index("threading_window: 96h")
    assert problem["range"]["start"]["line"] == line


def test_a_misspelt_name_inside_a_template_has_its_own_quick_fix(
    client: LspClient, project: Path
) -> None:
    text = FLOW.replace("{{ greeting }}", "{{ greting }}")
    uri = client.open(project / "claims.flow", text)
    (problem,) = [d for d in client.diagnostics(uri) if d["code"] == "FL405"]
    line, column = _line(text, "greting")
    assert problem["range"]["start"] == {"line": line, "character": column}
    assert problem["range"]["end"] == {"line": line, "character": column + len("greting")}
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": problem["range"], "context": {"diagnostics": []}},
    )
    (fix,) = [a for a in actions if a["title"] == "Change to greeting"]
    assert fix["edit"]["changes"][uri][0]["range"] == problem["range"]


def test_the_deployment_file_is_found_in_the_folder_the_editor_opened(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "deployment.yaml", project / "deployment.yaml")
    (project / "flows" / "claims.flow").write_text(FLOW, "utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with LspClient(elsewhere, root=project) as client:  # started in another folder
        uri = client.open(project / "flows" / "claims.flow")
        codes = [d["code"] for d in client.diagnostics(uri)]
    assert "FL101" in codes and "FL100" not in codes
