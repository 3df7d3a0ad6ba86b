"""A leader whose store connection is lost (the server restarted, a proxy cut it) cannot write
again on it; it gives up the lead (`on_deposed`: `flowlang serve` stops, a process sharing the
store takes the lead, or a supervisor restarts it with new connections) rather than holding the
lead while every turn fails, which would stall every process sharing the store."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from flowlang.service import create_app
from tests.service.helpers import environment, settings_for


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


def test_a_leader_whose_store_connection_is_lost_gives_up_the_lead(
    tmp_path: Path, postgres_url: str
) -> None:
    deposed = threading.Event()
    app = create_app(settings_for(tmp_path, store=postgres_url), on_deposed=deposed.set)
    with TestClient(app) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        worker = service.worker
        portal = client.portal
        assert portal is not None
        assert portal.call(worker.call, lambda engine: engine.store.last_event_seq()) >= 0
        assert worker.role == "leader"
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (service.store.db.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):  # the turn after it fails, answered 5xx
            portal.call(worker.call, lambda engine: engine.store.last_event_seq())
        assert deposed.wait(10), "the leader kept the lead on a dead connection"
        assert worker.role == "deposed"
        assert client.get("/ready").status_code == 503
