"""What a unit of work appends to the log and the history is inserted together at its end
(one `executemany` a table), and an event processed in the unit that stores it is stored as
processed in one statement. Neither changes what is stored or what anyone reads: reads in the
transaction see the rows, a nested unit that fails takes its rows with it, and a transaction
that fails leaves none of them for the next one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlang.runtime.ports import ConversationView
from flowlang.store import SqliteStore, Store, open_store
from tests.store.helpers import engine_on, inbound

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _conversation(store: Store, sender: str) -> ConversationView:
    customer = store.resolve_customer("web", sender, None, None)
    return store.conversation_for(customer.id, "web", "gbank-web", AT, AT - AT)


def _texts(store: Store, customer_id: str) -> list[str]:
    return [m["content"]["text"] for m in store.history(customer_id).messages]


def test_reads_in_the_transaction_see_the_rows_appended_in_it(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store, store.transaction():
        conv = _conversation(store, "web-1")
        store.append_message(conv, "in", {"text": "hello"}, AT, "web-1")
        store.append_event("message_in", AT, conv.id, {"channel": "web"})
        assert _texts(store, conv.customer_id) == ["hello"]
        assert [e["kind"] for e in store.iter_events()] == ["message_in"]
        assert [e["channel"] for e in store.conversation_events(conv.id, "message_in")] == ["web"]
        assert store.last_event_seq() == 1


def test_a_nested_unit_that_fails_takes_its_appended_rows_with_it(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store:
        with store.transaction():
            conv = _conversation(store, "web-1")
            store.append_message(conv, "in", {"text": "kept before"}, AT, "web-1")
            with pytest.raises(RuntimeError), store.transaction():
                store.append_message(conv, "in", {"text": "undone"}, AT, "web-1")
                store.append_event("message_in", AT, conv.id, {"n": "undone"})
                raise RuntimeError("the event failed half way")
            store.append_message(conv, "in", {"text": "kept after"}, AT, "web-1")
            store.append_event("message_in", AT, conv.id, {"n": "kept"})
        assert _texts(store, conv.customer_id) == ["kept before", "kept after"]
        assert [e["n"] for e in store.iter_events()] == ["kept"]


def test_a_read_in_a_nested_unit_that_then_fails_loses_no_row_of_the_units_before_it(
    durable_location: str | Path,
) -> None:
    """The read writes every row kept so far, the earlier units' too, inside the failing unit:
    its rollback undoes them all; the earlier units' are written again, its own are not."""
    with open_store(durable_location) as store:
        with store.transaction():
            conv = _conversation(store, "web-1")
            store.append_message(conv, "in", {"text": "an earlier unit's"}, AT, "web-1")
            store.append_event("message_in", AT, conv.id, {"n": "earlier"})
            with pytest.raises(RuntimeError), store.transaction():
                store.append_message(conv, "in", {"text": "undone, read"}, AT, "web-1")
                assert len(_texts(store, conv.customer_id)) == 2  # the read writes both
                assert len(list(store.iter_events())) == 1
                store.append_message(conv, "in", {"text": "undone, after the read"}, AT, "web-1")
                raise RuntimeError("the unit failed after its read")
            with store.transaction():  # a unit that reads and succeeds keeps everything
                store.append_event("message_in", AT, conv.id, {"n": "later"})
                assert [e["n"] for e in store.iter_events()] == ["earlier", "later"]
            store.append_message(conv, "in", {"text": "a later unit's"}, AT, "web-1")
        assert _texts(store, conv.customer_id) == ["an earlier unit's", "a later unit's"]
        assert [e["n"] for e in store.iter_events()] == ["earlier", "later"]


