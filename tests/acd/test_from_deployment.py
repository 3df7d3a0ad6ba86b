"""The ACD's settings come from the deployment file, checked like the rest of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from textwrap import dedent

from flowlang.acd import SkillsAcd
from flowlang.config import load_deployment_text
from flowlang.runtime.ports import RoutingRequest

DEPLOYMENT = """\
skills: [Cards, Loans]
languages: [en]
queues:
  Cards:
    members: [ann]
    preferred_agent_wait: 1m
    bullseye:
      - {after: 2m, relax_proficiency: 1}
      - {after: 5m, remove_skills: all}
    inactivity: {after: 30m, action: reroute}
    window_urgency: {within: 2h, add: 30}
    selection: least_occupied
agents:
  ann:
    skills: {Cards: 3}
    capacity: {message: 2}
    auto_answer: true
  ben:
    skills: {Loans: 2}
    queues: [Cards]
"""


def test_queue_and_agent_settings_reach_the_acd() -> None:
    deployment, problems = load_deployment_text(DEPLOYMENT, "d.yaml")
    assert deployment is not None, problems
    acd = SkillsAcd.from_deployment(deployment)
    cards = acd.queues["Cards"]
    assert cards.preferred_agent_wait == timedelta(minutes=1)
    assert [(r.after, r.relax_proficiency, r.remove_all_skills) for r in cards.rings] == [
        (timedelta(minutes=2), 1, False),
        (timedelta(minutes=5), 0, True),
    ]
    assert (cards.inactivity_after, cards.inactivity_action) == (timedelta(minutes=30), "reroute")
    assert (cards.urgent_within, cards.urgent_priority) == (timedelta(hours=2), 30)
    assert cards.selection == "least_occupied"
    assert acd.agents["ann"].profile.auto_answer and not acd.agents["ben"].profile.auto_answer
    assert acd.agents["ben"].profile.queues == {"Cards"}  # member by the agent's own list
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    request = RoutingRequest("c1", "Cards", "message", {"Cards": 4}, None, 0, [], None, None)
    assert [n.kind for n in acd.enqueue(request, now)] == ["waiting"]
    assert [(n.kind, n.agent) for n in acd.tick(now + timedelta(minutes=2))] == [
        ("ring_widened", None),
        ("accepted", "ann"),
    ]


def test_bullseye_rings_must_widen_in_order_and_name_known_skills() -> None:
    text = dedent(
        """\
        skills: [Cards]
        agents:
          ann: {skills: {Cards: 3}}
        queues:
          Cards:
            members: [ann]
            bullseye:
              - {after: 5m, remove_skills: [Cads]}
              - {after: 2m}
        """
    )
    _deployment, problems = load_deployment_text(text, "d.yaml")
    found = [(d.code, d.span.line, d.message) for d in problems]
    assert ("FL505", 8, "unknown skill 'Cads'") in found
    assert (
        "FL503",
        9,
        "bullseye rings must widen in order: each `after` longer than the last",
    ) in found


def test_an_unknown_selection_rule_is_a_located_error() -> None:
    text = "queues:\n  Cards:\n    selection: round_robin\n"
    _deployment, problems = load_deployment_text(text, "d.yaml")
    assert [(d.code, d.span.line) for d in problems if d.is_error] == [("FL503", 3)]


WRAP_UP = """\
wrap_up_codes: [Resolved, Follow-up, Moved to DM]
queues:
  Retail:
    members: [ann]
    wrap_up_codes: [Resolved, Follow-up]
    wrap_up_required: true
    after_call_work: 2m
    wrap_up_may_time_out: true
  Social:
    members: [ann]
    wrap_up_required: true
  Loans:
    members: [ann]
agents:
  ann: {auto_answer: true}
"""


def test_wrap_up_settings_and_each_queues_valid_codes_reach_the_acd() -> None:
    deployment, problems = load_deployment_text(WRAP_UP, "d.yaml")
    assert deployment is not None, problems
    acd = SkillsAcd.from_deployment(deployment)
    retail, social = acd.queues["Retail"], acd.queues["Social"]
    assert retail.wrap_up_codes == {"Resolved", "Follow-up"}
    assert (retail.wrap_up_required, retail.wrap_up_may_time_out) == (True, True)
    # A queue that declares no codes takes the center's; timing out is off unless said.
    assert social.wrap_up_codes == {"Resolved", "Follow-up", "Moved to DM"}
    assert (social.wrap_up_required, social.wrap_up_may_time_out) == (True, False)
    assert acd.queues["Loans"].wrap_up_required is False


def test_a_code_of_the_center_but_not_of_the_queue_is_refused() -> None:
    deployment, problems = load_deployment_text(WRAP_UP, "d.yaml")
    assert deployment is not None, problems
    acd = SkillsAcd.from_deployment(deployment)
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    request = RoutingRequest("c1", "Retail", "message", {}, None, 0, [], None, None)
    acd.enqueue(request, now)
    (refused,) = acd.complete("c1", "ann", "Moved to DM", now)
    assert (refused.kind, refused.data["code"]) == ("wrap_up_rejected", "wrap_up_invalid")
    assert refused.data["reason"] == (
        "'Moved to DM' is not a wrap-up code of Retail: Follow-up, Resolved"
    )
