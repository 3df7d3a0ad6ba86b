"""`engine.handle` on a durable store: a customer's message is stored and processed in one
commit, and a message whose processing fails is kept, as a dead letter, in that same commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flowlang.project import load_project
from flowlang.runtime.ports import DataResult
from flowlang.store import SqliteStore
from tests.store.helpers import ROOT, engine_on, inbound


def _commits(store: Any) -> list[str]:
    """The COMMITs the store's connection runs from now on."""
    connection: sqlite3.Connection = store.db
    seen: list[str] = []
    connection.set_trace_callback(
        lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    return seen


def test_a_message_is_stored_and_processed_in_one_commit(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "one.db")
    assert isinstance(store, SqliteStore)
    commits = _commits(store)
    outcome = engine.handle(inbound("Hello", sender="web-1"))
    assert len(commits) == 1  # the event alone was committed first, before
    assert outcome.conversation_id is not None and not outcome.dead_lettered
    assert store.pending_inbound() == []  # stored and processed together
    view = store.get_conversation(outcome.conversation_id)
    assert view is not None
    texts = [m["content"].get("text") for m in store.history(view.customer_id).messages]
    assert "Hello" in texts
    again = engine.handle(inbound("Hello", sender="web-1"))
    assert again.duplicate and len(commits) == 2
    store.close()


class BrokenCrm:
    def call(self, action: str, inputs: dict[str, Any], timeout: int | None) -> DataResult:
        raise ConnectionError("the CRM is down")


def test_a_message_whose_processing_fails_is_kept_in_the_same_commit(tmp_path: Path) -> None:
    """What the failed processing wrote (the history line, log events, replies) is undone,
    listeners hear nothing of it and nothing is sent; the event is stored, marked processed
    and kept as a dead letter to replay, all in one commit."""
    project, _ws = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    store = SqliteStore(tmp_path / "fail.db")
    engine = project.engine(store=store, data_actions=BrokenCrm())
    heard: list[str] = []
    engine.listen(lambda event: heard.append(str(event["kind"])))
    commits = _commits(store)
    failed = engine.handle(inbound("Hi", sender="web-2", phone="+447700900123"))
    assert failed.dead_lettered and "ConnectionError: the CRM is down" in failed.note
    assert len(commits) == 1
    assert heard == []
    (letter,) = store.dead_letters()
    assert letter["source"] == "inbound:web" and letter["payload"]["text"] == "Hi"
    assert store.pending_inbound() == []
    assert store.pending_outbound() == []
    assert [e["kind"] for e in store.iter_events()] == []
    again = engine.handle(inbound("Hi", sender="web-2", phone="+447700900123"))
    assert again.duplicate  # the channel's retry is not processed a second time
    store.close()


def _writes(store: SqliteStore) -> list[str]:
    """The statements that change rows, run on the store's connection from now on."""
    seen: list[str] = []
    store.db.set_trace_callback(
        lambda sql: (
            seen.append(sql) if sql.lstrip().upper().startswith(("INSERT", "UPDATE")) else None
        )
    )
    return seen


def test_a_returning_customer_is_resolved_without_a_write(tmp_path: Path) -> None:
    """Nothing about a customer seen before changes when they write again with what the
    store knows already: their message reads their record and writes nothing to it (on a
    store of a million customers, a write dirties pages a read leaves cached)."""
    store = SqliteStore(tmp_path / "returning.db")
    first = store.resolve_customer("whatsapp", "447700900123", "+447700900123", "Ana")
    writes = _writes(store)
    again = store.resolve_customer("whatsapp", "447700900123", "+447700900123", "Ana")
    assert again.id == first.id and not again.new and "platform id" in again.known_by
    assert (again.name, again.phone) == ("Ana", "+447700900123")
    assert writes == []
    store.close()


def test_what_the_store_did_not_know_of_a_returning_customer_is_still_recorded(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "learns.db")
    first = store.resolve_customer("web", "visitor-9", None, None)
    writes = _writes(store)
    later = store.resolve_customer("web", "visitor-9", "+447700900999", "Bea")
    assert later.id == first.id and (later.name, later.phone) == ("Bea", "+447700900999")
    assert any(sql.startswith("UPDATE customers") for sql in writes)
    assert store.find_customer("phone", "+447700900999") == store.get_customer(first.id)
    store.close()
