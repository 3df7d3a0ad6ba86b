"""The webhook intake's writer on PostgreSQL (`flowlang/store/postgres_inbox.py`): a batch of
requests is one transaction that waits for the server once, its numbers answered with its
commit, and it notifies the leader only when an event was new (docs/scaling.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from flowlang.store.inbox import Entry, Letter
from flowlang.store.postgres import PostgresStore
from flowlang.store.postgres_inbox import PostgresInbox
from tests.round_trips import counting

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _event(sender: str, event_id: str) -> Entry:
    payload: dict[str, Any] = {"channel": "whatsapp", "sender_id": sender, "text": event_id}
    return Entry("whatsapp", event_id, payload)


def _notified(listening: psycopg.Connection[Any]) -> int:
    return sum(1 for _ in listening.notifies(timeout=0.3))


def test_a_batch_is_numbered_in_order_and_waits_for_the_server_once(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()  # the schema, made
    inbox = PostgresInbox(postgres_url)
    try:
        letter = Entry("whatsapp", None, {"raw": 1}, Letter("whatsapp", {"raw": 1}, "bad", T0))
        requests = [
            [_event("a", "e1"), _event("b", "e2")],
            [letter, _event("a", "e3"), _event("a", "e1")],  # e1 again: a duplicate
        ]
        with counting(inbox.store.db) as waits:
            appended = inbox.append(requests)
        assert len(waits) == 1  # the commit, which brings the numbers back
        first, second = appended
        assert second.seqs[0] is None and second.seqs[2] is None  # the letter; the duplicate
        numbers = [n for n in (first.seqs[0], first.seqs[1], second.seqs[1]) if n is not None]
        assert len(numbers) == 3 and numbers == sorted(set(numbers))
        with PostgresStore(postgres_url) as store:
            assert [e["text"] for e in store.next_inbound(10)] == ["e1", "e2", "e3"]
            assert [d["reason"] for d in store.dead_letters()] == ["bad"]
        # Seen before, all of them: nothing new, nothing numbered.
        assert inbox.append([[_event("b", "e2")]])[0].seqs == [None]
    finally:
        inbox.close()


def test_it_notifies_only_when_it_stored_something_new_and_only_when_asked(
    postgres_url: str,
) -> None:
    PostgresStore(postgres_url).close()
    leading = False
    inbox = PostgresInbox(postgres_url, announce=lambda: not leading)
    try:
        with psycopg.connect(postgres_url, autocommit=True) as listening:
            listening.execute("LISTEN flowlang_inbound")
            inbox.append([[_event("a", "e1"), _event("b", "e2")]])
            assert _notified(listening) == 1  # one for the commit, however many events
            inbox.append([[_event("a", "e1")]])  # a duplicate: nothing for the leader to do
            assert _notified(listening) == 0
            leading = True  # this process's engine is woken without a NOTIFY
            inbox.append([[_event("c", "e3")]])
            assert _notified(listening) == 0
            with PostgresStore(postgres_url) as store:
                assert [e["text"] for e in store.next_inbound(10)] == ["e1", "e2", "e3"]
    finally:
        inbox.close()


def test_a_retried_requests_unreadable_payload_is_kept_once_a_different_one_too(
    postgres_url: str,
) -> None:
    """The vendor sends a request again after a 503 whose commit had reached the server: its
    event is a duplicate by id, its unreadable payload (received later) is not kept again."""
    PostgresStore(postgres_url).close()
    inbox = PostgresInbox(postgres_url)

    def request(body: str, received: datetime) -> list[Entry]:
        payload = {"channel": "whatsapp", "received_at": received.isoformat(), "body": body}
        return [
            _event("a", "e1"),
            Entry("whatsapp", None, payload, Letter("payload:whatsapp", payload, "bad", received)),
        ]

    try:
        inbox.append([request("{", T0)])
        inbox.append([request("{", T0 + timedelta(seconds=5))])  # the retry
        inbox.append([request("{{", T0 + timedelta(seconds=9))])  # another payload
        with PostgresStore(postgres_url) as store:
            assert [d["payload"]["body"] for d in store.dead_letters()] == ["{", "{{"]
            assert len(store.next_inbound(10)) == 1
    finally:
        inbox.close()
