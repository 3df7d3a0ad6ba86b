"""What `engine.handle` leaves out on its hot path, and that leaving it out changes nothing a
host sees: the inbound event's stored form only for a store that keeps it; the routing
request's stored form without the copies of what it does not name; the flow state's and the
routing request's JSON forms only when something reads them (a durable store's save); a run's
trace steps only when the outcome's trace is read."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.events import AgentAction, EventKind, InboundEvent
from flowlang.runtime import ports
from flowlang.runtime.flow_run import request_from
from flowlang.runtime.interpreter import RunResult, TraceStep
from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import (
    NO_STATE,
    AgentStep,
    ConversationView,
    RoutingRequest,
    routing_json,
)
from flowlang.runtime.state import FlowState, Waiting
from tests.runtime.helpers import NOW
from tests.runtime.test_engine import agent, agent_at, make_engine, message


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
    stored = json.loads(json.dumps(routing_json(request, entered)))  # as a store keeps it
    conv = ConversationView("conv1", "c1", "whatsapp", "", entered, entered, routing=stored)
    assert request_from(conv) == request
    assert datetime.fromisoformat(stored["entered_at"]) == entered
    assert ("agent_steps" in stored) == bool(steps)


def _made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every JSON form of a flow state or a routing request made from now on."""
    made: list[str] = []
    to_json, routing_form = FlowState.to_json, ports.routing_json

    def state_form(self: FlowState) -> dict[str, Any]:
        made.append("flow_state")
        return to_json(self)

    def request_form(request: RoutingRequest, entered_at: datetime) -> dict[str, Any]:
        made.append("routing")
        return routing_form(request, entered_at)

    monkeypatch.setattr(FlowState, "to_json", state_form)
    monkeypatch.setattr(ports, "routing_json", request_form)
    return made


def test_the_in_memory_store_keeps_the_state_and_the_routing_without_their_json_forms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, _sent = make_engine()
    made = _made(monkeypatch)
    outcome = engine.handle(message("fees?"))
    assert [n.kind for n in outcome.notices] == ["accepted"]
    assert made == []  # nothing read them: neither form was made
    conv = engine.store.get_conversation(outcome.conversation_id or "")
    assert conv is not None
    live = conv.state()
    expected = to_form(live)
    made.clear()
    # read, each form is what the object gives, and from then on the form is what is kept
    assert conv.flow_state == expected and made == ["flow_state"]
    assert conv.routing["queue"] == "Retail" and conv.routing["skills"] == {"Billing": None}
    assert conv.routing_entered_at() == NOW and made == ["flow_state", "routing"]
    assert conv.state() == live and conv.state() is not live


def to_form(state: FlowState) -> dict[str, Any]:
    form: dict[str, Any] = json.loads(json.dumps(state.to_json()))
    return form


def test_a_form_set_or_read_replaces_the_object_kept() -> None:
    conv = ConversationView.starting("conv1", "c1", "whatsapp", "", NOW, None)
    assert conv.state() is NO_STATE and conv.waiting() is None
    assert conv.routing_entered_at() is None
    state = FlowState(graph_version="v1", waiting=Waiting("answer", "start/0"))
    conv.keep_state(state)
    assert conv.state() is state and conv.waiting() == state.waiting
    assert conv.resume_point() == FlowState("v1", waiting=state.waiting)
    assert conv.resume_point() is not state  # choosing a program may change it
    conv.flow_state = {}
    assert conv.state() is NO_STATE and conv.waiting() is None
    request = RoutingRequest("conv1", "Retail", "message", {}, None, 0, [], None, None)
    conv.keep_routing(request, NOW)
    conv.routing = {"entered_at": "2026-03-02T11:00:00+00:00"}
    assert conv.routing_entered_at() == datetime(2026, 3, 2, 11, tzinfo=UTC)
    conv.keep_routing(request, NOW)
    conv.routing["window_closes_at"] = "2026-03-03T10:00:00+00:00"  # changed in place
    assert conv.routing == {
        **routing_json(request, NOW),
        "window_closes_at": "2026-03-03T10:00:00+00:00",
    }


