"""Agent pools built at load (`SkillsAcd.prepare`, docs/acd.md "How decisions stay cheap"):
kept current as agents go away and come back, take work, and change skills, capacity,
languages or attributes, so that a decision on a prepared requirement builds nothing; and a
routing step's `agent.<attribute> == "<text>"` answered from an index of the agents."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.acd.model import Requirement
from flowlang.acd.targets import attribute_equals, matcher
from flowlang.config import load_deployment_text
from flowlang.runtime.agent_steps import canonical
from flowlang.runtime.ports import AgentStep
from tests.acd.test_distributor import at, request

SKILLS = ["Cards", "Loans"]
QUEUES = ["Retail", "Loans"]
TIERS = ["gold", "silver"]
# skills, languages, tier, capacity, queue, starting state
SPEC = st.tuples(
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 4), max_size=2),
    st.sets(st.sampled_from(["en", "es"]), max_size=2),
    st.sampled_from(TIERS),
    st.integers(0, 3),
    st.sampled_from(QUEUES),
)
REQUIREMENTS = st.builds(
    lambda queue, skills, language, tier: Requirement(
        queue, "message", tuple(sorted(skills.items())), language, tier and _tier(tier)
    ),
    st.sampled_from(QUEUES),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 4), max_size=2),
    st.sampled_from([None, "en", "es"]),
    st.sampled_from([None, *TIERS]),
)
# (operation, agent number, a new profile for "change", the requirement asked for by "enqueue")
OPS = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "enqueue", "complete", "away", "back", "change"]),
        st.integers(0, 5),
        SPEC,
        REQUIREMENTS,
    ),
    max_size=40,
)


def _tier(tier: str) -> str:
    return canonical({"bin": "==", "l": {"path": ["agent", "tier"]}, "r": {"lit": tier}})


def _profile(n: int, spec: tuple[dict[str, int], set[str], str, int, str]) -> AgentProfile:
    skills, languages, tier, capacity, queue = spec
    return AgentProfile(
        f"a{n}",
        frozenset({queue}),
        dict(skills),
        frozenset(languages),
        {"message": capacity},
        auto_answer=True,
        attributes={"tier": tier},
    )


def _fresh_pool(acd: SkillsAcd, requirement: Requirement) -> tuple[set[str], set[Any]]:
    """The pool a build now would make, found by looking at every agent: who qualifies, and
    the entries of those who can take an interaction now."""
    selection = acd.settings(requirement.queue).selection
    qualified = {a for a, record in acd.agents.items() if requirement.met_by(record.profile)}
    ready = {
        acd.agents[a].heap_entry(selection)
        for a in qualified
        if acd.agents[a].ready_for(requirement.media)
    }
    return qualified, ready


def _live_entries(acd: SkillsAcd, requirement: Requirement) -> set[Any]:
    pool = acd._pools[requirement]
    return {
        entry
        for entry in [*pool.heap, *pool.fifo]
        if entry[2] in acd.agents
        and acd.agents[entry[2]].version == entry[3]
        and entry[2] in pool.qualified
        and acd.agents[entry[2]].ready_for(requirement.media)
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(SPEC, min_size=1, max_size=6),
    st.lists(REQUIREMENTS, min_size=1, max_size=8),
    OPS,
    st.sampled_from(["longest_idle", "least_occupied"]),
)
def test_pools_built_at_load_stay_equal_to_a_fresh_build(
    roster: list[Any],
    prepared: list[Requirement],
    ops: list[tuple[str, int, Any, Requirement]],
    selection: Literal["longest_idle", "least_occupied"],
) -> None:
    """Whatever happens after the pools are built (agents away and back, taking and finishing
    work, replaced with other skills, capacity, languages or tier), each prepared pool holds
    exactly the agents a build now would find, with exactly their current entries; the same
    pool object throughout (no decision rebuilt it)."""
    queues = [QueueSettings(name, selection=selection) for name in QUEUES]
    acd = SkillsAcd(queues, [_profile(n, spec) for n, spec in enumerate(roster)])
    acd.prepare(prepared)
    pools = {requirement: acd._pools[requirement] for requirement in prepared}
    held: list[tuple[str, str]] = []
    for number, (op, who, spec, wanted) in enumerate(ops):
        now = at(number + 1)
        name = f"a{who % len(roster)}"
        if op == "enqueue":
            asked = request(
                f"c{number}", wanted.queue, skills=dict(wanted.skills), language=wanted.language
            )
            if wanted.agents is not None:
                asked.agent_steps = (AgentStep(wanted.agents, None),)
            notices = acd.enqueue(asked, now)
            if notices and notices[0].kind == "accepted":
                held.append((asked.conversation_id, notices[0].agent or ""))
            else:
                acd.withdraw(asked.conversation_id, now)
        elif op == "complete" and held:
            conversation, agent_id = held.pop(who % len(held))
            acd.complete(conversation, agent_id, None, now)
        elif op in ("away", "back"):
            acd.set_agent_state(name, "away" if op == "away" else "available", now)
        elif op == "change":
            acd.add_agent(_profile(who % len(roster), spec), now)
        acd._refresh()
        for requirement, pool in pools.items():
            assert acd._pools[requirement] is pool
            qualified, ready = _fresh_pool(acd, requirement)
            assert pool.qualified == qualified, (op, requirement)
            assert _live_entries(acd, requirement) == ready, (op, requirement)
            for agent_id, record in acd.agents.items():
                assert record.pools.count(pool) == (agent_id in qualified)


def _center(agents: int) -> SkillsAcd:
    return SkillsAcd(
        [QueueSettings("Q")],
        [_profile(n, ({"Cards": 1 + n % 4}, {"en"}, TIERS[n % 2], 2, "Q")) for n in range(agents)],
    )


def test_a_decision_on_a_prepared_requirement_builds_no_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The routing targets' pools built at load: the decisions that follow find no agent by
    intersecting indexes and test no agent against a condition; a requirement not prepared
    still builds its pool when first needed."""
    acd = _center(200)
    asked = [request(f"c{n}", "Q", skills={"Cards": 1 + n % 4}) for n in range(8)]
    for n, one in enumerate(asked):
        one.agent_steps = (AgentStep(_tier(TIERS[n % 2]), 60),)
    acd.prepare(acd.requirement(one) for one in asked)
    built = {"pools": 0}
    qualified = SkillsAcd._qualified

    def counting(self: SkillsAcd, requirement: Requirement) -> set[str]:
        built["pools"] += 1
        return qualified(self, requirement)

    monkeypatch.setattr(SkillsAcd, "_qualified", counting)
    for n, one in enumerate(asked):
        notices = acd.enqueue(one, at(n))
        assert notices[0].kind == "accepted"
        assert acd.agents[notices[0].agent or ""].profile.attributes["tier"] == TIERS[n % 2]
    assert built["pools"] == 0
    acd.enqueue(request("c9", "Q", skills={"Loans": 1}), at(9))
    assert built["pools"] == 1


