"""What `engine.handle` leaves out on its hot path, and that leaving it out changes nothing a
host sees: the inbound event's stored form only for a store that keeps it; the routing
request's stored form without the copies of what it does not name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.events import EventKind, InboundEvent
from flowlang.runtime.flow_run import _routing_json, request_from
from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.ports import AgentStep, ConversationView, RoutingRequest
from tests.runtime.test_engine import make_engine, message


class _WithoutAcceptEvent:
    """A host's own store: the in-memory store's behaviour, without `accept_event`."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.payloads: list[dict[str, Any]] = []

    def accept_inbound(
        self, channel: str, event_id: str, payload: dict[str, Any], processing: bool = False
    ) -> bool:
        self.payloads.append(payload)
        return self.inner.accept_inbound(channel, event_id, payload, processing)

    def __getattr__(self, name: str) -> Any:
        if name == "accept_event":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _dumps(monkeypatch: pytest.MonkeyPatch) -> list[InboundEvent]:
    """Every `InboundEvent.model_dump` call from now on, by event."""
    calls: list[InboundEvent] = []
    dump = InboundEvent.model_dump

    def counted(self: InboundEvent, **kwargs: Any) -> dict[str, Any]:
        calls.append(self)
        return dump(self, **kwargs)

    monkeypatch.setattr(InboundEvent, "model_dump", counted)
    return calls


def test_the_in_memory_store_is_handed_the_event_and_no_stored_form_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, _sent = make_engine()
    dumps = _dumps(monkeypatch)
    first = engine.handle(message("hello", event_id="wamid.1", sender="447700900123"))
    again = engine.handle(message("hello", event_id="wamid.1", sender="447700900123"))
    assert dumps == []
    assert [n.kind for n in first.notices] == ["accepted"] and not first.dead_lettered
    assert again.duplicate  # a channel's retry is still a duplicate
    store = engine.store
    assert isinstance(store, MemoryStore)
    assert store.inbound_sender("whatsapp", "wamid.1") == "447700900123"
    assert store.pending_inbound() == []  # processed at once: nothing left to replay
    # a removal that comes without its author still finds whose message it was
    removal = message("", kind=EventKind.DELETE, sender="")
    removal = removal.model_copy(update={"refers_to": "wamid.1"})
    assert engine.handle(removal).conversation_id == first.conversation_id


def test_a_store_without_accept_event_is_given_the_events_stored_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _WithoutAcceptEvent()
    engine, _sent = make_engine(store=store)
    event = message("hello", event_id="wamid.2")
    outcome = engine.handle(event)
    assert [n.kind for n in outcome.notices] == ["accepted"]
    assert store.payloads == [event.model_dump(mode="json")]
    assert engine.handle(event).duplicate


_names = st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=8)
_ints = st.none() | st.integers(min_value=0, max_value=10)
_times = st.none() | st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


@given(
    queue=_names,
    skills=st.dictionaries(_names, _ints, max_size=3),
    language=st.none() | _names,
    priority=st.floats(min_value=0, max_value=100),
    preferred=st.lists(st.tuples(_names, _ints), max_size=3),
    last_agent=st.none() | _names,
    timeout=_ints,
    closes=_times,
    steps=st.lists(st.builds(AgentStep, st.none() | _names, _ints), max_size=3),
    entered=st.datetimes(timezones=st.just(UTC)),
)
def test_the_routing_requests_stored_form_reads_back_as_the_request(
    queue: str,
    skills: dict[str, int | None],
    language: str | None,
    priority: float,
    preferred: list[tuple[str, int | None]],
    last_agent: str | None,
    timeout: int | None,
    closes: datetime | None,
    steps: list[AgentStep],
    entered: datetime,
) -> None:
    """What a restart routes from (`request_from`) is the request the flow made, whether it
    names skills, agents and steps or none (routes that name none skip their copies)."""
    request = RoutingRequest(
        "conv1",
        queue,
        "message",
        skills,
        language,
        priority,
        preferred,
        last_agent,
        timeout,
        closes,
        tuple(steps),
    )
    stored = json.loads(json.dumps(_routing_json(request, entered)))  # as a store keeps it
    conv = ConversationView("conv1", "c1", "whatsapp", "", entered, entered, routing=stored)
    assert request_from(conv) == request
    assert datetime.fromisoformat(stored["entered_at"]) == entered
    assert ("agent_steps" in stored) == bool(steps)
