"""A vendor sends a webhook again when it had no answer, or a 5xx: a commit that reached the
store before the connection was lost is answered 503, and the retry brings the same request.
Its events are stored once (by their ids); its unreadable payloads, kept as dead letters,
must be kept once too, on either store, while a different payload is still kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flowlang.service import create_app
from flowlang.store import open_store
from tests.service.helpers import environment, settings_for, signed_headers
from tests.service.test_app import settled

UNREADABLE = b'{"object": "whatsapp_business_account", "entry": "not a list"'
ANOTHER = b'{"object": "whatsapp_business_account", "entry": "still not a list"'


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


def test_a_retried_unreadable_payload_is_one_dead_letter_another_is_kept(
    tmp_path: Path, durable_location: str | Path
) -> None:
    settings = settings_for(tmp_path, store=durable_location)
    with TestClient(create_app(settings)) as client:
        for body in (UNREADABLE, UNREADABLE, ANOTHER):  # the second: the vendor's retry
            answer = client.post(
                "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["dead_letters"] == 1  # kept (once)
        settled(client)
    with open_store(durable_location) as store:
        kept = [letter["payload"]["body"] for letter in store.dead_letters()]
    assert kept == [UNREADABLE.decode(), ANOTHER.decode()]