def test_a_deployments_queues_have_their_pools_at_load() -> None:
    """A route to a queue without skills, language or step is known from the deployment: its
    pool exists, with the queue's agents, before any decision; and one agent going away is out
    of it at the next decision."""
    deployment, problems = load_deployment_text(
        "queues:\n  Retail:\n    members: [ann, ben]\n    media: [message]\n"
        "agents:\n  ann: {auto_answer: true}\n  ben: {auto_answer: true}\n",
        "d.yaml",
    )
    assert deployment is not None, problems
    acd = SkillsAcd.from_deployment(deployment)
    requirement = Requirement("Retail", "message", (), None)
    assert set(acd._pools) == {requirement}
    assert acd._pools[requirement].qualified == {"ann", "ben"}
    acd.set_agent_state("ann", "away", at(0))
    notices = acd.enqueue(request("c1", "Retail"), at(1))
    assert [(n.kind, n.agent) for n in notices] == [("accepted", "ben")]
    acd.enqueue(request("c2", "Retail", skills={"Cards": 1}), at(2))
    acd.reset()  # back to how it started: the pools built at load, and only those
    assert set(acd._pools) == {requirement}
    assert acd._pools[requirement].qualified == {"ann", "ben"}


VALUES = st.one_of(
    st.sampled_from(["gold", "Gold", "silver", ""]),
    st.integers(0, 2),
    st.booleans(),
    st.none(),
    st.lists(st.sampled_from(["gold"]), max_size=1),
)
CONDITIONS = st.sampled_from(
    [
        {"bin": "==", "l": {"path": ["agent", "tier"]}, "r": {"lit": "gold"}},
        {"bin": "==", "l": {"lit": "gold"}, "r": {"path": ["agent", "tier"]}},
        {"bin": "==", "l": {"path": ["agent", "tier"]}, "r": {"lit": ""}},
        {"bin": "==", "l": {"path": ["agent", "tier"]}, "r": {"lit": 1}},
        {"bin": "!=", "l": {"path": ["agent", "tier"]}, "r": {"lit": "gold"}},
        {"bin": "==", "l": {"path": ["agent", "id"]}, "r": {"lit": "a1"}},
        {"bin": "==", "l": {"path": ["agent", "tier", "x"]}, "r": {"lit": "gold"}},
        {"bin": "==", "l": {"path": ["agent", "missing"]}, "r": {"lit": "gold"}},
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(VALUES, min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 5), VALUES), max_size=6),
    CONDITIONS,
)
def test_an_attribute_condition_from_the_index_takes_the_agents_a_test_of_each_takes(
    values: list[Any], changes: list[tuple[int, Any]], tree: dict[str, Any]
) -> None:
    """Agents whose `tier` is a text, a number, a truth value, nothing or a list; before and
    after agents are replaced with another value: the agents a condition takes are those the
    flow's own `==` (compiled, tested on each agent) takes."""
    condition = canonical(tree)

    def profile(n: int, value: Any) -> AgentProfile:
        return AgentProfile(f"a{n}", frozenset({"Q"}), attributes={"tier": value})

    acd = SkillsAcd([QueueSettings("Q")], [profile(n, v) for n, v in enumerate(values)])
    test = matcher(condition)

    def by_testing() -> set[str]:
        return {a for a, record in acd.agents.items() if test(record.profile)}

    acd._attribute_index("tier")  # indexed before the changes: kept current through them
    assert acd._meeting(condition) == by_testing()
    for n, value in changes:
        acd.add_agent(profile(n % len(values), value), at(n))
        assert acd._meeting(condition) == by_testing()
    fresh = SkillsAcd([QueueSettings("Q")], [r.profile for r in acd.agents.values()])
    assert fresh._meeting(condition) == by_testing()


