"""The engine process of `flowlang serve` tunes the cyclic garbage collector (`collector.py`):
larger thresholds, and what it has loaded and recovered frozen after each recovery. A service
hosted otherwise (`create_app` in a test, a library's process) leaves the collector alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flowlang.service import collector, create_app
from flowlang.service.engine_main import tune_collector
from flowlang.service.settings import Settings
from tests.service.helpers import environment, settings_for


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    return settings_for(tmp_path)


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """Python's collector as the test found it (this test process's objects unfrozen)."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_the_engine_process_freezes_what_it_loaded_once_recovered(
    settings: Settings, collector_restored: None
) -> None:
    app = create_app(settings)
    tune_collector(app.state.service.worker)
    assert gc.get_threshold() == collector.THRESHOLDS
    assert gc.get_freeze_count() == 0  # not before the recovery
    with TestClient(app):  # the worker starts: it recovers
        assert gc.get_freeze_count() > 0


def test_a_service_hosted_otherwise_leaves_the_collector_alone(
    settings: Settings, collector_restored: None
) -> None:
    thresholds = gc.get_threshold()
    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == thresholds
