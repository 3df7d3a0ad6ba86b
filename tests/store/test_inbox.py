"""The SQLite store's inbox (`flowlang/store/inbox.py`): webhook events made durable in a file
of their own, taken into the store exactly once, whichever file a crash caught."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.store import SqliteStore, StoreError, count_unprocessed
from flowlang.store.inbox import Entry, Letter, SqliteInbox, inbox_path, rows_after

AT = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def event(i: int, channel: str = "web") -> Entry:
    return Entry(channel, f"e{i}", {"channel": channel, "event_id": f"e{i}", "text": f"hi {i}"})


def letter(reason: str) -> Entry:
    return Entry("web", None, {"body": "not json", "at": AT}, Letter("payload:web", {}, reason, AT))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "cc.sqlite"
    SqliteStore(path).close()
    return path


def test_a_batch_is_appended_in_order_and_a_repeated_event_is_a_duplicate(
    store_path: Path,
) -> None:
    inbox = SqliteInbox(store_path)
    try:
        first, second = inbox.append([[event(1), event(2)], [event(2), event(3)]])
        assert first.seqs[0] is not None and first.seqs[1] is not None
        assert first.seqs[0] < first.seqs[1]
        assert second.seqs[0] is None  # event 2 again, in the same batch: not appended
        [again] = inbox.append([[event(1), event(4, channel="line")]])
        assert again.seqs[0] is None  # appended by an earlier batch
        assert again.seqs[1] is not None  # another channel's e4: its own event
        assert [e.event_id for _, e in rows_after(inbox.db, 0)] == ["e1", "e2", "e3", "e4"]
    finally:
        inbox.close()


def test_an_event_the_store_took_and_the_inbox_trimmed_is_still_a_duplicate(
    store_path: Path,
) -> None:
    inbox = SqliteInbox(store_path)
    try:
        [done] = inbox.append([[event(1)]])
        seq = done.seqs[0]
        assert seq is not None
        with SqliteStore(store_path) as store, store.transaction():
            store.accept_inbound("web", "e1", {"text": "hi 1"})
            store.took_from_inbox(inbox.id, seq)
        [later] = inbox.append([[event(2)]])  # trims what the store took
        assert rows_after(inbox.db, 0)[0][1].event_id == "e2"
        [retry] = inbox.append([[event(1)]])  # the vendor's retry of e1
        assert retry.seqs == [None]
        assert later.seqs[0] is not None and later.seqs[0] > seq  # numbers are never reused
    finally:
        inbox.close()


def test_rows_not_taken_go_into_the_store_once_events_unprocessed_letters_dead(
    store_path: Path,
) -> None:
    inbox = SqliteInbox(store_path)
    inbox.append([[event(1), letter("not JSON")], [event(2)]])
    inbox.close()  # the service stopped (or was killed) before it processed them
    assert count_unprocessed(store_path) == 3
    with SqliteStore(store_path) as store:
        pending = store.pending_inbound()  # what recovery calls
        assert [p["event_id"] for p in pending] == ["e1", "e2"]
        assert [d["reason"] for d in store.dead_letters()] == ["not JSON"]
        store.pending_inbound()  # again: nothing taken twice
        assert len(store.dead_letters()) == 1
        assert store.unprocessed() == 2
    assert count_unprocessed(store_path) == 2  # in the store now, no longer in the inbox


def test_a_new_inbox_file_is_another_inbox_whose_rows_are_taken(store_path: Path) -> None:
    inbox = SqliteInbox(store_path)
    inbox.append([[event(1)]])
    inbox.close()
    with SqliteStore(store_path) as store:
        store.pending_inbound()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{inbox_path(store_path)}{suffix}").unlink(missing_ok=True)
    inbox = SqliteInbox(store_path)  # numbers start again at 1 in the new file
    inbox.append([[event(2)]])
    inbox.close()
    with SqliteStore(store_path) as store:
        assert [p["event_id"] for p in store.pending_inbound()] == ["e1", "e2"]


def test_an_inbox_that_is_not_a_database_is_refused_saying_which_file(
    store_path: Path,
) -> None:
    inbox_path(store_path).write_bytes(b"this is not a SQLite file" * 100)
    with pytest.raises(StoreError, match=r"cc\.sqlite-inbox"):
        SqliteInbox(store_path)


def test_the_inbox_is_owner_only(store_path: Path) -> None:
    SqliteInbox(store_path).close()
    assert inbox_path(store_path).stat().st_mode & 0o077 == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=40, deadline=None)
@given(payloads=st.lists(st.dictionaries(st.text(), JSON, max_size=4), min_size=1, max_size=5))
def test_payloads_come_back_as_they_went_in(tmp_path_factory: Any, payloads: list[Any]) -> None:
    path = tmp_path_factory.mktemp("inbox") / "cc.sqlite"
    SqliteStore(path).close()
    inbox = SqliteInbox(path)
    try:
        inbox.append([[Entry("web", f"e{i}", p) for i, p in enumerate(payloads)]])
        back = [entry.payload for _, entry in rows_after(inbox.db, 0)]
    finally:
        inbox.close()
    assert back == [json.loads(json.dumps(p)) for p in payloads]


def test_a_batch_that_cannot_be_written_keeps_nothing(store_path: Path) -> None:
    inbox = SqliteInbox(store_path)
    try:
        unstorable = Entry("web", "e2", {"x": object()})
        with pytest.raises(TypeError):
            inbox.append([[event(1)], [unstorable]])
        assert rows_after(inbox.db, 0) == []  # the whole batch: e1's request was not answered
        [done] = inbox.append([[event(1)]])  # the vendor's retry is taken
        assert done.seqs[0] is not None
    finally:
        inbox.close()


def test_a_retried_unreadable_payload_taken_from_the_inbox_is_one_dead_letter(
    store_path: Path,
) -> None:
    """The inbox keeps each request's rows (a letter has no id to tell a retry by); the store
    keeps the vendor's retry of an unreadable payload once, a different payload apart."""

    def unreadable(body: str, minutes: int) -> Entry:
        at = AT.replace(minute=minutes)
        payload = {"channel": "web", "received_at": at.isoformat(), "body": body}
        return Entry("web", None, payload, Letter("payload:web", payload, "not JSON", at))

    inbox = SqliteInbox(store_path)
    inbox.append([[unreadable("{", 1)], [unreadable("{", 2)], [unreadable("[", 3)]])
    inbox.close()
    with SqliteStore(store_path) as store:
        store.pending_inbound()  # what recovery calls: the rows into the store
        assert [d["payload"]["body"] for d in store.dead_letters()] == ["{", "["]