def test_only_an_equality_of_an_attribute_and_a_text_is_read_from_the_index() -> None:
    gold: tuple[Any, Any] = ({"path": ["agent", "tier"]}, {"lit": "gold"})
    assert attribute_equals(canonical({"bin": "==", "l": gold[0], "r": gold[1]})) == (
        "tier",
        "gold",
    )
    assert attribute_equals(canonical({"bin": "==", "l": gold[1], "r": gold[0]})) == (
        "tier",
        "gold",
    )
    others: list[Any] = [
        {"bin": "!=", "l": gold[0], "r": gold[1]},
        {"bin": "==", "l": gold[0], "r": {"lit": 1}},
        {"bin": "==", "l": {"path": ["agent", "tier", "x"]}, "r": gold[1]},
        {"bin": "==", "l": {"path": ["customer", "tier"]}, "r": gold[1]},
        {"bin": "==", "l": gold[0], "r": {"path": ["agent", "id"]}},
    ]
    for other in others:
        assert attribute_equals(canonical(other)) is None, other


def test_freed_agents_in_prepared_pools_are_picked_longest_idle_first() -> None:
    """Pools built at load order their agents as a pool built on need does: by how long the
    agents have been idle."""
    acd = _center(6)
    for n in (3, 1, 5):  # away, then back in this order: a3 idle longest
        acd.set_agent_state(f"a{n}", "away", at(0))
    for minutes, n in enumerate((3, 1, 5)):
        acd.set_agent_state(f"a{n}", "available", at(minutes + 1))
    asked = request("c0", "Q", skills={"Cards": 2})  # a1, a3, a5 (odd: Cards 2 or 4)
    asked.agent_steps = (AgentStep(_tier("silver"), None),)
    acd.prepare([acd.requirement(asked)])
    picked = []
    for n in range(3):
        one = request(f"c{n}", "Q", skills={"Cards": 2})
        one.agent_steps = (AgentStep(_tier("silver"), None),)
        picked.append(acd.enqueue(one, at(10 + n))[0].agent)
    assert picked == ["a3", "a1", "a5"]


def test_an_attribute_condition_tests_no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """`agent.tier == "gold"` over 1,000 agents: found in the index, no agent tested against
    the compiled condition (before: each agent tested once per condition)."""
    acd = _center(1_000)

    def no_test(condition: str) -> Any:
        raise AssertionError(f"tested each agent against {condition}")

    monkeypatch.setattr("flowlang.acd.distributor.matcher", no_test)
    asked = request("c0", "Q", skills={"Cards": 1})
    asked.agent_steps = (AgentStep(_tier("gold"), None),)
    (notice,) = acd.enqueue(asked, at(1))
    assert acd.agents[notice.agent or ""].profile.attributes["tier"] == "gold"
    assert len(acd._meeting(_tier("gold"))) == 500
