"""Reads the service makes in one query: an agent's conversations with their customers' names;
a returning customer with their current conversations. A conversation read or saved in a
transaction is read again from memory for the rest of it (an agent's action reads its
conversation several times: each a round trip on a server), and never as a nested unit that
failed left it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from flowlang.store import open_store
from flowlang.store.postgres import PostgresStore
from tests.round_trips import counting
from tests.store.helpers import T0

WINDOW = timedelta(hours=72)


def test_conversations_are_read_with_their_customers_names_in_one_query(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store:
        ana = store.resolve_customer("whatsapp", "447700900001", "+447700900001", "Ana")
        nameless = store.resolve_customer("web", "visitor-7", None, None)
        first = store.conversation_for(ana.id, "whatsapp", "+44", T0, timedelta(hours=24))
        second = store.conversation_for(nameless.id, "web", "site", T0, timedelta(hours=24))
        found = store.conversations_with_names([first.id, second.id, "conv-none", first.id])
        assert set(found) == {first.id, second.id}  # one unknown is left out, not an error
        assert (found[first.id][0].customer_id, found[first.id][1]) == (ana.id, "Ana")
        assert (found[second.id][0].channel, found[second.id][1]) == ("web", None)
        assert store.conversations_with_names([]) == {}


def test_a_nested_unit_that_failed_leaves_no_trace_in_what_is_read_after(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store:
        customer = store.resolve_customer("web", "visitor-1", None, "Ada")
        conv_id = store.conversation_for(customer.id, "web", "gbank-web", T0, WINDOW).id
        with store.transaction():
            conv = store.get_conversation(conv_id)
            assert conv is not None
            conv.status = "queued"
            store.save_conversation(conv)
            with pytest.raises(RuntimeError), store.transaction():
                again = store.get_conversation(conv_id)
                assert again is not None and again.status == "queued"  # as saved above
                again.status = "closed"
                store.save_conversation(again)
                raise RuntimeError("the unit fails after saving")
            seen = store.get_conversation(conv_id)
            assert seen is not None and seen.status == "queued"  # not "closed"
        after = store.get_conversation(conv_id)
        assert after is not None and after.status == "queued"
        with pytest.raises(RuntimeError), store.transaction():
            conv = store.get_conversation(conv_id)
            assert conv is not None
            conv.status = "closed"
            store.save_conversation(conv)
            raise RuntimeError("the whole unit fails")
        last = store.get_conversation(conv_id)
        assert last is not None and last.status == "queued"


def test_each_read_is_a_copy_of_its_own(durable_location: str | Path) -> None:
    with open_store(durable_location) as store:
        customer = store.resolve_customer("web", "visitor-1", None, "Ada")
        conv_id = store.conversation_for(customer.id, "web", "gbank-web", T0, WINDOW).id
        with store.transaction():
            first = store.get_conversation(conv_id)
            assert first is not None
            first.status = "closed"  # changed and not saved
            second = store.get_conversation(conv_id)
            assert second is not None and second.status != "closed"


def test_a_conversation_is_read_from_the_server_once_a_transaction(
    postgres_store: PostgresStore,
) -> None:
    customer = postgres_store.resolve_customer("web", "visitor-1", None, "Ada")
    conv_id = postgres_store.conversation_for(customer.id, "web", "gbank-web", T0, WINDOW).id
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        for _ in range(3):
            assert postgres_store.get_conversation(conv_id) is not None
    assert len(waits) == 1
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        current = postgres_store.conversation_for(customer.id, "web", "gbank-web", T0, WINDOW)
        assert postgres_store.get_conversation(current.id) is not None
    assert len(waits) == 1  # found with the customer's pointer to it


def test_a_customer_found_twice_in_a_transaction_keeps_one_conversation(
    durable_location: str | Path,
) -> None:
    """Two messages of one customer in one turn (each a nested unit): the second finds the
    conversation the first started, with what the first saved."""
    with open_store(durable_location) as store, store.transaction():
        ids = []
        for n in range(2):
            with store.transaction():
                customer = store.resolve_customer("whatsapp", "447700900123", None, None)
                conv = store.conversation_for(customer.id, "whatsapp", "wa", T0, WINDOW)
                assert conv.messages == n
                conv.messages += 1
                store.save_conversation(conv)
                ids.append(conv.id)
        assert ids[0] == ids[1]
        other = store.conversation_for(customer.id, "web", "gbank-web", T0, WINDOW)
        assert other.id != ids[0]  # another channel, another conversation
    with open_store(durable_location) as store:
        again = store.resolve_customer("whatsapp", "447700900123", None, None)
        assert store.conversation_for(again.id, "whatsapp", "wa", T0, WINDOW).id == ids[0]


def test_a_returning_customer_and_their_conversation_are_one_round_trip(
    postgres_store: PostgresStore,
) -> None:
    first = postgres_store.resolve_customer("whatsapp", "447700900123", None, None)
    started = postgres_store.conversation_for(first.id, "whatsapp", "wa", T0, WINDOW)
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        customer = postgres_store.resolve_customer("whatsapp", "447700900123", None, None)
        conv = postgres_store.conversation_for(customer.id, "whatsapp", "wa", T0, WINDOW)
    assert customer.id == first.id and conv.id == started.id and conv.ongoing
    assert len(waits) == 1


def test_the_next_customer_asked_for_ahead_comes_with_the_end_of_the_unit_before(
    postgres_store: PostgresStore,
) -> None:
    """The service's leader names the next event's sender before each event: the customer
    and their conversation then come back with the round trip that ends the unit before."""
    first = postgres_store.resolve_customer("whatsapp", "447700900123", None, None)
    started = postgres_store.conversation_for(first.id, "whatsapp", "wa", T0, WINDOW)
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        postgres_store.read_ahead("whatsapp", "447700900123", None)
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {}, "the event before", T0)
        assert len(waits) == 1  # that unit's end
        with postgres_store.transaction():
            customer = postgres_store.resolve_customer("whatsapp", "447700900123", None, None)
            conv = postgres_store.conversation_for(customer.id, "whatsapp", "wa", T0, WINDOW)
            assert len(waits) == 1  # nothing more to wait for
        postgres_store.read_ahead("whatsapp", "447700900999", None)  # someone else, unused
        with postgres_store.transaction():
            postgres_store.dead_letter("test", {}, "another", T0)
        assert postgres_store.resolve_customer("whatsapp", "447700900123", None, None).id == (
            first.id
        )
    assert customer.id == first.id and conv.id == started.id


def test_a_customer_asked_for_ahead_of_a_unit_that_failed_is_asked_again(
    postgres_store: PostgresStore,
) -> None:
    """What a failed unit wrote (here a new customer) is undone: the answer that came with
    its end is not used."""
    with postgres_store.transaction():
        postgres_store.read_ahead("whatsapp", "447700900123", None)
        with pytest.raises(psycopg.errors.ForeignKeyViolation), postgres_store.transaction():
            made = postgres_store.resolve_customer("whatsapp", "447700900123", None, None)
            postgres_store.claim_identity("c404", "account_number", "1", "conv1", T0)  # no c404
        again = postgres_store.resolve_customer("whatsapp", "447700900123", None, None)
    assert made.new and again.new
    assert postgres_store.find_customer("whatsapp", "447700900123") is not None
