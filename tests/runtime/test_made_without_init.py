"""The hot path's records made without their dataclass's `__init__` (a new conversation, an
event's outcome, a run's facts, the ACD's interaction) are what `__init__` makes: every field
set, to the same value; a field added later and not set there fails here."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.acd import SkillsAcd
from flowlang.acd.distributor import _interaction_for
from flowlang.acd.model import Interaction
from flowlang.runtime.flow_run import facts_for
from flowlang.runtime.memory import AllowAll
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import AgentStep, ConversationView, RoutingRequest
from flowlang.runtime.state import Facts
from tests.runtime.helpers import NOW
from tests.runtime.test_engine import make_engine, message


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@given(last_agent=st.none() | st.sampled_from(["ana", "bo"]))
def test_a_started_conversation_is_the_one_init_makes(last_agent: str | None) -> None:
    before = ConversationView("conv1", "c1", "web", "", NOW, NOW, last_agent=last_agent)
    before.status = "closed"
    after = before if last_agent else None
    started = ConversationView.starting("conv2", "c2", "whatsapp", "acct", NOW, after)
    made = ConversationView(
        "conv2", "c2", "whatsapp", "acct", NOW, NOW, last_agent=after.last_agent if after else None
    )
    assert vars(started) == vars(made)
    assert list(vars(started)) == list(vars(made))  # in the same order: one shared key table
    assert started == made
    # its containers are its own, not shared with another conversation's
    other = ConversationView.starting("conv3", "c3", "whatsapp", "acct", NOW, None)
    for name in ("channel_state", "data", "_flow_state", "_routing"):
        assert getattr(started, name) is not getattr(other, name)


@given(conversation_id=st.none() | st.just("conv1"))
def test_an_outcome_of_an_event_is_the_one_init_makes(conversation_id: str | None) -> None:
    event = message("hi")
    fast = Outcome.of(event, conversation_id)
    assert vars(fast) == vars(Outcome(event=event, conversation_id=conversation_id))
    assert list(vars(fast)) == list(vars(Outcome(event=event, conversation_id=conversation_id)))
    other = Outcome.of(event)
    assert fast.notices is not other.notices and fast.trace is not other.trace


def test_a_runs_facts_have_every_field_set() -> None:
    engine, _sent = make_engine()
    outcome = engine.handle(message("fees?"))
    conv = engine.store.get_conversation(outcome.conversation_id or "")
    assert conv is not None
    ctx = engine._ctx
    made = facts_for(ctx, conv, message("again"), conv.state(), NOW)
    assert list(vars(made)) == [f.name for f in dataclasses.fields(Facts)]
    assert made == Facts(**vars(made))
    assert made.customer["id"] == conv.customer_id and made.conversation["id"] == conv.id


_NAMES = st.sampled_from(["Billing", "Cards", "en", "fr", "x"])


@given(
    skills=st.dictionaries(_NAMES, st.none() | st.integers(0, 5), max_size=3),
    language=st.none() | _NAMES,
    priority=st.floats(0, 100),
    closes=st.none() | st.just(datetime(2026, 3, 3, tzinfo=UTC)),
    steps=st.lists(st.builds(AgentStep, st.none() | _NAMES, st.none() | st.integers(1, 9))),
)
def test_the_acds_interaction_is_the_one_init_makes(
    skills: dict[str, int | None],
    language: str | None,
    priority: float,
    closes: datetime | None,
    steps: list[AgentStep],
) -> None:
    request = RoutingRequest(
        "conv1",
        "Retail",
        "message",
        skills,
        language,
        priority,
        [],
        None,
        None,
        closes,
        tuple(steps),
    )
    entered = NOW + timedelta(seconds=5)
    made = Interaction(
        id="conv1",
        queue="Retail",
        media="message",
        skills={skill: level or 1 for skill, level in skills.items()},
        language=language,
        priority=priority,
        entered_at=entered,
        window_closes_at=closes,
        steps=tuple(steps),
    )
    fast = _interaction_for(request, entered)
    assert fast == made
    assert {f: getattr(fast, f) for f in _fields(Interaction)} == {
        f: getattr(made, f) for f in _fields(Interaction)
    }
    assert fast.declined is not _interaction_for(request, entered).declined


class _ClosingPolicy(AllowAll):
    def window_closes_at(self, conversation: ConversationView) -> datetime | None:
        return NOW + timedelta(hours=24)


def test_the_routing_request_of_a_route_has_each_part_where_its_field_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_route_queue` makes the request positionally (keywords cost three times as much): a
    field added or moved in `RoutingRequest` and not there fails here."""
    body = (
        'route to queue "Retail":\n'
        '    skill "Loans" min 3\n'
        '    language "es"\n'
        "    priority 20\n"
        '    prefer agent "ana" score 80\n'
        "    prefer last agent\n"
        "    timeout 30m\n"
        "    on timeout:\n"
        '        reply "sorry"\n'
    )
    engine, _sent = make_engine(body, policy=_ClosingPolicy())
    asked: list[RoutingRequest] = []
    original = SkillsAcd.enqueue

    def enqueue(self: SkillsAcd, request: RoutingRequest, now: datetime) -> Any:
        asked.append(request)
        return original(self, request, now)

    monkeypatch.setattr(SkillsAcd, "enqueue", enqueue)
    outcome = engine.handle(message("hi"))
    assert asked == [
        RoutingRequest(
            conversation_id=outcome.conversation_id or "",
            queue="Retail",
            media="message",
            skills={"Loans": 3},
            language="es",
            priority=20,
            preferred_agents=[("ana", 80)],
            last_agent=None,  # (the conversation's first: no last agent yet)
            timeout_seconds=1800,
            window_closes_at=NOW + timedelta(hours=24),
            agent_steps=(),
        )
    ]
