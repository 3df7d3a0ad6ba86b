"""The leader's turn on PostgreSQL: its events' customers asked for together before it, and
its events' units ending without a round trip of their own (`PostgresStore.deferring`). A
statement that fails there is reported later, in another unit or at the end: then the whole
transaction is undone, never committed with the wrong unit undone, and run again unit by unit
undoes the failing one alone (flowlang/service/worker.py)."""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta

import psycopg
import pytest

from flowlang.store.postgres import PostgresStore, TurnUndone
from tests.round_trips import counting
from tests.store.helpers import T0

WINDOW = timedelta(hours=24)
SENDERS = [("whatsapp", f"4477009001{n:02d}", None) for n in range(3)]


def _returning_customers(store: PostgresStore) -> list[str]:
    """Three customers, each with a conversation; their conversations' ids."""
    ids = []
    for channel, sender, _ in SENDERS:
        customer = store.resolve_customer(channel, sender, None, None)
        ids.append(store.conversation_for(customer.id, channel, "wa", T0, WINDOW).id)
    return ids


def _event(store: PostgresStore, sender: str, text: str) -> str:
    """What the engine does with a customer's message, in short: their conversation found,
    the message kept, the conversation saved."""
    customer = store.resolve_customer("whatsapp", sender, None, None)
    conv = store.conversation_for(customer.id, "whatsapp", "wa", T0, WINDOW)
    store.append_message(conv, "in", {"text": text}, T0, sender)
    store.save_conversation(conv)
    return conv.id


def test_a_turns_events_wait_for_the_server_once_for_their_customers_and_once_to_commit(
    postgres_store: PostgresStore,
) -> None:
    conversations = _returning_customers(postgres_store)
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        postgres_store.look_up(SENDERS)
        with postgres_store.deferring():
            found = []
            for _, sender, _ in SENDERS:
                with postgres_store.transaction():
                    found.append(_event(postgres_store, sender, "hello"))
        assert len(waits) == 1  # the customers, with their conversations
    assert len(waits) == 2  # and the commit
    assert found == conversations
    first = postgres_store.find_customer("whatsapp", SENDERS[0][1])
    assert first is not None and len(postgres_store.history(first.id).messages) == 1


def test_without_deferring_each_unit_waits_at_its_end(postgres_store: PostgresStore) -> None:
    """The same events, unit by unit (the turn run again after a failure): a wait each."""
    _returning_customers(postgres_store)
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        postgres_store.look_up(SENDERS)
        for _, sender, _ in SENDERS:
            with postgres_store.transaction():
                _event(postgres_store, sender, "hello")
    assert len(waits) == 1 + len(SENDERS) + 1


def test_a_customer_made_or_moved_on_in_the_turn_is_not_answered_from_before_it(
    postgres_store: PostgresStore,
) -> None:
    """The answers asked for before the turn are dropped where the turn changed them: a new
    customer's second message finds the customer its first made; a conversation started
    anew (the one before timed out) is the one the next message continues."""
    old = postgres_store.resolve_customer("whatsapp", "447700900555", None, None)
    stale = postgres_store.conversation_for(old.id, "whatsapp", "wa", T0 - 2 * WINDOW, WINDOW)
    senders = [("whatsapp", "447700900444", None), ("whatsapp", "447700900555", None)]
    with postgres_store.transaction():
        postgres_store.look_up(senders + senders)
        with postgres_store.deferring():
            seen = []
            for _ in range(2):
                for _, sender, _ in senders:
                    with postgres_store.transaction():
                        seen.append(_event(postgres_store, sender, "again"))
    new = postgres_store.find_customer("whatsapp", "447700900444")
    assert new is not None
    assert seen[0] == seen[2] and seen[1] == seen[3]  # one conversation each, both times
    assert seen[1] != stale.id  # the timed-out one was not continued
    assert len(postgres_store.conversations_of(new.id)) == 1
    assert len(postgres_store.conversations_of(old.id)) == 2


def test_a_failure_reported_in_a_later_unit_undoes_the_whole_transaction(
    postgres_store: PostgresStore,
) -> None:
    """The failing statement is the second unit's; the third reads and is told. Undoing the
    third alone would keep a unit that failed: the transaction commits nothing, even when
    the caller carries on past the failure."""
    conversations = _returning_customers(postgres_store)
    with pytest.raises(TurnUndone), postgres_store.transaction(), postgres_store.deferring():
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 1}, "first", T0)
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 2}, "second", T0)
            postgres_store.claim_identity("c404", "account_number", "1", "conv1", T0)
        with suppress(TurnUndone), postgres_store.transaction():
            postgres_store.get_conversation(conversations[0])  # told here
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 4}, "fourth", T0)
    assert postgres_store.dead_letters() == []


def test_a_failure_reported_at_the_confirm_undoes_the_whole_transaction(
    postgres_store: PostgresStore,
) -> None:
    with pytest.raises(TurnUndone), postgres_store.transaction():
        with postgres_store.deferring():
            with postgres_store.transaction():
                postgres_store.dead_letter("test", {"n": 1}, "first", T0)
            with postgres_store.transaction():
                postgres_store.claim_identity("c404", "account_number", "1", "conv1", T0)
        postgres_store.confirm()  # what the worker does before the turn's calls
    assert postgres_store.dead_letters() == []


def test_a_failure_reported_at_the_commit_commits_nothing(postgres_store: PostgresStore) -> None:
    # (reported at the commit, or at a statement sent after it if its answer came by then)
    failed = pytest.raises((psycopg.errors.ForeignKeyViolation, TurnUndone))
    with failed, postgres_store.transaction(), postgres_store.deferring():
        with postgres_store.transaction():
            postgres_store.claim_identity("c404", "account_number", "1", "conv1", T0)
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 2}, "second", T0)
    assert postgres_store.dead_letters() == []


def test_run_again_unit_by_unit_the_failing_unit_is_undone_alone(
    postgres_store: PostgresStore,
) -> None:
    with postgres_store.transaction():
        for n in range(1, 4):
            with suppress(psycopg.errors.ForeignKeyViolation), postgres_store.transaction():
                postgres_store.dead_letter("test", {"n": n}, f"unit {n}", T0)
                if n == 2:
                    postgres_store.claim_identity("c404", "account_number", "1", "conv1", T0)
    assert [letter["reason"] for letter in postgres_store.dead_letters()] == ["unit 1", "unit 3"]


def test_a_unit_that_raises_after_the_others_waited_for_nothing_is_undone_alone(
    postgres_store: PostgresStore,
) -> None:
    """A unit that fails on its own (the engine raised, no statement failed) finds every
    statement before it done: it is undone alone, even while deferring."""
    with postgres_store.transaction(), postgres_store.deferring():
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 1}, "kept", T0)
        with pytest.raises(RuntimeError), postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 2}, "undone", T0)
            raise RuntimeError("a bug in a flow's step")
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 3}, "kept too", T0)
    assert [letter["reason"] for letter in postgres_store.dead_letters()] == ["kept", "kept too"]
