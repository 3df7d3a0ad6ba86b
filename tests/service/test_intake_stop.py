"""The webhook intake while the service stops: the requests waiting are made durable and
answered; a request that comes once the stop has begun is answered 503 with Retry-After (the
channel sends it again to the next start), never left without an answer."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlang.channels.inbound import normalise
from flowlang.service.app import create_app
from flowlang.service.intake import Intake
from flowlang.service.metrics import Metrics
from flowlang.service.webhooks import STOPPING_RETRY_AFTER
from flowlang.service.worker import WorkerStopped
from flowlang.store import SqliteStore
from flowlang.store.inbox import SqliteInbox
from tests.service.helpers import environment, payload, settings_for, signed_headers
from tests.service.test_process import web_message


def test_a_request_that_comes_after_the_stop_began_is_refused_not_left_waiting(
    tmp_path: Path,
) -> None:
    store = tmp_path / "cc.sqlite"
    SqliteStore(store).close()
    inbox = SqliteInbox(store)
    busy, release = threading.Event(), threading.Event()
    append = inbox.append

    def slow_append(entries: Any) -> Any:
        busy.set()
        release.wait(10)  # a disk sync under way while the stop begins
        return append(entries)

    inbox.append = slow_append  # type: ignore[method-assign,assignment]
    intake = Intake(inbox, lambda: None, Metrics(), max_batch=1)
    intake.start()
    at = datetime.now(UTC)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(
            intake.accept("web", normalise("web", web_message(1)), [], at)
        )
        await asyncio.to_thread(busy.wait, 10)
        stopping = threading.Thread(target=intake.stop)
        stopping.start()
        while stopping.is_alive() and intake.backlog() == 0:  # the stop's mark is queued
            await asyncio.sleep(0.01)
        late = [
            asyncio.ensure_future(intake.accept("web", normalise("web", web_message(n)), [], at))
            for n in (2, 3)
        ]
        release.set()
        answers = await asyncio.wait_for(
            asyncio.gather(first, *late, return_exceptions=True), timeout=10
        )
        await asyncio.to_thread(stopping.join, 10)
        return list(answers)

    first, *late = asyncio.run(scenario())
    assert first.accepted == 1  # waiting when the stop began: made durable and answered
    assert all(isinstance(answer, WorkerStopped) for answer in late), late


def test_the_webhook_answers_503_with_retry_after_once_the_service_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    settings = settings_for(tmp_path)
    with TestClient(create_app(settings)) as client:
        client.app.state.gate.taker.stop()  # type: ignore[attr-defined]
        body = payload("whatsapp")
        answer = client.post(
            "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == STOPPING_RETRY_AFTER
        assert "stopping" in answer.json()["error"]
    with SqliteStore(settings.store) as store:  # nothing of it was kept
        assert store.pending_inbound() == [] and store.dead_letters() == []
        assert store.db.execute("SELECT count(*) FROM inbound").fetchone() == (0,)
