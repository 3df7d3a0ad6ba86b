"""The engine's calls (agents' actions, the API's reads) that wait together share one
transaction, one disk sync, as a turn's events do (flowlang/service/worker.py); each is still
its own unit of work: a refusal keeps what it wrote, as a call committed alone would, and a
call whose statement fails is undone alone."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlang.runtime.engine import Engine
from flowlang.service import create_app
from flowlang.service.settings import Settings
from tests.service.helpers import environment, settings_for
from tests.store.helpers import inbound


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    return settings_for(tmp_path)


def _letters(store: str | Path) -> list[str]:
    db = sqlite3.connect(store)
    try:
        return [r[0] for r in db.execute("SELECT reason FROM dead_letters ORDER BY id")]
    finally:
        db.close()


def _writing(reason: str, then: str = "") -> Any:
    """A call that writes a dead letter in a unit of work of its own, then maybe fails."""

    def call(engine: Engine) -> str:
        store: Any = engine.store
        with store.transaction():
            store.dead_letter("test", {}, reason, datetime.now(UTC))
        if then == "refuse":
            raise LookupError(f"{reason} refused")
        if then == "fail":
            store.dialect.execute("INSERT INTO no_such_table VALUES (1)")
        return reason

    return call


def test_calls_waiting_together_commit_once_and_each_stays_its_own_unit(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        busy, release = threading.Event(), threading.Event()

        def long_job(_engine: Engine) -> None:
            busy.set()
            release.wait(30)

        first = portal.start_task_soon(worker.call, long_job)
        assert busy.wait(10)
        commits: list[int] = []
        dialect = worker.store.dialect
        begin = dialect.transaction

        @contextmanager
        def counted() -> Iterator[None]:
            with begin():
                yield
            commits.append(1)

        dialect.transaction = counted
        waiting: list[Future[Any]] = [
            portal.start_task_soon(worker.call, _writing(*call))
            for call in (("kept",), ("refused", "refuse"), ("undone", "fail"), ("after",))
        ]
        while worker.backlog() < len(waiting):
            time.sleep(0.01)
        release.set()
        first.result(10)
        assert waiting[0].result(10) == "kept"
        with pytest.raises(LookupError, match="refused refused"):
            waiting[1].result(10)
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            waiting[2].result(10)
        assert waiting[3].result(10) == "after"
        assert commits == [1]  # four calls, one commit
        dialect.transaction = begin
    assert _letters(settings.store) == ["kept", "refused", "after"]


def test_listeners_hear_a_turns_events_only_once_the_turn_has_committed(
    settings: Settings,
) -> None:
    """The agents' live streams are listeners: they must not see an offer, a message or a
    status that the turn's commit may still lose. A turn whose commit fails tells them
    nothing."""
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        store = worker.store
        # (kind, conversation, whether a transaction was still open when it was heard)
        heard: list[tuple[str, str | None, bool]] = []
        worker.engine.listen(
            lambda event: heard.append(
                (str(event["kind"]), event["conversation_id"], store._depth > 0)
            )
        )
        dialect = store.dialect
        begin = dialect.transaction
        fail_this_turn: list[bool] = []

        @contextmanager
        def failing_on_demand() -> Iterator[None]:
            with begin():
                yield
                if fail_this_turn:
                    fail_this_turn.clear()
                    raise sqlite3.OperationalError("disk I/O error")

        dialect.transaction = failing_on_demand

        def hello(sender: str, fail: bool = False) -> Any:
            def call(engine: Engine) -> Any:
                if fail:
                    fail_this_turn.append(True)
                return engine.handle(inbound("Hello", sender=sender))

            return call

        try:
            outcome = portal.call(worker.call, hello("web-1"))
            assert outcome.conversation_id and not outcome.dead_lettered
            mine = [h for h in heard if h[1] == outcome.conversation_id]
            assert "message_in" in {kind for kind, _, _ in mine}
            assert not any(open_ for _, _, open_ in mine)  # each heard after the commit

            with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
                portal.call(worker.call, hello("web-2", fail=True))
            assert {conversation for _, conversation, _ in heard} <= {outcome.conversation_id}
        finally:
            dialect.transaction = begin


def test_a_call_alone_is_its_own_transaction_without_a_savepoint(settings: Settings) -> None:
    """(On a server, a savepoint's end is a round trip.) It still keeps what it wrote when it
    refuses, and writes nothing when its statement fails."""
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.service.worker  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        dialect = worker.store.dialect
        nested = dialect.savepoint
        savepoints: list[int] = []

        def counted(depth: int) -> Any:
            savepoints.append(depth)
            return nested(depth)

        dialect.savepoint = counted
        assert portal.call(worker.call, _writing("alone")) == "alone"
        with pytest.raises(LookupError, match="refused alone refused"):
            portal.call(worker.call, _writing("refused alone", "refuse"))
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            portal.call(worker.call, _writing("undone alone", "fail"))
        dialect.savepoint = nested
    assert savepoints == [2, 2, 2]  # only the calls' own units inside (`_writing`)
    assert _letters(settings.store) == ["alone", "refused alone"]
