"""Every construct of the language is exercised: each grammar alternative appears in the parse
tree of some flow among the reference's examples (docs/language.md), the shipped flows and the
formatter's cases; and every example in the reference parses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lark.grammar import Rule

from flowlang.language import parser
from flowlang.language.parser import parse_text

ROOT = Path(__file__).resolve().parents[2]
DOC_EXAMPLES = re.findall(
    r"```flow\n(.*?)```", (ROOT / "docs" / "language.md").read_text("utf-8"), re.S
)
FLOWS = [p.read_text("utf-8") for p in sorted((ROOT / "flows").glob("*.flow"))] + [
    p.read_text("utf-8") for p in sorted((ROOT / "tests" / "cases" / "fmt").glob("*.flow"))
]


@pytest.mark.parametrize("number", range(len(DOC_EXAMPLES)))
def test_every_example_in_the_language_reference_parses(number: int) -> None:
    result = parse_text(DOC_EXAMPLES[number], f"docs/language.md example {number + 1}")
    assert result.ok, [f"{d.span.line}: {d.message}" for d in result.diagnostics]


def _tree_names(rule: Rule) -> set[str]:
    origin = str(rule.origin.name)
    if rule.alias:
        return {str(rule.alias)}
    if origin.startswith("_") or rule.options.expand1:
        return set()  # inlined into its parent: no tree of its own
    return {origin}


def test_every_grammar_alternative_is_exercised() -> None:
    grammar = parser._lark()
    expected: set[str] = set()
    for rule in grammar.rules:
        expected |= _tree_names(rule)
    seen: set[str] = set()
    for source in DOC_EXAMPLES + FLOWS:
        tree = parser._parse_collecting(source.split("\n"), [])
        seen |= {str(t.data) for t in tree.iter_subtrees()}
    assert sorted(expected - seen) == []


def test_the_first_flow_in_the_readme_validates_against_the_example_deployment(
    tmp_path: Path,
) -> None:
    from flowlang.workspace import validate

    readme = (ROOT / "README.md").read_text("utf-8")
    first = re.search(r"## A first flow\n\n```text\n(.*?)```", readme, re.S)
    assert first is not None
    flow = tmp_path / "first.flow"
    flow.write_text(first.group(1), "utf-8")
    ws = validate([flow, ROOT / "examples" / "deployment.yaml"])
    assert [d.message for d in ws.diagnostics] == []
