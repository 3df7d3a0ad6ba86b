"""A single process (its own SQLite store) has no lead to lose: a job of its worker that raises
`LeadershipLost` (a plugged-in part's) fails as any job does, and the worker goes on; it is
never deposed, since there is no leader to follow (flowlang/service/worker.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlang.acd import SkillsAcd
from flowlang.assembly import EngineParts
from flowlang.project import Project
from flowlang.runtime.engine import Engine
from flowlang.service import create_app
from flowlang.store.leadership import LeadershipLost
from tests.patience import scaled
from tests.service.helpers import environment, settings_for
from tests.service.port_only_acd import PortOnlyAcd


class LosingAcd(PortOnlyAcd):
    """An ACD whose queue figures for the gauges raise `LeadershipLost`, each time asked."""

    asked = 0

    def waiting_counts(self) -> dict[str, int]:
        self.asked += 1
        raise LeadershipLost("another process has taken the lead")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    built = Project.engine

    def engine(self: Project, **parts: Any) -> Engine:
        parts.setdefault("acd", LosingAcd(SkillsAcd.from_deployment(self.deployment)))
        given: EngineParts = parts  # type: ignore[assignment]
        return built(self, **given)

    monkeypatch.setattr(Project, "engine", engine)
    with TestClient(create_app(settings_for(tmp_path))) as client:
        yield client


def test_a_job_raising_leadership_lost_fails_alone_and_the_worker_goes_on(
    client: TestClient,
) -> None:
    worker = client.app.state.service.worker  # type: ignore[attr-defined]
    acd = worker.engine.acd
    assert isinstance(acd, LosingAcd)
    deadline = time.monotonic() + scaled(10)
    while acd.asked < 2:  # raised, and asked again: the worker went round its loop
        assert time.monotonic() < deadline, "the worker stopped after the first LeadershipLost"
        time.sleep(0.05)
    assert worker.role == "single" and worker.alive
    portal = client.portal
    assert portal is not None
    assert portal.call(worker.call, lambda _engine: "answered") == "answered"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["role"] == "single"
