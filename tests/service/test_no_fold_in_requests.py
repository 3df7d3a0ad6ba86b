"""A request never writes the stored fold of the event log (docs/reporting.md): writing it takes
seconds on a large log, on the engine's thread, where every message would wait for it. The
service reads a stored fold that `flowlang store fold` left, and its figures are those of a
fold from the first event; `flowlang report` still leaves one past the threshold."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowlang.config import load_deployment
from flowlang.reporting import InteractionLog, queue_performance, stored_fold
from flowlang.reporting.reports import Scope
from flowlang.reporting.requested import requested_reports
from flowlang.service.dashboard import Board
from flowlang.service.history import history, period_of
from flowlang.store import SqliteStore
from tests.reporting import day as d
from tests.service.api_helpers import Api, make_api, under_test_client
from tests.service.helpers import environment


def stored_folds(store: str | Path) -> int:
    db = sqlite3.connect(store)
    try:
        return int(db.execute("SELECT count(*) FROM report_fold").fetchone()[0])
    finally:
        db.close()


@pytest.fixture
def every_event_is_past_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stored_fold, "FOLD_EVERY", 1)


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    yield from under_test_client(make_api(tmp_path))


@pytest.mark.usefixtures("every_event_is_past_the_threshold")
def test_the_dashboards_history_folds_the_whole_log_and_stores_no_fold(tmp_path: Path) -> None:
    store_path = d.run_day(tmp_path)
    deployment, problems = load_deployment(d.ROOT / "examples" / "deployment.yaml")
    assert deployment is not None, problems
    now = d.DAY + timedelta(hours=20)
    board = Board(SqliteStore(store_path), deployment)
    board.live(now)
    board._complete_from = d.DAY + timedelta(hours=1)  # the live log lacks the period's start
    shown = history(board, period_of("2026-01-04", "2026-01-05", now), now)
    assert stored_folds(store_path) == 0
    with SqliteStore(store_path) as store:
        whole = InteractionLog.from_events(store.iter_events(end=now))
        expected = queue_performance(whole, Scope(shown.start, now), board.targets()).rows
        assert shown.queues.rows == list(expected)
        assert any(row["routed"] for row in shown.queues.rows)
        # what the request did not do, a report on the command line does past the threshold
        requested_reports(store, "queues", Scope(shown.start), now, now)
    assert stored_folds(store_path) == 1


@pytest.mark.usefixtures("every_event_is_past_the_threshold")
def test_the_supervisors_reports_store_no_fold_and_use_the_one_stored(api: Api) -> None:
    api.web("v-1", "Hello")
    api.web("v-1", "Eve")
    params = {"from": "2020-01-01"}
    first = api.get("sam", "/api/supervisor/reports/interactions", params=params)
    assert first.status_code == 200, first.text
    assert stored_folds(api.settings.store) == 0
    (row,) = first.json()["reports"][0]["rows"]
    # `flowlang store fold` (or a report on the command line) left one: the service reads it
    with SqliteStore(api.settings.store) as store:
        now = datetime.now(UTC)
        requested_reports(store, "interactions", Scope(datetime(2020, 1, 1, tzinfo=UTC)), now, now)
    assert stored_folds(api.settings.store) == 1
    api.web("v-2", "Hello")
    again = api.get("sam", "/api/supervisor/reports/interactions", params=params)
    assert again.status_code == 200, again.text
    rows = again.json()["reports"][0]["rows"]
    assert [r["conversation"] for r in rows][:1] == [row["conversation"]] and len(rows) == 2
    assert stored_folds(api.settings.store) == 1
