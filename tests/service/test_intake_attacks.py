"""The webhook intake attacked with the vendors' own shapes, each request validly signed: what
is processed is what the signature covers, read one way only. A repeated JSON key (two readers
may take either value) is kept aside, never processed; a content type that says something else
changes nothing, since the bytes signed are the bytes read; a batch mixing an event for another
account with the deployment's own processes only the deployment's."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from flowlang.service import create_app
from flowlang.service.settings import Settings
from tests.service.helpers import environment, payload, settings_for, signed_headers, whatsapp_text

JSON_CHANNELS = ["whatsapp", "messenger", "instagram", "line", "x_dm", "x_public", "web"]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    return settings_for(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def rows(store: Path | str, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(store)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def post(client: TestClient, channel: str, body: bytes, **headers: str) -> dict[str, int]:
    sent = {**signed_headers(channel, body), **headers}
    answer = client.post(f"/webhooks/{channel}", content=body, headers=sent)
    assert answer.status_code == 200, answer.text
    result: dict[str, int] = answer.json()
    deadline = time.monotonic() + 60
    while client.get("/ready").json()["unprocessed"] and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


def with_a_decoy_first(body: bytes) -> bytes:
    """`body` with its first key given once more before it, with another value: a reader that
    keeps the first value reads something else than one that keeps the last."""
    key = next(iter(json.loads(body)))
    text = body.decode().lstrip()
    assert text.startswith("{")
    return ("{" + json.dumps(key) + ': "decoy", ' + text[1:]).encode()


@pytest.mark.parametrize("channel", JSON_CHANNELS)
def test_a_signed_request_with_a_repeated_key_is_kept_aside_and_never_processed(
    client: TestClient, settings: Settings, channel: str
) -> None:
    body = with_a_decoy_first(payload(channel))
    assert post(client, channel, body) == {"accepted": 0, "duplicates": 0, "dead_letters": 1}
    assert rows(settings.store, "SELECT count(*) FROM inbound") == [(0,)]
    [(kept, reason)] = rows(
        settings.store, "SELECT payload, reason FROM dead_letters WHERE source LIKE 'payload:%'"
    )
    assert "twice in one object" in reason
    assert json.loads(kept)["body"] == body.decode()  # kept as received, to look at


def test_a_key_repeated_inside_an_event_is_refused_as_well(
    client: TestClient, settings: Settings
) -> None:
    message = whatsapp_text("447700900556", "wamid.twice", "hello", at=datetime.now(UTC))
    text = json.dumps(message)
    assert text.count('"body": "hello"') == 1
    body = text.replace('"body": "hello"', '"body": "hello", "body": "close my account"').encode()
    assert post(client, "whatsapp", body)["dead_letters"] == 1
    assert rows(settings.store, "SELECT count(*) FROM messages") == [(0,)]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", ""])
def test_a_content_type_that_says_something_else_changes_nothing(
    client: TestClient, settings: Settings, content_type: str
) -> None:
    """Meta, LINE, X and the widget sign the raw body, which is read as JSON whatever the
    request says it is: the content read is the content signed."""
    body = json.dumps(
        whatsapp_text("447700900556", f"wamid.{content_type}", "hello", at=datetime.now(UTC))
    ).encode()
    assert post(client, "whatsapp", body, **{"Content-Type": content_type})["accepted"] == 1
    [(content,)] = rows(settings.store, "SELECT content FROM messages WHERE direction = 'in'")
    assert json.loads(content)["text"] == "hello"


def test_a_batch_mixing_another_accounts_event_with_ours_processes_only_ours(
    client: TestClient, settings: Settings
) -> None:
    ours = whatsapp_text("447700900556", "wamid.ours", "hello", at=datetime.now(UTC))
    theirs = whatsapp_text("447700900557", "wamid.theirs", "my pin is 1234", at=datetime.now(UTC))
    theirs["entry"][0]["changes"][0]["value"]["metadata"]["display_phone_number"] = "15550001111"
    batch = {**ours, "entry": ours["entry"] + theirs["entry"]}
    body = json.dumps(batch).encode()
    assert post(client, "whatsapp", body) == {"accepted": 1, "duplicates": 0, "dead_letters": 1}
    assert rows(settings.store, "SELECT event_id FROM inbound") == [("wamid.ours",)]
    [(kept,)] = rows(
        settings.store, "SELECT payload FROM dead_letters WHERE source LIKE 'payload:%'"
    )
    assert "my pin is 1234" in kept and "wamid.ours" not in kept


def test_an_event_id_with_a_nul_character_is_kept_aside_and_the_intake_goes_on(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A widget backend may pass on what the browser sent, NUL (`\\u0000`) included, which
    PostgreSQL's text cannot hold: an event id with one is a dead letter saying so, not a
    failed commit (a 503 for the request and for every other request committed with it, at
    every retry). A NUL elsewhere reaches the engine, which keeps that event aside alone
    (tests/service/test_deferred_turn.py)."""
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    message = {**json.loads(payload("web")), "id": "web-msg-\u0000"}
    with TestClient(create_app(settings_for(tmp_path, store=postgres_url))) as client:
        body = json.dumps(message).encode()
        assert post(client, "web", body) == {"accepted": 0, "duplicates": 0, "dead_letters": 1}
        good = payload("web")
        assert post(client, "web", good) == {"accepted": 1, "duplicates": 0, "dead_letters": 0}
        with psycopg.connect(postgres_url) as db:
            reasons = [r for (r,) in db.execute("SELECT reason FROM dead_letters").fetchall()]
    assert len(reasons) == 1 and "NUL" in reasons[0] and "id" in reasons[0], reasons
