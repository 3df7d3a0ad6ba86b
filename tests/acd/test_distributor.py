"""The built-in ACD, rule by rule: who gets an interaction, when, and what happens next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowlang.acd import AcdError, AgentProfile, QueueSettings, Ring, SkillsAcd
from flowlang.runtime.ports import RoutingNotice, RoutingRequest

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def agent(
    name: str,
    queue: str = "Retail",
    *,
    capacity: int = 1,
    languages: tuple[str, ...] = ("en",),
    auto: bool = True,
    media: str = "message",
    **skills: int,
) -> AgentProfile:
    return AgentProfile(
        name, frozenset({queue}), skills, frozenset(languages), {media: capacity}, auto
    )


def request(
    conv: str,
    queue: str = "Retail",
    *,
    skills: dict[str, int | None] | None = None,
    language: str | None = None,
    priority: float = 0,
    preferred: list[tuple[str, int | None]] | None = None,
    last_agent: str | None = None,
    window_closes_at: datetime | None = None,
    media: str = "message",
) -> RoutingRequest:
    return RoutingRequest(
        conv,
        queue,
        media,
        skills or {},
        language,
        priority,
        preferred or [],
        last_agent,
        None,
        window_closes_at,
    )


def seen(notices: list[RoutingNotice]) -> list[tuple[str, str, str | None]]:
    return [(n.kind, n.conversation_id, n.agent) for n in notices]


# ---------------------------------------------------------------- who qualifies


def test_required_skill_at_its_minimum_proficiency() -> None:
    acd = SkillsAcd(agents=[agent("ann", Cards=2), agent("bea", Cards=4)])
    assert seen(acd.enqueue(request("c1", skills={"Cards": 3}), T0)) == [("accepted", "c1", "bea")]


def test_a_skill_without_minimum_needs_proficiency_one() -> None:
    acd = SkillsAcd(agents=[agent("ann"), agent("bea", Loans=1)])
    assert seen(acd.enqueue(request("c1", skills={"Loans": None}), T0)) == [
        ("accepted", "c1", "bea")
    ]


def test_the_language_is_required() -> None:
    acd = SkillsAcd(agents=[agent("ann"), agent("kenji", languages=("ja", "en"))])
    assert seen(acd.enqueue(request("c1", language="ja"), T0)) == [("accepted", "c1", "kenji")]


def test_only_members_of_the_queue_are_offered() -> None:
    queues = [QueueSettings("Retail", members=frozenset({"bea"}))]
    acd = SkillsAcd(queues, [agent("ann", "Loans"), agent("bea", "Loans")])
    assert seen(acd.enqueue(request("c1"), T0)) == [("accepted", "c1", "bea")]


def test_capacity_is_per_media_type() -> None:
    dave = AgentProfile("dave", frozenset({"Social"}), {}, frozenset(), {"social_public": 2}, True)
    acd = SkillsAcd(agents=[dave])
    assert seen(acd.enqueue(request("p1", "Social", media="social_public"), T0))[0][0] == "accepted"
    assert seen(acd.enqueue(request("p2", "Social", media="social_public"), T0))[0][0] == "accepted"
    assert seen(acd.enqueue(request("p3", "Social", media="social_public"), T0)) == [
        ("waiting", "p3", None)
    ]
    assert seen(acd.enqueue(request("d1", "Social", media="social_dm"), T0)) == [
        ("waiting", "d1", None)
    ]


# ---------------------------------------------------------------- order and selection


def test_a_priority_point_is_worth_a_minute_of_waiting() -> None:
    acd = SkillsAcd(agents=[agent("ann")])
    acd.set_agent_state("ann", "away", T0)
    acd.enqueue(request("waited-9m"), at(0))
    acd.enqueue(request("waited-11m"), at(-2))
    acd.enqueue(request("priority-10", priority=10), at(9))
    first = acd.set_agent_state("ann", "available", at(9))
    assert seen(first) == [("accepted", "waited-11m", "ann")]
    done = acd.complete("waited-11m", "ann", None, at(10))
    assert seen(done) == [("accepted", "priority-10", "ann")]
    done = acd.complete("priority-10", "ann", None, at(11))
    assert seen(done) == [("accepted", "waited-9m", "ann")]


def test_longest_idle_agent_is_chosen_with_ties_to_the_first_name() -> None:
    acd = SkillsAcd(agents=[agent("cy"), agent("bo"), agent("al")])
    for name in ("al", "bo", "cy"):
        acd.set_agent_state(name, "away", T0)
    acd.set_agent_state("cy", "available", at(1))
    acd.set_agent_state("bo", "available", at(2))
    acd.set_agent_state("al", "available", at(2))
    assert seen(acd.enqueue(request("c1"), at(3))) == [("accepted", "c1", "cy")]
    assert seen(acd.enqueue(request("c2"), at(3))) == [("accepted", "c2", "al")]  # tie: name
    assert seen(acd.enqueue(request("c3"), at(3))) == [("accepted", "c3", "bo")]


def test_least_occupied_agent_is_chosen() -> None:
    queues = [QueueSettings("Retail", selection="least_occupied")]
    acd = SkillsAcd(queues, [agent("al", capacity=2), agent("bo", capacity=4)])
    picked = [seen(acd.enqueue(request(f"c{i}"), at(i)))[0][2] for i in range(5)]
    # al 0/2, bo 0/4 -> al (tie on share, al idle as long, name); then bo 0/4 < al 1/2; ...
    assert picked == ["al", "bo", "bo", "al", "bo"]


def test_a_busy_agent_with_capacity_comes_after_free_ones_under_longest_idle() -> None:
    acd = SkillsAcd(agents=[agent("al", capacity=3), agent("bo", capacity=3)])
    acd.set_agent_state("bo", "away", T0)
    acd.enqueue(request("c1"), at(1))  # al takes it
    acd.set_agent_state("bo", "available", at(2))  # bo idle since 09:02, al holds one
    assert seen(acd.enqueue(request("c2"), at(3))) == [("accepted", "c2", "bo")]


# ---------------------------------------------------------------- preferred and last agents


def test_the_highest_scoring_available_preferred_agent_gets_it() -> None:
    acd = SkillsAcd(agents=[agent("al"), agent("bo"), agent("cy")])
    notices = acd.enqueue(request("c1", preferred=[("bo", 20), ("cy", 80)]), T0)
    assert seen(notices) == [("accepted", "c1", "cy")]
    assert notices[0].data["preferred"] is True


def test_the_last_agent_comes_before_preferred_agents() -> None:
    acd = SkillsAcd(agents=[agent("al"), agent("bo")])
    notices = acd.enqueue(request("c1", preferred=[("bo", 100)], last_agent="al"), T0)
    assert seen(notices) == [("accepted", "c1", "al")]


def test_a_busy_preferred_agent_is_waited_for_then_anyone_qualified() -> None:
    queues = [QueueSettings("Retail", preferred_agent_wait=timedelta(minutes=2))]
    acd = SkillsAcd(queues, [agent("al"), agent("bo")])
    acd.enqueue(request("busy"), T0)  # al
    notices = acd.enqueue(request("c1", last_agent="al"), at(0.5))
    assert seen(notices) == [("waiting", "c1", None)]
    assert notices[0].data == {"preferred": ["al"]}
    assert acd.tick(at(2)) == []  # bo is free, but the wait for al is not over
    assert seen(acd.tick(at(2.5))) == [("accepted", "c1", "bo")]


def test_a_preferred_agent_who_frees_up_during_the_wait_gets_it() -> None:
    queues = [QueueSettings("Retail", preferred_agent_wait=timedelta(minutes=2))]
    acd = SkillsAcd(queues, [agent("al"), agent("bo")])
    acd.enqueue(request("busy"), T0)
    acd.enqueue(request("c1", last_agent="al"), at(0.5))
    assert seen(acd.complete("busy", "al", None, at(1))) == [("accepted", "c1", "al")]


def test_route_to_one_agent_waits_for_them_or_says_unavailable() -> None:
    acd = SkillsAcd(agents=[agent("al")])
    acd.enqueue(request("busy"), T0)
    assert seen(acd.request_agent("c1", "al", "message", None, T0)) == [
        ("agent_unavailable", "c1", "al")
    ]
    assert seen(acd.request_agent("c2", "al", "message", 300, T0)) == [("waiting", "c2", None)]
    assert seen(acd.request_agent("c3", "nobody", "message", 300, T0)) == [
        ("agent_unavailable", "c3", "nobody")
    ]
    assert seen(acd.complete("busy", "al", None, at(1))) == [("accepted", "c2", "al")]


# ---------------------------------------------------------------- bullseye


def test_bullseye_rings_relax_proficiency_then_drop_skills() -> None:
    rings = (
        Ring(timedelta(minutes=2), relax_proficiency=2),
        Ring(timedelta(minutes=5), remove_all_skills=True),
    )
    acd = SkillsAcd(
        [QueueSettings("Retail", rings=rings)],
        [agent("junior", Cards=3), agent("generalist")],
    )
    acd.set_agent_state("junior", "away", T0)
    assert seen(acd.enqueue(request("c1", skills={"Cards": 5}), T0)) == [("waiting", "c1", None)]
    widened = acd.tick(at(2))
    assert [(n.kind, n.data.get("ring")) for n in widened] == [("ring_widened", 1)]
    assert seen(acd.set_agent_state("junior", "available", at(3))) == [("accepted", "c1", "junior")]
    assert seen(acd.enqueue(request("c2", skills={"Cards": 5}), at(3))) == [("waiting", "c2", None)]
    notices = acd.tick(at(8))  # ring 1 at 09:05 (Cards 3: junior is busy), ring 2 at 09:08
    assert [(n.kind, n.agent) for n in notices] == [
        ("ring_widened", None),
        ("ring_widened", None),
        ("accepted", "generalist"),
    ]


def test_removing_named_skills_keeps_the_others() -> None:
    rings = (Ring(timedelta(minutes=1), remove_skills=frozenset({"Mortgages"})),)
    acd = SkillsAcd(
        [QueueSettings("Retail", rings=rings)], [agent("al", Loans=3), agent("bo", Mortgages=5)]
    )
    acd.enqueue(request("c1", skills={"Loans": 3, "Mortgages": 4}), T0)
    assert seen(acd.tick(at(1)))[-1] == ("accepted", "c1", "al")


# ---------------------------------------------------------------- offers


def test_an_offer_is_accepted() -> None:
    acd = SkillsAcd(agents=[agent("al", auto=False)])
    assert seen(acd.enqueue(request("c1"), T0)) == [("offered", "c1", "al")]
    accepted = acd.accept("c1", "al", at(0.5))
    assert seen(accepted) == [("accepted", "c1", "al")]
    assert accepted[0].data["waited_seconds"] == 30
    assert acd.accept("c1", "al", at(1)) == []  # already theirs


def test_a_declined_offer_goes_to_the_next_agent_and_never_back() -> None:
    acd = SkillsAcd(agents=[agent("al", auto=False), agent("bo", auto=False)])
    assert seen(acd.enqueue(request("c1"), T0)) == [("offered", "c1", "al")]
    assert seen(acd.decline("c1", "al", at(0.2))) == [
        ("declined", "c1", "al"),
        ("requeued", "c1", None),
        ("offered", "c1", "bo"),
    ]
    assert seen(acd.decline("c1", "bo", at(0.4))) == [
        ("declined", "c1", "bo"),
        ("requeued", "c1", None),
    ]
    assert [i.id for i in acd.waiting()] == ["c1"]  # both declined: it waits for someone new


def test_no_answer_sets_the_agent_not_responding_and_requeues() -> None:
    queues = [QueueSettings("Retail", offer_timeout=timedelta(seconds=30))]
    acd = SkillsAcd(queues, [agent("al", auto=False), agent("bo", auto=False)])
    acd.set_agent_state("bo", "away", T0)
    acd.enqueue(request("c1"), T0)
    acd.set_agent_state("bo", "available", at(0.1))
    notices = acd.tick(at(0.5))
    assert seen(notices) == [
        ("not_responding", "c1", "al"),
        ("requeued", "c1", None),
        ("offered", "c1", "bo"),
    ]
    assert acd.agents["al"].state == "not_responding"
    acd.enqueue(request("c2"), at(1))
    assert [i.id for i in acd.waiting()] == ["c1", "c2"]  # c1 offered to bo, c2 waits
    assert seen(acd.set_agent_state("al", "available", at(2))) == [("offered", "c2", "al")]


def test_an_agent_going_away_gives_back_open_offers() -> None:
    acd = SkillsAcd(agents=[agent("al", auto=False)])
    acd.enqueue(request("c1"), T0)
    assert seen(acd.set_agent_state("al", "away", at(0.2))) == [("requeued", "c1", None)]
    assert seen(acd.set_agent_state("al", "available", at(1))) == [("offered", "c1", "al")]


def test_an_unknown_agent_state_is_refused() -> None:
    acd = SkillsAcd(agents=[agent("al")])
    with pytest.raises(AcdError, match="available, away or offline"):
        acd.set_agent_state("al", "lunch", T0)
    with pytest.raises(AcdError, match="unknown agent"):
        acd.set_agent_state("zed", "away", T0)


# ---------------------------------------------------------------- waiting and freeing up


def test_an_interaction_waits_until_someone_qualifies() -> None:
    acd = SkillsAcd(agents=[agent("al", capacity=1, Cards=4)])
    acd.enqueue(request("c1", skills={"Cards": 3}), T0)
    assert seen(acd.enqueue(request("c2", skills={"Cards": 3}), at(1))) == [("waiting", "c2", None)]
    assert seen(acd.add_agent(agent("bo", Cards=3), at(2))) == [("accepted", "c2", "bo")]


def test_an_agent_coming_back_takes_waiting_work_at_once() -> None:
    acd = SkillsAcd(agents=[agent("al")])
    acd.set_agent_state("al", "away", T0)
    acd.enqueue(request("c1"), at(1))
    assert seen(acd.set_agent_state("al", "available", at(2))) == [("accepted", "c1", "al")]


def test_finishing_after_call_work_frees_capacity() -> None:
    queues = [QueueSettings("Retail", after_call_work=timedelta(minutes=2))]
    acd = SkillsAcd(queues, [agent("al")])
    acd.enqueue(request("c1"), T0)
    acd.enqueue(request("c2"), at(1))
    done = acd.complete("c1", "al", "Resolved", at(5))
    assert [n.kind for n in done] == ["after_call_work"]
    assert done[0].data["until"] == at(7)
    assert seen(acd.tick(at(7))) == [("wrap_up_ended", "c1", "al"), ("accepted", "c2", "al")]


def test_a_required_wrap_up_code_is_refused_until_a_valid_one_is_given() -> None:
    queues = [
        QueueSettings(
            "Retail", wrap_up_required=True, wrap_up_codes=frozenset({"Resolved", "Follow-up"})
        )
    ]
    acd = SkillsAcd(queues, [agent("al")])
    acd.enqueue(request("c1"), T0)
    acd.enqueue(request("c2"), at(1))
    for code, problem in ((None, "wrap_up_required"), ("Sorted", "wrap_up_invalid")):
        (rejected,) = acd.complete("c1", "al", code, at(5))
        assert (rejected.kind, rejected.data["code"]) == ("wrap_up_rejected", problem)
        assert "Follow-up, Resolved" in rejected.data["reason"]
        # nothing changed: al still has c1, c2 still waits
        assert acd.interactions["c1"].phase == "active" and acd.agents["al"].holding == {
            "c1": "message"
        }
        assert [i.id for i in acd.waiting()] == ["c2"]
    assert seen(acd.complete("c1", "al", "Resolved", at(6))) == [("accepted", "c2", "al")]


def test_a_customer_leaving_holds_the_agent_until_the_required_code() -> None:
    queues = [
        QueueSettings(
            "Retail",
            wrap_up_required=True,
            wrap_up_codes=frozenset({"Resolved"}),
            after_call_work=timedelta(minutes=1),
        )
    ]
    acd = SkillsAcd(queues, [agent("al")])
    acd.enqueue(request("c1"), T0)
    acd.enqueue(request("c2"), at(1))
    left = acd.withdraw("c1", at(2))
    assert [(n.kind, n.data.get("needs_wrap_up"), n.data.get("until")) for n in left] == [
        ("withdrawn", None, None),
        ("after_call_work", True, None),  # no end: the queue does not let it time out
    ]
    assert acd.tick(at(30)) == [] and acd.interactions["c1"].phase == "wrap_up"
    (rejected,) = acd.wrap_up("c1", "al", None, at(31))
    assert rejected.data["code"] == "wrap_up_required"
    assert seen(acd.wrap_up("c1", "al", "Resolved", at(32))) == [
        ("wrap_up_ended", "c1", "al"),
        ("accepted", "c2", "al"),
    ]


def test_after_call_work_times_out_without_a_code_only_where_the_queue_allows() -> None:
    queues = [
        QueueSettings(
            "Retail",
            wrap_up_required=True,
            after_call_work=timedelta(minutes=1),
            wrap_up_may_time_out=True,
        )
    ]
    acd = SkillsAcd(queues, [agent("al")])
    acd.enqueue(request("c1"), T0)
    acd.withdraw("c1", at(2))
    ended = acd.tick(at(3))
    assert [(n.kind, n.data["reason"], n.data.get("timed_out")) for n in ended] == [
        ("wrap_up_ended", "wrap-up timed out", True)
    ]
    assert acd.agents["al"].holding == {}


def test_after_call_work_with_its_code_ends_on_time_and_has_not_timed_out() -> None:
    queues = [QueueSettings("Retail", wrap_up_required=True, after_call_work=timedelta(minutes=1))]
    acd = SkillsAcd(queues, [agent("al")])
    acd.enqueue(request("c1"), T0)
    acd.complete("c1", "al", "Resolved", at(2))
    ended = acd.tick(at(3))
    assert [(n.kind, n.data["reason"], n.data.get("timed_out")) for n in ended] == [
        ("wrap_up_ended", "after-call work ended", None)
    ]


# ---------------------------------------------------------------- customers


def test_withdrawing_while_waiting_or_offered() -> None:
    acd = SkillsAcd(agents=[agent("al", auto=False)])
    acd.enqueue(request("c1"), T0)
    acd.enqueue(request("c2"), T0)
    assert [(n.kind, n.data["phase"]) for n in acd.withdraw("c2", at(1))] == [
        ("withdrawn", "waiting")
    ]
    assert [(n.kind, n.data["phase"]) for n in acd.withdraw("c1", at(1))] == [
        ("withdrawn", "offered")
    ]
    assert acd.waiting() == [] and acd.agents["al"].holding == {}


def test_a_silent_customer_is_disconnected() -> None:
    queues = [QueueSettings("Retail", inactivity_after=timedelta(minutes=10))]
    acd = SkillsAcd(queues, [agent("al")])
    acd.enqueue(request("c1"), T0)
    acd.customer_activity("c1", at(8))
    assert acd.tick(at(10)) == []  # they wrote at 09:08: the clock restarted
    assert seen(acd.tick(at(18))) == [("disconnected", "c1", "al")]
    assert acd.agents["al"].holding == {}


def test_a_silent_customer_can_be_rerouted_instead() -> None:
    queues = [
        QueueSettings("Retail", inactivity_after=timedelta(minutes=10), inactivity_action="reroute")
    ]
    acd = SkillsAcd(queues, [agent("al"), agent("bo")])
    acd.enqueue(request("c1"), T0)
    assert seen(acd.tick(at(10))) == [("requeued", "c1", None), ("accepted", "c1", "bo")]


def test_the_reply_window_closing_expires_a_waiting_interaction() -> None:
    acd = SkillsAcd(agents=[agent("al")])
    acd.enqueue(request("busy"), T0)
    acd.enqueue(request("c1", window_closes_at=at(90)), T0)
    assert seen(acd.tick(at(90))) == [
        ("priority_raised", "c1", None),
        ("expired", "c1", None),
    ]
    assert acd.waiting() == []


def test_priority_rises_as_the_window_nears_its_end() -> None:
    acd = SkillsAcd(agents=[agent("al")])
    acd.enqueue(request("busy"), T0)
    acd.enqueue(request("early"), at(1))
    acd.enqueue(request("closing", window_closes_at=at(100)), at(20))
    raised = acd.tick(at(40))
    assert [(n.kind, n.data["priority"]) for n in raised] == [("priority_raised", 60)]
    assert seen(acd.complete("busy", "al", None, at(41))) == [("accepted", "closing", "al")]


def test_a_customer_writing_again_moves_the_window_deadlines() -> None:
    acd = SkillsAcd(agents=[agent("al")])
    acd.enqueue(request("busy"), T0)
    acd.enqueue(request("c1", window_closes_at=at(90)), T0)
    acd.customer_activity("c1", at(20), window_closes_at=at(200))  # a new 24 h, say
    assert acd.tick(at(139)) == []  # neither the old window's urgency (30) nor its expiry (90)
    assert seen(acd.tick(at(140))) == [("priority_raised", "c1", None)]
    assert seen(acd.tick(at(200))) == [("expired", "c1", None)]
    acd.customer_activity("busy", at(201))  # no window given: nothing about it changes
    assert acd.interactions["busy"].window_closes_at is None


# ---------------------------------------------------------------- transfers


def test_transfer_to_a_queue_goes_to_someone_else_there() -> None:
    acd = SkillsAcd(agents=[agent("al", Billing=4), agent("kai", "Loans")])
    acd.enqueue(request("c1", skills={"Billing": 4}), T0)
    assert seen(acd.transfer("c1", "Loans", None, at(3))) == [("accepted", "c1", "kai")]
    assert acd.agents["al"].holding == {}


def test_transfer_to_a_busy_agent_waits_for_them() -> None:
    acd = SkillsAcd(agents=[agent("al"), agent("bo")])
    acd.enqueue(request("c1"), T0)  # al
    acd.enqueue(request("c2"), T0)  # bo
    assert seen(acd.transfer("c1", None, "bo", at(1))) == [("waiting", "c1", None)]
    assert seen(acd.complete("c2", "bo", None, at(2))) == [("accepted", "c1", "bo")]


def test_transfer_to_an_offline_agent_goes_back_to_the_queue() -> None:
    acd = SkillsAcd(agents=[agent("al"), agent("bo"), agent("cy")])
    acd.set_agent_state("bo", "offline", T0)
    acd.enqueue(request("c1"), T0)  # al
    assert seen(acd.transfer("c1", None, "bo", at(1))) == [
        ("agent_unavailable", "c1", "bo"),
        ("accepted", "c1", "cy"),
    ]


# ---------------------------------------------------------------- one agent's work


def test_an_agents_work_is_their_open_offers_active_interactions_and_after_call_work() -> None:
    queues = [
        QueueSettings(
            "Retail", offer_timeout=timedelta(seconds=30), after_call_work=timedelta(minutes=2)
        )
    ]
    acd = SkillsAcd(queues, [agent("al", auto=False, capacity=3), agent("bo", auto=False)])
    acd.enqueue(request("c1"), T0)  # offered to al
    acd.enqueue(request("c2"), T0)  # offered to bo
    acd.enqueue(request("c3"), T0)  # offered to al
    acd.accept("c1", "al", at(0.1))
    assert [(i.id, i.phase) for i in acd.work_of("al", at(0.2))] == [
        ("c1", "active"),
        ("c3", "offered"),
    ]
    # An offer that has timed out is no longer theirs, even before a tick acts on it.
    assert [i.id for i in acd.work_of("al", at(0.5))] == ["c1"]
    assert [i.id for i in acd.work_of("bo", at(0.2))] == ["c2"]
    acd.complete("c1", "al", "Resolved", at(1))
    assert [(i.id, i.phase) for i in acd.work_of("al", at(1))] == [("c1", "wrap_up")]
    assert acd.work_of("nobody", at(1)) == []
