"""`pass`, the explicit no-op, and when an unhandled outcome is worth a warning (FL302)."""

from __future__ import annotations

from pathlib import Path

from flowlang import codes
from flowlang.compiler.compile import compile_flow
from flowlang.harness import load_samples, run_samples
from flowlang.language import ast
from flowlang.language.parser import parse_text
from flowlang.project import load_project
from flowlang.workspace import validate

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "examples" / "deployment.yaml"
HEAD = 'flow "P"\nserve messages on whatsapp\n\nstate start:\n'


def _codes(tmp_path: Path, body: str) -> list[str]:
    flow = tmp_path / "p.flow"
    flow.write_text(HEAD + body, "utf-8")
    return [d.code for d in validate([flow], DEPLOYMENT).diagnostics]


def test_pass_is_a_statement_that_compiles_to_nothing(tmp_path: Path) -> None:
    body = (
        '    check schedule "Contact Center Hours":\n        on open:\n            pass\n'
        '        on closed:\n            reply "closed"\n    route to queue "Retail Banking"\n'
    )
    parsed = parse_text(HEAD + body, "p.flow")
    assert parsed.flow is not None
    state = next(d for d in parsed.flow.declarations if isinstance(d, ast.State))
    schedule = state.body[0]
    assert isinstance(schedule, ast.CheckSchedule)
    assert isinstance(schedule.branches[0].body[0], ast.Pass)
    flow = tmp_path / "p.flow"
    flow.write_text(HEAD + body, "utf-8")
    ws = validate([flow], DEPLOYMENT)
    assert [d.code for d in ws.diagnostics] == [codes.UNHANDLED_OUTCOME]  # holiday, emergency
    graph = compile_flow(ws.flows[str(flow)])
    node = next(n for n in graph.nodes.values() if n.op == "schedule")
    # `on open: pass` goes straight on, to where an unhandled outcome goes
    assert node.edges["on:open"] == node.edges["next"]
    assert not any(n.source.line == 7 for n in graph.nodes.values())


def test_an_empty_block_is_still_an_error_and_pass_is_its_fix(tmp_path: Path) -> None:
    assert codes.EMPTY_BLOCK in _codes(tmp_path, "    if true:\n    end\n")
    assert _codes(tmp_path, "    if true:\n        pass\n    end\n") == []


def test_a_run_goes_on_after_pass(tmp_path: Path) -> None:
    flow = tmp_path / "p.flow"
    flow.write_text(
        HEAD + '    if message.text == "x":\n        pass\n    reply "after"\n', "utf-8"
    )
    samples = tmp_path / "s.yaml"
    samples.write_text(
        "conversations:\n  - channel: whatsapp\n    account: GBank WhatsApp\n"
        "    customer: {id: '+447700900001'}\n    events:\n      - message: x\n",
        "utf-8",
    )
    project, ws = load_project(flow, DEPLOYMENT)
    assert project is not None, ws.render()
    report = run_samples(project, load_samples(samples))
    assert [m.content.get("text") for m in report.sent.sent] == ["after"]


def test_fl302_only_when_an_outcome_of_a_handled_kind_is_not_handled(tmp_path: Path) -> None:
    bot = '    hand off to bot "FAQ Bot" wait 10m:\n'
    resolved_only = bot + "        on resolved:\n            end\n" + '    route to queue "Loans"\n'
    assert _codes(tmp_path, resolved_only) == []  # the rest go on to the queue: the usual way
    escalate_only = bot + '        on escalate:\n            route to queue "Loans"\n'
    assert _codes(tmp_path, escalate_only) == [codes.UNHANDLED_OUTCOME]  # failure goes on
    schedule = '    check schedule "Contact Center Hours":\n'
    open_only = schedule + "        on open:\n            end\n"
    assert _codes(tmp_path, open_only) == []
    closed = schedule + '        on closed:\n            reply "closed"\n'
    flow = tmp_path / "p.flow"
    flow.write_text(HEAD + closed, "utf-8")
    (warning,) = validate([flow], DEPLOYMENT).diagnostics
    assert warning.message == "'check schedule' does not handle 'holiday', 'emergency'"
    assert "'on holiday:'" in warning.hint and "'pass'" in warning.hint
    everything = (
        closed + "        on holiday:\n            pass\n        on emergency:\n            pass\n"
    )
    assert _codes(tmp_path, everything) == []