def _eagerly() -> contextlib.ExitStack:
    """Conversations as they were: the flow state and the routing request kept as their JSON
    forms only (made at once, read back by decoding them)."""

    def keep_state(self: ConversationView, state: FlowState) -> None:
        self.flow_state = json.loads(json.dumps(state.to_json()))

    def keep_routing(self: ConversationView, request: RoutingRequest, at: datetime) -> None:
        self.routing = json.loads(json.dumps(routing_json(request, at)))

    def state(self: ConversationView) -> FlowState:
        return FlowState.from_json(self.flow_state)

    stack = contextlib.ExitStack()
    for name, eager in (("keep_state", keep_state), ("keep_routing", keep_routing)):
        stack.enter_context(mock.patch.object(ConversationView, name, eager))
    stack.enter_context(mock.patch.object(ConversationView, "state", state))
    return stack


_FLOW = (
    "match keywords:\n"
    '    when "fee*":\n'
    '        add skill "Billing"\n'
    'route to queue "Retail":\n'
    "    timeout 5m\n"
    "    on timeout:\n"
    '        ask "Your account number?" into answer wait 10m:\n'
    "            on answer:\n"
    "                set tries to tries + 1\n"
    'reply "thanks"\n'
)
_steps = st.lists(
    st.tuples(
        st.sampled_from(["message", "complete", "advance"]),
        st.integers(min_value=0, max_value=1),  # whose
        st.sampled_from(["hi", "fees please", "1234"]),
    ),
    max_size=12,
)


def _handled(steps: list[tuple[str, int, str]]) -> tuple[list[Any], list[Any]]:
    """What each step's outcomes were, and the conversations' stored forms at the end."""
    engine = make_engine(
        _FLOW,
        agents=[agent_at("ana", "Retail", 1, Billing=4)],
        header="var answer: text = not set\nvar tries: number = 0",
    )[0]
    store = engine.store
    assert isinstance(store, MemoryStore)
    seen: list[Any] = []
    for minute, (what, whose, text) in enumerate(steps):
        at = timedelta(minutes=minute * 3)
        if what == "message":
            done = [engine.handle(message(text, at, sender=f"44770090012{whose}"))]
        elif what == "complete" and (held := _held(store)):
            done = [engine.handle(agent(held[whose % len(held)], AgentAction.COMPLETE, at))]
        else:
            done = engine.advance(NOW + at)
        seen.extend(
            (o.conversation_id, o.path, o.note, [n.kind for n in o.notices], o.effects)
            for o in done
        )
    stored = [(c.id, c.status, c.flow_state, c.routing) for c in store.conversations.values()]
    return seen, json.loads(json.dumps(stored, default=str))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps)
def test_keeping_the_objects_changes_nothing_a_host_sees(
    steps: list[tuple[str, int, str]],
) -> None:
    """The engine keeping the live state and routing with its conversations decides exactly
    as one that keeps only their JSON forms: the same outcomes, the same stored forms."""
    with _eagerly():
        expected = _handled(steps)
    assert _handled(steps) == expected
    assert FlowState() == NO_STATE  # the state shared by flows that have not run is unchanged


def _stored(store: Any) -> list[ConversationView]:
    assert isinstance(store, MemoryStore)
    return list(store.conversations.values())


def _held(store: MemoryStore) -> list[str]:
    return sorted(c.id for c in store.conversations.values() if c.status == "with_agent")


def test_a_runs_trace_steps_are_made_when_the_trace_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[RunResult] = []
    trace = RunResult.trace

    def counted(self: RunResult) -> list[TraceStep]:
        made.append(self)
        return trace.fget(self)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(RunResult, "trace", property(counted))
    engine, _sent = make_engine()
    outcome = engine.handle(message("fees?"))
    assert made == [] and outcome.path  # the flow ran; its trace is not made yet
    steps = outcome.trace
    assert len(made) == 1 and [s.op for s in steps if s.node != "-"][-1] == "route_queue"
    assert outcome.trace is steps and len(made) == 1  # made once


def test_the_trace_keeps_the_order_runs_and_steps_were_added_in() -> None:
    def ran(detail: str) -> RunResult:
        return RunResult(FlowState(), lines=[(None, "note", detail)])

    outcome = Outcome(event=None)
    outcome.add_run(ran("first"))
    outcome.trace.append(TraceStep("-", "note", 0, "between"))
    outcome.add_run(ran("second"))
    assert [s.detail for s in outcome.trace] == ["first", "between", "second"]
    outcome.trace = []
    assert outcome.trace == [] and Outcome(event=None, trace=steps_of("x")).trace == steps_of("x")


def steps_of(detail: str) -> list[TraceStep]:
    return [TraceStep("-", "note", 0, detail)]
