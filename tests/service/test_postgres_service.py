"""`flowlang serve --store postgresql://...`: the service on the PostgreSQL store."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from flowlang.service import ServiceConfigError, create_app
from tests.service.helpers import environment, payload, settings_for, signed_headers


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


def test_a_webhook_is_kept_and_processed_in_postgres_and_ready_hides_the_password(
    tmp_path: Path, postgres_url: str
) -> None:
    url = postgres_url.replace("flowlang@", "flowlang:hunter2@")  # the test server trusts all
    settings = settings_for(tmp_path, store=url)
    with TestClient(create_app(settings)) as client:
        body = payload("whatsapp")
        answer = client.post(
            "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
        )
        assert answer.status_code == 200, answer.text
        for _ in range(500):
            ready = client.get("/ready").json()
            if ready["unprocessed"] == 0:
                break
            time.sleep(0.01)
        assert ready["ready"] is True and ready["unprocessed"] == 0
        assert ready["store"] == "ok"  # where the store is is not for callers to know
    with psycopg.connect(postgres_url) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM messages WHERE direction = 'in'"
        ).fetchone() or (0,)
    assert count >= 1
    assert not (tmp_path / "cc.sqlite").exists()


def test_a_postgres_server_that_cannot_be_reached_stops_the_service_at_start(
    tmp_path: Path,
) -> None:
    settings = settings_for(
        tmp_path, store="postgresql://cc:s3cret@127.0.0.1:1/cc?connect_timeout=1"
    )
    with pytest.raises(ServiceConfigError) as refused:
        create_app(settings)
    assert "postgresql://cc:***@127.0.0.1:1/cc" in str(refused.value)
    assert "cannot connect" in str(refused.value) and "s3cret" not in str(refused.value)