def test_a_transaction_that_fails_leaves_none_of_its_rows_to_the_next(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store:
        with pytest.raises(RuntimeError), store.transaction():
            conv = _conversation(store, "web-1")
            store.append_message(conv, "in", {"text": "never"}, AT, "web-1")
            store.append_event("message_in", AT, conv.id, {"n": "never"})
            raise RuntimeError("the unit failed")
        with store.transaction():
            store.append_event("agent_state", AT, None, {"agent": "ana", "state": "available"})
        assert [e["kind"] for e in store.iter_events()] == ["agent_state"]
        rows = store.history(conv.customer_id).messages
        assert rows == []


def test_a_merge_in_the_transaction_moves_the_history_appended_in_it(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store:
        with store.transaction():
            kept = _conversation(store, "web-1")
            gone = _conversation(store, "web-2")
            store.append_message(gone, "in", {"text": "from the other"}, AT, "web-2")
            store.merge_customers(keep=kept.customer_id, absorb=gone.customer_id)
        assert _texts(store, kept.customer_id) == ["from the other"]


def test_an_event_processed_where_it_is_stored_is_stored_as_processed_in_one_statement(
    tmp_path: Path,
) -> None:
    engine, store = engine_on(tmp_path / "one.db")
    assert isinstance(store, SqliteStore)
    inbound_writes: list[str] = []
    store.db.set_trace_callback(
        lambda sql: (
            inbound_writes.append(" ".join(sql.split()[:3]))
            if " inbound" in sql and sql.lstrip().startswith(("INSERT", "UPDATE"))
            else None
        )
    )
    outcome = engine.handle(inbound("Hello", sender="web-1"))
    assert not outcome.dead_lettered
    assert inbound_writes == ["INSERT INTO inbound"]  # not a second statement to mark it
    assert store.pending_inbound() == []
    assert engine.handle(inbound("Hello", sender="web-1")).duplicate
    store.close()


def test_storing_an_event_as_processed_needs_the_transaction_that_processes_it(
    durable_location: str | Path,
) -> None:
    """Stored as processed and committed alone, a crash before its processing would lose it."""
    with open_store(durable_location) as store:
        with pytest.raises(ValueError, match="inside a transaction"):
            store.accept_inbound("web", "m1", {"n": 1}, processing=True)
        assert store.pending_inbound() == []
        with pytest.raises(RuntimeError), store.transaction():
            assert store.accept_inbound("web", "m1", {"n": 1}, processing=True)
            raise RuntimeError("the processing failed: the event was never stored")
        with store.transaction():
            assert store.accept_inbound("web", "m1", {"n": 1}, processing=True)
            assert not store.accept_inbound("web", "m1", {"n": 1}, processing=True)
            assert not store.accept_inbound("web", "m1", {"n": 1})
            assert store.accept_inbound("web", "m2", {"n": 2})
        assert [p["n"] for p in store.pending_inbound()] == [2]


def test_events_stored_as_processed_keep_their_order_among_the_others(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "order.db") as store:
        store.accept_inbound("web", "m1", {"n": 1})
        with store.transaction():
            store.accept_inbound("web", "m2", {"n": 2}, processing=True)
        store.accept_inbound("web", "m3", {"n": 3})
        rows = store.db.execute("SELECT event_id, processed FROM inbound ORDER BY seq").fetchall()
        assert rows == [("m1", 0), ("m2", 1), ("m3", 0)]


def test_a_new_conversation_is_written_once_in_the_unit_that_starts_it(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "once.db")
    assert isinstance(store, SqliteStore)
    writes: list[str] = []
    store.db.set_trace_callback(
        lambda sql: (
            writes.append(sql) if sql.lstrip().startswith("INSERT INTO conversations") else None
        )
    )
    outcome = engine.handle(inbound("Hello", sender="web-1"))
    assert len(writes) == 1  # not once when it starts and again after its flow ran
    view = store.get_conversation(outcome.conversation_id or "")
    assert view is not None and view.flow_state  # its record as the unit left it
    assert view.messages == len(store.history(view.customer_id).messages) == 2  # hello, welcome


def test_a_conversation_started_outside_a_transaction_is_stored_at_once(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store:
        customer = store.resolve_customer("web", "web-1", None, None)
        conv = store.conversation_for(customer.id, "web", "gbank-web", AT, AT - AT)
        stored = store.get_conversation(conv.id)
        assert stored is not None and stored.customer_id == customer.id


def test_an_outbox_row_is_numbered_by_sqlite_without_returning(tmp_path: Path) -> None:
    """Its id is the row's (`lastrowid`): the one delivery deletes, and no other."""
    with SqliteStore(tmp_path / "outbox.db") as store:
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        with store.transaction():
            first = store.add_outbound("conv1", {"text": "one"}, AT)
            second = store.add_outbound("conv2", {"text": "two"}, AT, ["web"])
        assert not any("RETURNING" in s for s in statements if "INTO outbox" in s)
        pending = {p.id: (p.message["text"], p.delivered_to) for p in store.pending_outbound()}
        assert pending == {first: ("one", []), second: ("two", ["web"])}
        store.outbound_done(first)
        with store.transaction():
            pass
        assert [p.id for p in store.pending_outbound()] == [second]
