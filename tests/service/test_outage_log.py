"""While the store or the leader cannot be reached, every request fails the same way: the log
gets the first failure with its traceback, then a line at most every 30 s saying how many
more, and one line when it works again (`flowlang/service/outage_log.py`), not a traceback
per request (megabytes over a 10-minute outage under load)."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlang.service import app as app_module
from flowlang.service import create_app
from flowlang.service.forward import Forwarder
from flowlang.service.outage_log import OutageLog
from flowlang.store import count_unprocessed
from tests.service.helpers import environment, settings_for

log = logging.getLogger("tests.outage")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(settings_for(tmp_path))) as test_client:
        yield test_client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == name]


def test_a_hundred_failures_over_a_minute_are_two_lines_and_the_recovery_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = OutageLog(log, "cannot read the store", every=30.0, clock=clock)
    with caplog.at_level(logging.INFO, logger=log.name):
        for n in range(100):  # one every 0.6 s
            clock.now = 1000.0 + 0.6 * n
            try:
                raise ConnectionError(f"refused {n}")
            except ConnectionError as exc:
                outage.failed(exc)
        clock.now = 1060.0
        outage.recovered()
        outage.recovered()  # (working already: nothing more)
    first, summary, back = _lines(caplog, log.name)
    assert first.levelno == logging.ERROR and first.exc_info is not None
    assert first.getMessage() == "cannot read the store: refused 0"
    assert summary.levelno == logging.ERROR and summary.exc_info is None  # no traceback again
    assert summary.getMessage() == (
        "cannot read the store: still failing (refused 50); 50 more in the last 30 s"
    )
    assert back.levelno == logging.INFO
    assert back.getMessage() == "cannot read the store: works again after 60 s and 100 failure(s)"


def test_a_new_outage_after_recovery_logs_its_traceback_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = OutageLog(log, "cannot read the store", clock=Clock())
    with caplog.at_level(logging.INFO, logger=log.name):
        outage.failed(OSError("down"))
        outage.recovered()
        outage.failed(OSError("down again"))
    messages = [record.getMessage() for record in _lines(caplog, log.name)]
    assert messages == [
        "cannot read the store: down",
        "cannot read the store: works again after 0 s and 1 failure(s)",
        "cannot read the store: down again",
    ]


def test_ready_logs_a_store_outage_once_not_per_call(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreadable(location: object, timeout: float = 2.0) -> int:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(app_module, "count_unprocessed", unreadable)
    with caplog.at_level(logging.INFO, logger="flowlang.service"):
        for _ in range(100):
            assert client.get("/ready").status_code == 503
        monkeypatch.setattr(app_module, "count_unprocessed", count_unprocessed)
        for _ in range(3):
            assert client.get("/ready").status_code == 200
    lines = [r for r in _lines(caplog, "flowlang.service") if "/ready" in r.getMessage()]
    assert len(lines) == 2, [line.getMessage() for line in lines]  # (well under 30 s)
    assert "unable to open database file" in lines[0].getMessage() and lines[0].exc_info
    assert "works again" in lines[1].getMessage() and "100 failure(s)" in lines[1].getMessage()


def test_a_follower_that_cannot_read_the_leader_logs_it_once_not_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = True

    def leader_url() -> str | None:
        if down:
            raise ConnectionError("the store is down")
        return None  # readable again, no leader yet

    forwarder = Forwarder(lambda: True, leader_url, b"key")
    answers: list[int] = []

    async def request() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answers.append(message["status"])

        scope = {"type": "http", "method": "GET", "path": "/api/x", "headers": []}
        await forwarder(scope, receive, send)

    with caplog.at_level(logging.INFO, logger="flowlang.service"):
        for _ in range(100):
            asyncio.run(request())
        down = False
        asyncio.run(request())
    assert answers == [503] * 101
    lines = [line.getMessage() for line in _lines(caplog, "flowlang.service")]
    assert len(lines) == 2, lines
    assert lines[0] == "cannot read who leads the engine: the store is down"
    # the outage's length is the machine's: 100 requests take longer under load
    assert re.fullmatch(
        r"cannot read who leads the engine: works again after \d+ s and 100 failure\(s\)",
        lines[1],
    ), lines[1]
