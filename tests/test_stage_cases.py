"""Golden files per stage of the pipeline, for the shipped flows and tests/cases/stages/:
parse (the AST, `.parse`), compile (the graph's JSON, `.graph.json`) and run (a dry-run of
sample conversations, `.run`). Beside them, every flow in flows/ and examples/ validates and
compiles.

Run `pytest tests/test_stage_cases.py --update-golden` after an intended change and review the
diff of the expected files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang import cli
from flowlang.compiler.compile import compile_flow
from flowlang.language.ast_dump import dump
from flowlang.language.formatter import format_text
from flowlang.language.parser import parse_bytes
from flowlang.workspace import validate

ROOT = Path(__file__).resolve().parents[1]
STAGES = Path("tests/cases/stages")
DEPLOYMENT = "examples/deployment.yaml"
# name -> (flow, sample conversations), all relative to the repository as a user types them
CASES = {
    "messaging": ("flows/messaging.flow", "examples/messages.yaml"),
    "social": ("flows/social.flow", "examples/social_webhooks.yaml"),
    "premier": ("flows/premier.flow", "examples/premier.yaml"),
    "statements": (f"{STAGES}/statements.flow", f"{STAGES}/statements.yaml"),
}
# Every flow shipped in flows/ and examples/ (update when one is added or removed).
SHIPPED_FLOWS = 4


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # files are named relative to the repository, as a user sees them


def _compare(actual: str, name: str, request: pytest.FixtureRequest) -> None:
    expected = ROOT / STAGES / name
    if request.config.getoption("--update-golden"):
        expected.write_text(actual, "utf-8")
    assert expected.exists(), f"run pytest --update-golden to create {expected.name}"
    assert actual == expected.read_text("utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_parse_stage(case: str, request: pytest.FixtureRequest) -> None:
    flow = CASES[case][0]
    parsed = parse_bytes(Path(flow).read_bytes(), flow)
    assert parsed.flow is not None, parsed.diagnostics
    _compare(dump(parsed.flow), f"{case}.parse", request)


@pytest.mark.parametrize("case", sorted(CASES))
def test_compile_stage(case: str, request: pytest.FixtureRequest) -> None:
    flow = CASES[case][0]
    ws = validate([flow, DEPLOYMENT])
    assert not ws.errors, [d.message for d in ws.diagnostics]
    graph = compile_flow(ws.flows[flow])
    _compare(
        json.dumps(graph.to_dict(), indent=2, ensure_ascii=False) + "\n",
        f"{case}.graph.json",
        request,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_stage(case: str, request: pytest.FixtureRequest) -> None:
    flow, samples = CASES[case]
    # the samples block some replies on purpose (the golden run shows each one)
    args = ["dry-run", flow, "-d", DEPLOYMENT, "-m", samples, "--allow-blocked"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    _compare(result.output, f"{case}.run", request)


def test_every_shipped_flow_validates_and_compiles() -> None:
    flows = sorted([*Path("flows").rglob("*.flow"), *Path("examples").rglob("*.flow")])
    compiled = []
    for flow in flows:
        ws = validate([flow, DEPLOYMENT])
        assert not ws.errors, (flow, [d.message for d in ws.diagnostics])
        if str(flow) not in ws.flows:  # a module (flows/common/): checked, compiled with its users
            assert flow.read_text("utf-8").lstrip().startswith(("module", "#")), flow
            continue
        compiled.append(compile_flow(ws.flows[str(flow)]))
    assert all(graph.nodes for graph in compiled)
    assert len(compiled) == SHIPPED_FLOWS, "a flow was added or removed: update SHIPPED_FLOWS"


def test_every_shipped_flow_is_in_canonical_form() -> None:
    """`make demo` runs `flowlang fmt --check flows/`: a shipped flow must be as fmt writes it."""
    flows = sorted([*Path("flows").rglob("*.flow"), *Path("examples").rglob("*.flow")])
    for flow in flows:
        result = format_text(flow.read_text("utf-8"), str(flow))
        assert result.ok and not result.changed, f"{flow}: run flowlang fmt {flow}"
