"""A worker turn whose commit fails keeps nothing of itself (flowlang/service/worker.py): the
events it accepted are not stored, so they do not wait to be processed (the vendor, answered
5xx, sends them again: processed once, not twice); the events stored by an earlier turn that it
took to process go back to be processed next, not left until a restart. The engine process of
`flowlang serve` takes webhooks this way when they are posted to it (not to its front)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlang.events import InboundEvent
from flowlang.runtime.engine import Engine
from flowlang.service import create_app
from flowlang.service.settings import Settings
from tests.service.helpers import environment, settings_for
from tests.store.helpers import inbound


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    return settings_for(tmp_path)


def texts_in(store: str | Path) -> list[str]:
    db = sqlite3.connect(store)
    try:
        rows = db.execute("SELECT content FROM messages WHERE direction = 'in' ORDER BY seq")
        return [json.loads(content)["text"] for (content,) in rows]
    finally:
        db.close()


def stored_event_ids(store: str | Path) -> list[str]:
    db = sqlite3.connect(store)
    try:
        return [row[0] for row in db.execute("SELECT event_id FROM inbound ORDER BY rowid")]
    finally:
        db.close()


@contextmanager
def failing_turn(settings: Settings, fail_on: str) -> Iterator[tuple[Any, Any]]:
    """The engine process's app (no intake of its own), one event a turn; the turn that first
    processes the event whose text is `fail_on` fails to commit ("disk I/O error")."""
    with TestClient(create_app(settings, own_intake=False)) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        worker.batch_seconds = 0.0  # a turn processes one event
        dialect = worker.store.dialect
        begin = dialect.transaction
        process = worker.engine.process_inbound
        fail: list[bool] = []
        failed: list[str] = []

        def processing(event: InboundEvent) -> Any:
            if event.text == fail_on and not failed:
                failed.append(event.text)
                fail.append(True)
            return process(event)

        @contextmanager
        def commit_failing() -> Iterator[None]:
            with begin():
                yield
                if fail:
                    fail.clear()
                    raise sqlite3.OperationalError("disk I/O error")

        worker.engine.process_inbound = processing
        dialect.transaction = commit_failing
        try:
            yield worker, client.portal
        finally:
            dialect.transaction = begin
        assert failed == [fail_on]


def events(*texts: str) -> list[InboundEvent]:
    return [inbound(text, sender=f"visitor-{text}", event_id=f"id-{text}") for text in texts]


def settled(worker: Any, portal: Any) -> None:
    """Every event accepted before it has been processed (a call runs after them)."""
    portal.call(worker.call, lambda _engine: None)


def test_events_accepted_in_a_failed_turn_are_processed_once_when_the_vendor_resends(
    settings: Settings,
) -> None:
    with failing_turn(settings, fail_on="one") as (worker, portal):
        sent = events("one", "two")
        with pytest.raises(sqlite3.OperationalError):
            portal.call(worker.accept, "web", sent, [], datetime.now(UTC))
        settled(worker, portal)
        assert texts_in(settings.store) == []  # nothing of a request answered 5xx
        ack = portal.call(worker.accept, "web", sent, [], datetime.now(UTC))
        assert (ack.accepted, ack.duplicates) == (2, 0)
        settled(worker, portal)
    assert texts_in(settings.store) == ["one", "two"]
    assert stored_event_ids(settings.store) == ["id-one", "id-two"]


def test_events_stored_by_an_earlier_turn_go_back_when_their_turn_fails(
    settings: Settings,
) -> None:
    def nothing(_engine: Engine) -> None:
        return None

    with failing_turn(settings, fail_on="two") as (worker, portal):
        ack = portal.call(
            worker.accept, "web", events("one", "two", "three"), [], datetime.now(UTC)
        )
        assert ack.accepted == 3
        portal.call(worker.call, nothing)  # after the failed turn and the next ones
    assert texts_in(settings.store) == ["one", "two", "three"]
