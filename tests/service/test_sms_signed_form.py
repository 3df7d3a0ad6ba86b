"""Twilio's SMS webhook: what is processed is what was signed. Twilio's messaging webhook is a
form (`application/x-www-form-urlencoded`) and `X-Twilio-Signature` covers the URL and the
form's fields, so the route reads a request's fields exactly as its signature is checked. A
body that has no such one reading (JSON, a field given twice, an escape that is not UTF-8) is
refused 401 with the reason: nothing of it is kept or processed."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient

from flowlang.channels.signatures import twilio_signature
from flowlang.service import create_app
from flowlang.service.settings import Settings
from tests.service.helpers import PUBLIC_URL, environment, secret_of, settings_for

URL = PUBLIC_URL + "/webhooks/sms"
FORM = "MessageSid=SM{n}&From=%2B447700900456&To=%2B447480000000&Body={body}"


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


def signed_as_a_form(body: bytes) -> str:
    """The signature of `body` read as form fields the lenient way (every field once, the last
    value of a repeated one, a bad escape replaced): what the route checked before."""
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return twilio_signature(URL, params, secret_of("sms"))


def post(client: TestClient, body: bytes, content_type: str) -> Any:
    headers = {"Content-Type": content_type, "X-Twilio-Signature": signed_as_a_form(body)}
    return client.post("/webhooks/sms", content=body, headers=headers)


def settled(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/ready").json()["unprocessed"] and time.monotonic() < deadline:
        time.sleep(0.01)


def nothing_kept(store: Path | str) -> None:
    for table in ("inbound", "messages", "dead_letters"):
        assert rows(store, f"SELECT count(*) FROM {table}") == [(0,)], table


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            json.dumps(
                {
                    "MessageSid": "SMjson",
                    "From": "+447700900456",
                    "To": "+447480000000",
                    "Body": "move my savings",
                }
            ).encode(),
            "a JSON body",
        ),
        (FORM.format(n=2, body="hello").encode() + b"&Body=move+my+savings", "Body: given twice"),
        (FORM.format(n=3, body="%FF%FE").encode(), "not UTF-8"),
    ],
    ids=["json", "a field twice", "not utf-8"],
)
def test_a_body_without_one_reading_as_twilios_form_is_refused_and_nothing_kept(
    client: TestClient, settings: Settings, body: bytes, reason: str
) -> None:
    answer = post(client, body, "application/x-www-form-urlencoded")
    assert answer.status_code == 401, answer.text
    assert "signature cannot be checked" in answer.json()["error"]
    assert reason in answer.json()["error"]
    settled(client)
    nothing_kept(settings.store)


def test_the_form_that_was_signed_is_what_is_processed_whatever_the_content_type(
    client: TestClient, settings: Settings
) -> None:
    for n, content_type in enumerate(("application/x-www-form-urlencoded", "application/json")):
        body = FORM.format(n=n, body=f"Is+my+loan+approved+{n}%3F").encode()
        answer = post(client, body, content_type)
        assert answer.json() == {"accepted": 1, "duplicates": 0, "dead_letters": 0}
    settled(client)
    said = [
        json.loads(content)["text"]
        for (content,) in rows(
            settings.store, "SELECT content FROM messages WHERE direction = 'in' ORDER BY seq"
        )
    ]
    assert said == ["Is my loan approved 0?", "Is my loan approved 1?"]
