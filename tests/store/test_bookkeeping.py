"""The conversation bookkeeping the stores share (`ConversationView`): threading by the
window, the message count and the last activity, the last agent carried to the next one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.ports import ConversationStore, ConversationView
from flowlang.store import SqliteStore
from flowlang.store.postgres import PostgresStore
from tests.postgres_server import empty
from tests.store.helpers import T0

WINDOW = timedelta(hours=1)
STORES: dict[str, Callable[[], ConversationStore]] = {
    "memory": MemoryStore,
    "sqlite": lambda: SqliteStore(":memory:"),
}


def _view() -> ConversationView:
    return ConversationView("conv1", "c1", "web", "a", started_at=T0, last_activity_at=T0)


def test_a_message_continues_the_conversation_only_within_the_window() -> None:
    conversation = _view()
    assert conversation.continues_at(T0 + WINDOW - timedelta(seconds=1), WINDOW)
    assert not conversation.continues_at(T0 + WINDOW, WINDOW)
    assert not conversation.continues_at(T0, timedelta(0))  # a zero window threads nothing


def test_counting_a_message_never_moves_the_last_activity_back() -> None:
    conversation = _view()
    conversation.count_message(T0 + timedelta(minutes=5))
    conversation.count_message(T0 + timedelta(minutes=2))  # arrived late
    assert conversation.messages == 2
    assert conversation.last_activity_at == T0 + timedelta(minutes=5)


def test_the_next_conversation_keeps_the_last_agent_and_closing_is_once() -> None:
    before = _view()
    before.last_agent = "ana"
    after = ConversationView.starting("conv2", "c1", "web", "a", T0 + WINDOW, after=before)
    assert (after.id, after.last_agent, after.messages) == ("conv2", "ana", 0)
    assert after.started_at == after.last_activity_at == T0 + WINDOW
    assert before.close() and before.status == "closed"
    assert not before.close()


MINUTES = st.lists(st.integers(0, 300), min_size=1, max_size=12)


@pytest.mark.parametrize("kind", sorted(STORES))
@settings(max_examples=40, deadline=None)
@given(minutes=MINUTES)
def test_the_stores_thread_count_and_time_messages_alike(kind: str, minutes: list[int]) -> None:
    _threads_like_the_model(STORES[kind](), minutes)


# One store for every example, emptied before each (faster than a schema each).
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(minutes=MINUTES)
def test_postgres_threads_counts_and_times_messages_alike(
    postgres_store: PostgresStore, minutes: list[int]
) -> None:
    empty(postgres_store)
    _threads_like_the_model(postgres_store, minutes)


def _threads_like_the_model(store: ConversationStore, minutes: list[int]) -> None:
    """Messages at these minutes (in arrival order, some late) against a model of the rule."""
    customer = store.resolve_customer("web", "v1", None, None)
    expected: list[list[int]] = []  # the minutes of each conversation, in order
    last = None
    seen: list[str] = []
    for minute in minutes:
        at = T0 + timedelta(minutes=minute)
        if last is None or at - last >= WINDOW:
            expected.append([])
            last = at
        expected[-1].append(minute)
        last = max(last, at)
        conversation = store.conversation_for(customer.id, "web", "a", at, WINDOW)
        store.append_message(conversation, "inbound", {"text": "hi"}, at, "customer")
        store.save_conversation(conversation)
        if conversation.id not in seen:
            seen.append(conversation.id)
    assert len(seen) == len(expected)
    for conversation_id, group in zip(seen, expected, strict=True):
        stored = store.get_conversation(conversation_id)
        assert stored is not None
        assert stored.messages == len(group)
        assert stored.last_activity_at == T0 + timedelta(minutes=max(group))
        assert stored.started_at == T0 + timedelta(minutes=group[0])
        assert (stored.status == "closed") is (conversation_id != seen[-1])
