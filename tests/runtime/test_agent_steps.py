"""Ordered routing targets (`prefer agents where agent.tier == "gold" for 2m`, `then agents
where ...`, `then any agent`) through the Engine and the skills ACD: an interaction is offered
only to the agents of the current step until its time is up, the step's values from the flow
are bound when it routes, the widening survives a restart, and it works beside bullseye rings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.acd.model import Ring
from flowlang.compiler.draw import label
from flowlang.compiler.ir import Op
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.ports import AgentStep, ConversationStore, RoutingRequest
from flowlang.store import SqliteStore
from tests.runtime.helpers import NOW, engine_of, program
from tests.runtime.test_engine import message

STEPS = """\
route to queue "Retail":
    prefer agents where agent.tier == "gold" and agent.languages contains language for 2m
    then agents where agent.years >= 3 for 3m
    then any agent
"""


def profile(name: str, languages: str = "en", **attributes: Any) -> AgentProfile:
    return AgentProfile(
        name,
        frozenset({"Retail"}),
        {},
        frozenset(languages.split()),
        {"message": 3},
        auto_answer=True,
        attributes=attributes,
    )


CENTER = [
    profile("gus", "es", tier="gold", years=1),  # the only gold agent who speaks Spanish
    profile("sam", "en es", tier="silver", years=5),
    profile("nia", "en es", tier="bronze", years=1),
]


def _engine(
    store: ConversationStore | None = None, rings: tuple[Ring, ...] = ()
) -> tuple[Engine, RecordingAdapter]:
    acd = SkillsAcd([QueueSettings("Retail", rings=rings)], CENTER)
    acd.set_agent_state("gus", "away", NOW)
    parts: dict[str, Any] = {"store": store} if store is not None else {}
    sent = RecordingAdapter()
    prog = program('set language to "es"\n' + STEPS)
    return engine_of(prog, adapters=[sent], acd=acd, **parts), sent


def _agent(engine: Engine, conversation_id: str) -> str | None:
    conv = engine.store.get_conversation(conversation_id)
    assert conv is not None
    return conv.agent if conv.status == "with_agent" else None


def test_not_offered_to_an_agent_outside_the_step_before_it_ends_and_offered_after() -> None:
    engine, _sent = _engine()
    conversation = engine.handle(message("hola")).conversation_id or ""
    # gus (gold, Spanish) is away; sam and nia are free but not gold: nobody gets it
    assert _agent(engine, conversation) is None
    engine.advance(NOW + timedelta(minutes=1, seconds=59))
    assert _agent(engine, conversation) is None
    # 2 minutes: the second step takes agents with 3 years or more: sam, not nia
    engine.advance(NOW + timedelta(minutes=2))
    assert _agent(engine, conversation) == "sam"


def test_the_last_step_widens_to_any_agent_of_the_queue() -> None:
    engine, _sent = _engine()
    engine.set_agent_state("sam", "away", NOW)
    conversation = engine.handle(message("hola")).conversation_id or ""
    engine.advance(NOW + timedelta(minutes=4, seconds=59))
    assert _agent(engine, conversation) is None  # nia has 1 year: not in the second step
    engine.advance(NOW + timedelta(minutes=5))
    assert _agent(engine, conversation) == "nia"


def test_an_agent_of_the_step_who_comes_back_takes_it_at_once() -> None:
    engine, _sent = _engine()
    conversation = engine.handle(message("hola")).conversation_id or ""
    engine.set_agent_state("gus", "available", NOW + timedelta(minutes=1))
    assert _agent(engine, conversation) == "gus"


def test_the_values_beside_agent_attributes_are_the_flows_when_it_routes() -> None:
    sent = RecordingAdapter()
    acd = SkillsAcd([QueueSettings("Retail")], CENTER)
    prog = program('set language to "en"\n' + STEPS)  # English: gus (Spanish only) does not fit
    engine = engine_of(prog, adapters=[sent], acd=acd)
    conversation = engine.handle(message("hello")).conversation_id or ""
    assert _agent(engine, conversation) is None
    engine.advance(NOW + timedelta(minutes=2))
    assert _agent(engine, conversation) == "sam"


def test_the_step_goes_on_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cc.sqlite"
    with SqliteStore(path) as store:
        engine, _sent = _engine(store)
        conversation = engine.handle(message("hola")).conversation_id or ""
        engine.advance(NOW + timedelta(minutes=1))
        assert _agent(engine, conversation) is None
    with SqliteStore(path) as store:  # a new process: the ACD is rebuilt from the store
        engine, _sent = _engine(store)
        engine.recover(NOW + timedelta(minutes=1, seconds=30))
        assert _agent(engine, conversation) is None  # still the first step
        engine.advance(NOW + timedelta(minutes=2))
        assert _agent(engine, conversation) == "sam"


def test_steps_and_bullseye_rings_apply_together() -> None:
    """A ring relaxes the skills; the step still chooses the agents: both must hold."""
    acd = SkillsAcd(
        [QueueSettings("Retail", rings=(Ring(timedelta(minutes=1), remove_all_skills=True),))],
        [
            AgentProfile("ann", frozenset({"Retail"}), {"Loans": 2}, attributes={"tier": "gold"}),
            AgentProfile("bea", frozenset({"Retail"}), {"Loans": 5}, attributes={"tier": "tin"}),
        ],
    )
    gold = AgentStep('{"bin":"==","l":{"path":["agent","tier"]},"r":{"lit":"gold"}}', 300)
    request = RoutingRequest(
        "c1", "Retail", "message", {"Loans": 4}, None, 0, [], None, None, agent_steps=(gold,)
    )
    assert [n.kind for n in acd.enqueue(request, NOW)] == ["waiting"]  # bea: not gold
    # the ring drops the skill at 1 minute: ann (gold) now qualifies, bea still does not
    offered = acd.tick(NOW + timedelta(minutes=1))
    assert [(n.kind, n.agent) for n in offered if n.kind == "offered"] == [("offered", "ann")]


def test_an_agent_whose_attributes_change_joins_the_step_at_once() -> None:
    acd = SkillsAcd([QueueSettings("Retail")], [profile("tom", tier="tin")])
    gold = AgentStep('{"bin":"==","l":{"path":["agent","tier"]},"r":{"lit":"gold"}}', 300)
    request = RoutingRequest(
        "c1", "Retail", "message", {}, None, 0, [], None, None, agent_steps=(gold,)
    )
    assert [n.kind for n in acd.enqueue(request, NOW)] == ["waiting"]
    promoted = acd.add_agent(profile("tom", tier="gold"), NOW + timedelta(seconds=10))
    assert [(n.kind, n.agent) for n in promoted] == [("accepted", "tom")]


def test_the_trace_and_the_graph_say_the_route_prefers_agents() -> None:
    engine, _sent = _engine()
    outcome = engine.handle(message("hola"))
    assert any("preferred agents: 2 step(s)" in step.detail for step in outcome.trace), (
        outcome.trace
    )
    prog = program(STEPS)
    (route,) = [n for n in prog.graph.nodes.values() if n.op is Op.ROUTE_QUEUE]
    assert label(route).endswith("route to queue Retail (preferred agents: 2 steps)")
