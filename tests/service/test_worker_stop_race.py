"""A job handed to the worker as it stops is answered, never left waiting
(flowlang/service/worker.py, `_closing`): the check that the worker runs and the hand-over are
one step under the lock the loop takes to stop, so a job either comes before the stop's drain
(and is answered WorkerStopped, or run) or is refused at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlang.service import create_app
from flowlang.service.settings import Settings
from flowlang.service.worker import WorkerStopped
from tests.service.helpers import environment, settings_for


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    return settings_for(tmp_path)


class HeldHandOver:
    """The worker's queue, whose hand-over of a job (not of the stop) waits for `go`: the
    moment between the check that the worker runs and the job being in its queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.checked = threading.Event()
        self.go = threading.Event()

    def put(self, item: Any) -> None:
        if type(item).__name__ == "_Call":
            self.checked.set()
            self.go.wait(30)
        self.queue.put(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


class SeenLock:
    """The worker's lock, telling when the engine's thread waits for it."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.loop_waits = threading.Event()

    def __enter__(self) -> None:
        if threading.current_thread().name == "flowlang-engine":
            self.loop_waits.set()
        self.lock.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


@pytest.fixture
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_call_handed_over_as_the_worker_stops_is_answered(app: TestClient) -> None:
    worker = app.app.state.service.worker  # type: ignore[attr-defined]
    portal = app.portal
    assert portal is not None
    held = HeldHandOver(worker._inbox)
    lock = SeenLock(worker._closing)
    worker._inbox, worker._closing = held, lock
    call = portal.start_task_soon(worker.call, lambda _engine: "ran")
    assert held.checked.wait(10)  # the worker ran when the call looked
    stopping = threading.Thread(target=worker.stop, kwargs={"timeout": 10})
    stopping.start()
    # The loop, stopping, waits for the hand-over (with the lock), or has stopped (without)
    deadline = time.monotonic() + 10
    while not (lock.loop_waits.is_set() or worker._stopped) and time.monotonic() < deadline:
        time.sleep(0.01)
    held.go.set()
    stopping.join(30)
    try:
        with pytest.raises(WorkerStopped):  # answered: not left waiting for ever
            call.result(10)
    finally:
        call.cancel()  # (unanswered, it would hold the app's shutdown)
