"""Reads the service makes in one query: an agent's conversations with their customers' names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flowlang.store import open_store
from tests.store.helpers import T0


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
