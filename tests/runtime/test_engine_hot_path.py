"""What `engine.handle` leaves out on its hot path, and that leaving it out changes nothing a
host sees: the inbound event's stored form only for a store that keeps it."""

from __future__ import annotations

from typing import Any

import pytest

from flowlang.events import EventKind, InboundEvent
from flowlang.runtime.memory import MemoryStore
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
