"""`detect(...)` checked and compiled: which languages it chooses from (the `among` list, else
the deployment's), FL130 when there are none, and the graph carrying them."""

from __future__ import annotations

from flowlang import codes
from flowlang.compiler import ir
from flowlang.compiler.compile import compile_flow
from flowlang.compiler.ir import FlowGraph
from flowlang.language.checker import CheckResult, check
from flowlang.language.context import FlowContext
from flowlang.language.parser import parse_text


def _check(expression: str, languages: set[str] | None) -> CheckResult:
    text = (
        'flow "D"\nserve messages on web\n\nstate start:\n'
        f"    set language to {expression}\n"
        '    route to queue "Sales"\n'
    )
    parsed = parse_text(text, "d.flow")
    assert parsed.flow is not None, parsed.diagnostics
    if languages is None:
        return check(parsed.flow, FlowContext())
    context = FlowContext(deployment_file="d.yaml", queues={"Sales"}, languages=languages)
    return check(parsed.flow, context)


def _graph(expression: str, languages: set[str] | None) -> FlowGraph:
    result = _check(expression, languages)
    assert result.checked is not None, [d.message for d in result.diagnostics]
    return compile_flow(result.checked)


def _detect_tree(graph: FlowGraph) -> object:
    return next(
        node.args.value
        for node in graph.nodes.values()
        if isinstance(node.args, ir.SetLanguageArgs)
    )


def test_fl130_no_languages_to_choose_from() -> None:
    result = _check("detect(message.text)", set())
    assert [d.code for d in result.diagnostics] == [codes.NO_DETECT_LANGUAGES]
    assert "detect() has no languages to choose from" in result.diagnostics[0].message
    assert 'among ["en", "es"]' in (result.diagnostics[0].hint or "")


def test_without_among_it_chooses_from_the_deployments_languages() -> None:
    tree = _detect_tree(_graph("detect(message.text)", {"es", "en", "ja"}))
    assert tree == {
        "detect": {"path": ["message", "text"]},
        "among": ["en", "es", "ja"],
        "fallback": None,
        "confidence": 0.7,
    }


def test_among_narrows_and_must_be_deployment_languages() -> None:
    written = 'detect(message.text, among ["es", "en"], fallback "en", confidence 0.9)'
    tree = _detect_tree(_graph(written, {"en", "es", "ja"}))
    assert tree == {
        "detect": {"path": ["message", "text"]},
        "among": ["en", "es"],
        "fallback": "en",
        "confidence": 0.9,
    }
    refused = _check('detect(message.text, among ["en", "fr"])', {"en", "es"})
    assert [d.code for d in refused.diagnostics] == [codes.UNKNOWN_LANGUAGE]
    assert refused.checked is None


def test_a_new_deployment_language_makes_a_new_version() -> None:
    before = _graph("detect(message.text)", {"en", "es"})
    after = _graph("detect(message.text)", {"en", "es", "ja"})
    assert before.version != after.version
    assert _graph("detect(message.text)", {"es", "en"}).version == before.version


def test_without_a_deployment_only_the_codes_are_checked() -> None:
    assert _check('detect(message.text, among ["en", "es"])', None).checked is not None
    bad = _check('detect(message.text, among ["en", "Spanish"])', None)
    assert [d.code for d in bad.diagnostics] == [codes.UNKNOWN_LANGUAGE_CODE]
    assert bad.diagnostics[0].hint == 'write the language\'s code: "es"'
