"""`flowlang serve --store postgresql://...`: the service on the PostgreSQL store."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from flowlang.runtime.users import new_token, token_hash
from flowlang.service import ServiceConfigError, create_app
from flowlang.service.access import user_of_token
from flowlang.service.tokens import TokenReader
from flowlang.store import shown_location
from flowlang.store.postgres import PostgresStore
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


def test_api_tokens_are_checked_off_the_engines_thread_and_a_revocation_counts_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    """On PostgreSQL a request's sign-in does not wait for the engine (here held by a long
    call); a token revoked by another process is refused at its next request."""
    token = new_token()
    with PostgresStore(postgres_url) as store:
        store.add_user("alice", "agent", token_hash(token), datetime.now(UTC))
    settings = settings_for(tmp_path, store=postgres_url)
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        busy, release = threading.Event(), threading.Event()

        def long_job(_engine: Any) -> None:
            busy.set()
            release.wait(30)

        held = portal.start_task_soon(service.worker.call, long_job)
        assert busy.wait(10)
        try:
            user = portal.start_task_soon(user_of_token, service, token).result(10)
            assert user is not None and user.name == "alice"  # the engine still busy
        finally:
            release.set()
        held.result(10)
        with PostgresStore(postgres_url) as other:  # as `flowlang users revoke` would
            assert other.revoke_user("alice", datetime.now(UTC))
        assert portal.call(user_of_token, service, token) is None
        answer = client.get("/api/agent/interactions", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401


def test_a_token_is_still_checked_after_the_server_dropped_the_readers_connection(
    postgres_url: str,
) -> None:
    token = new_token()
    with PostgresStore(postgres_url) as store:
        store.add_user("alice", "agent", token_hash(token), datetime.now(UTC))
    reader = TokenReader(postgres_url)
    try:
        first = reader.user_of(token, datetime.now(UTC))
        assert first is not None and first.name == "alice"
        assert reader._store is not None
        pid = reader._store.db.info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        again = reader.user_of(token, datetime.now(UTC))  # on a new connection, not a 500
        assert again is not None and again.name == "alice"
        assert reader._store is not None and reader._store.db.info.backend_pid != pid
    finally:
        reader.close()


def test_a_password_given_as_a_query_parameter_is_not_shown_either(tmp_path: Path) -> None:
    """libpq takes any connection parameter in the URL's query, the password included."""
    settings = settings_for(
        tmp_path,
        store="postgresql://cc@127.0.0.1:1/cc?connect_timeout=1&password=s3cret&sslpassword=k3y",
    )
    with pytest.raises(ServiceConfigError) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "cannot connect" in message and "s3cret" not in message and "k3y" not in message
    assert (
        "postgresql://cc@127.0.0.1:1/cc?connect_timeout=1&password=***&sslpassword=***" in message
    )
    assert (
        shown_location("postgres://h/db?password=a%26b&x=1") == "postgres://h/db?password=***&x=1"
    )
