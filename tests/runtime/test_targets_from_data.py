"""Routing targets named by the flow's data (`route to queue crm.product`, `route to agent
owner`, `skill (x)`): routed when the deployment has the name; an unknown one takes `on unknown`,
else `on error`, and is never routed to."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from flowlang.assembly import deployment_names
from flowlang.config import load_deployment
from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import RunResult, run
from flowlang.runtime.program import Program
from flowlang.runtime.state import FlowState, Trigger
from tests.runtime.helpers import facts, program

ROOT = Path(__file__).resolve().parents[2]

KNOWN = {
    "queue": {"Retail", "Loans"},
    "agent": {"ana"},
    "skill": {"Cards"},
    "language": {"en", "es"},
}


def known(kind: str, name: str) -> bool:
    return name in KNOWN[kind]


def start(prog: Program, text: str = "hi") -> RunResult:
    return run(prog, FlowState(), Trigger(kind="message", text=text), facts(text, known=known))


def routes(result: RunResult) -> list[fx.RouteToQueue]:
    return [e for e in result.effects if isinstance(e, fx.RouteToQueue)]


ROUTE = """\
set target to trim(message.text)
route to queue target:
    skill (upper(target) + "S")
    on unknown:
        log "no such queue"
        route to queue "Retail"
"""


def test_a_queue_named_by_data_is_routed_to_when_the_deployment_has_it() -> None:
    prog = program(
        "set target to trim(message.text)\nroute to queue target", header="var target: text"
    )
    (route,) = routes(start(prog, " Loans "))
    assert route.queue == "Loans"


def test_an_unknown_queue_takes_on_unknown_and_is_never_routed_to() -> None:
    prog = program(ROUTE, header="var target: text")
    result = start(prog, "Mortgages")
    assert [r.queue for r in routes(result)] == ["Retail"]
    logged = [e.message for e in result.effects if isinstance(e, fx.LogMessage)]
    assert logged[0] == (
        "unknown queue 'Mortgages' at line 6: no such queue in the deployment; on unknown"
    )
    assert logged[1] == "no such queue"


def test_an_unknown_skill_from_data_takes_on_unknown_too() -> None:
    prog = program(ROUTE, header="var target: text")
    result = start(prog, "Loans")  # the skill LOANSS does not exist
    assert [r.queue for r in routes(result)] == ["Retail"]


def test_without_on_unknown_the_flow_runs_on_error() -> None:
    prog = program(
        "route to agent owner",
        header=(
            'var owner: text = "zed"\n'
            'on error:\n    reply "{{ error.message }}"\n    route to queue "Retail"'
        ),
    )
    result = start(prog)
    replies = [e.content["text"] for e in result.effects if isinstance(e, fx.SendReply)]
    assert replies == ["unknown agent 'zed' at line 8: no such agent in the deployment"]
    assert not [e for e in result.effects if isinstance(e, fx.RouteToAgent)]
    assert [r.queue for r in routes(result)] == ["Retail"]


def test_a_known_owner_named_by_a_dotted_name_is_asked_for() -> None:
    prog = program("route to agent message.sender_name wait 1m:\n    on unknown:\n        end")
    message = {"text": "hi", "channel": "web", "sender_name": "ana"}
    result = run(
        prog, FlowState(), Trigger(kind="message", text="hi"), facts(message=message, known=known)
    )
    (asked,) = [e for e in result.effects if isinstance(e, fx.RouteToAgent)]
    assert asked.agent == "ana" and not asked.last_agent


def test_a_not_set_queue_is_unknown() -> None:
    prog = program(
        'route to queue (crm_queue):\n    on unknown:\n        end "no queue"',
        header="var crm_queue: text = not set",
    )
    result = start(prog)
    assert routes(result) == []
    assert [e.reason for e in result.effects if isinstance(e, fx.EndFlow)] == ["no queue"]


def test_the_deployment_says_which_names_exist() -> None:
    names = deployment_names(load_deployment(ROOT / "examples" / "deployment.yaml")[0])
    assert names("queue", "Retail Banking") and not names("queue", "Retail banking")
    assert names("agent", "alice") and not names("agent", "mallory")
    assert names("skill", "Loans") and names("language", "es") and not names("language", "xx")


def test_the_engine_logs_the_unknown_target(caplog: pytest.LogCaptureFixture) -> None:
    from tests.runtime.test_engine import make_engine, message

    engine, _sent = make_engine(
        ROUTE,
        header="var target: text",
        deployment=load_deployment(ROOT / "examples" / "deployment.yaml")[0],
    )
    with caplog.at_level(logging.INFO, logger="flowlang.flow"):
        outcome = engine.handle(message("Mortgages", at=timedelta(seconds=1)))
    assert any(
        r.name == "flowlang.flow" and "unknown queue 'Mortgages' at line 6" in r.getMessage()
        for r in caplog.records
    )
    (route,) = [e for e in outcome.effects if isinstance(e, fx.RouteToQueue)]
    assert route.queue == "Retail"


LANGUAGE_ROUTE = """\
set target to trim(message.text)
route to queue (target):
    language (lower(message.sender_name))
    on unknown:
        log "no such target"
        route to queue "Retail"
"""


def _start_from(prog: Program, text: str, sender: str) -> RunResult:
    message = {"text": text, "channel": "web", "sender_name": sender}
    trigger = Trigger(kind="message", text=text)
    return run(prog, FlowState(), trigger, facts(text, message=message, known=known))


def test_a_language_named_by_data_is_checked_after_the_queue() -> None:
    prog = program(LANGUAGE_ROUTE, header="var target: text")
    (route,) = routes(_start_from(prog, "Loans", "ES"))
    assert (route.queue, route.language) == ("Loans", "es")
    unknown_language = _start_from(prog, "Loans", "XX")
    assert [r.queue for r in routes(unknown_language)] == ["Retail"]
    logged = [e.message for e in unknown_language.effects if isinstance(e, fx.LogMessage)]
    assert logged[0].startswith("unknown language 'xx' at line 6")
    both_unknown = _start_from(prog, "Mortgages", "XX")  # the queue is reported, not the language
    logged = [e.message for e in both_unknown.effects if isinstance(e, fx.LogMessage)]
    assert logged[0].startswith("unknown queue 'Mortgages' at line 6")
