"""A leader's turn on PostgreSQL ends its events' units without waiting for the server
(docs/scaling.md, "Units that do not wait"): when a statement of one event fails, the turn is
undone whole and run again event by event, so that the failing event alone is kept as a dead
letter and every other one is processed once, in order."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from flowlang.service import create_app
from tests.service.helpers import environment, settings_for, signed_headers, whatsapp_text

TEXTS = ["one", "two", "boom", "four", "five"]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(query).fetchall()


@pytest.fixture
def held_leader(tmp_path: Path, postgres_url: str) -> Iterator[tuple[TestClient, Any]]:
    """The service as the leader, its engine held by a long call until the test's webhooks are
    durable: they are then processed in one turn."""
    with TestClient(create_app(settings_for(tmp_path, store=postgres_url))) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        assert worker.role == "leader"
        worker.batch_seconds = 30.0  # one turn takes them all, however busy the machine
        yield client, worker


def test_a_statement_failing_in_a_turn_is_its_events_alone_and_the_rest_are_processed_once(
    held_leader: tuple[TestClient, Any], postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, worker = held_leader
    portal = client.portal
    assert portal is not None
    busy, release = threading.Event(), threading.Event()

    def long_job(_engine: object) -> None:
        busy.set()
        release.wait(30)

    store = worker.store
    append = store.append_message

    def failing_on_boom(conv: Any, direction: str, content: dict[str, Any], *args: Any) -> None:
        if content.get("text") == "boom":  # a statement the server refuses, in its unit
            store.dialect.execute("INSERT INTO no_such_table VALUES (1)")
        append(conv, direction, content, *args)

    store.append_message = failing_on_boom
    held = portal.start_task_soon(worker.call, long_job)
    assert busy.wait(10)
    try:
        for n, text in enumerate(TEXTS):
            body = json.dumps(
                whatsapp_text(f"44770090{n:04d}", f"wamid.deferred.{n}", text)
            ).encode()
            answer = client.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert answer.status_code == 200
    finally:
        with caplog.at_level(logging.WARNING, logger="flowlang.service"):
            release.set()
            held.result(10)
            for _ in range(400):
                if _rows(postgres_url, "SELECT processed FROM inbound WHERE processed = 0") == []:
                    break
                time.sleep(0.05)
    processed = _rows(postgres_url, "SELECT processed FROM inbound ORDER BY seq")
    assert processed == [(1,)] * len(TEXTS)
    kept = [
        json.loads(content)["text"]
        for (content,) in _rows(
            postgres_url, "SELECT content FROM messages WHERE direction = 'in' ORDER BY seq"
        )
    ]
    assert kept == [text for text in TEXTS if text != "boom"]  # each once, in order
    letters = _rows(
        postgres_url,
        "SELECT source, payload, reason FROM dead_letters WHERE source LIKE 'inbound:%'",
    )
    assert [(source, json.loads(payload)["text"]) for source, payload, _ in letters] == [
        ("inbound:whatsapp", "boom")
    ]
    assert "no_such_table" in letters[0][2]
    assert any("run again, event by event" in record.getMessage() for record in caplog.records)


def test_a_sender_the_server_cannot_store_fails_alone_not_the_event_before_it(
    held_leader: tuple[TestClient, Any], postgres_url: str
) -> None:
    """A sender id with a NUL character cannot be written to PostgreSQL: its event is kept
    as a dead letter with the reason; the events before and after it in the turn, whose
    units asked for the next customer, are processed."""
    client, worker = held_leader
    portal = client.portal
    assert portal is not None
    busy, release = threading.Event(), threading.Event()

    def long_job(_engine: object) -> None:
        busy.set()
        release.wait(30)

    held = portal.start_task_soon(worker.call, long_job)
    assert busy.wait(10)
    senders = ["447700900001", "4477009\x0000002", "447700900003"]
    try:
        for n, sender in enumerate(senders):
            body = json.dumps(whatsapp_text(sender, f"wamid.nul.{n}", f"text {n}")).encode()
            answer = client.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert answer.status_code == 200
    finally:
        release.set()
        held.result(10)
    for _ in range(400):
        if _rows(postgres_url, "SELECT processed FROM inbound WHERE processed = 0") == []:
            break
        time.sleep(0.05)
    kept = [
        json.loads(content)["text"]
        for (content,) in _rows(
            postgres_url, "SELECT content FROM messages WHERE direction = 'in' ORDER BY seq"
        )
    ]
    assert kept == ["text 0", "text 2"]
    letters = _rows(
        postgres_url,
        "SELECT payload, reason FROM dead_letters WHERE source LIKE 'inbound:%' ORDER BY id",
    )
    assert [json.loads(payload)["text"] for payload, _ in letters] == ["text 1"]
    assert "NUL" in letters[0][1]
