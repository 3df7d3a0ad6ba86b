"""`engine.listen`: a host's live figures follow the event log as the engine commits it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flowlang.harness import load_samples, run_samples
from flowlang.project import Project, load_project
from flowlang.reporting import InteractionLog, Scope
from flowlang.store import SqliteStore
from tests.reporting import day
from tests.reporting.figures import every_report
from tests.store.helpers import ROOT, inbound


def test_a_live_log_fed_by_the_engine_gives_the_reports_the_stored_log_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The messaging half of the scripted reporting day, with a live InteractionLog."""
    live = InteractionLog()
    engine_of = Project.engine

    def listened(self: Project, **parts: Any) -> Any:
        engine = engine_of(self, **parts)
        engine.listen(live.apply)
        return engine

    monkeypatch.setattr(Project, "engine", listened)
    samples = tmp_path / "messaging.yaml"
    with samples.open("w", encoding="utf-8") as handle:
        YAML().dump(day.MESSAGING, handle)
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    with SqliteStore(tmp_path / "day.db") as store:
        run_samples(project, load_samples(samples), store=store)
        stored = InteractionLog.from_events(store.iter_events())

    now = stored.last_event_at
    assert now is not None and live.last_event_at == now and len(live.interactions) >= 4
    assert every_report(live, Scope(), now) == every_report(stored, Scope(), now)


def _engine(**parts: Any) -> Any:
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    return project.engine(**parts)


class BotPlatform:
    """Bots that work until the platform goes down."""

    down = False

    def start(self, *_args: object) -> None:
        if self.down:
            raise ConnectionError("the bot platform is down")


def test_listeners_hear_only_what_committed_and_a_failing_one_does_not_stop_the_engine(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[Mapping[str, Any]] = []

    def broken(_event: Mapping[str, Any]) -> None:
        raise RuntimeError("dashboard down")

    bots = BotPlatform()
    engine = _engine(bots=bots)
    engine.listen(broken)
    engine.listen(heard.append)
    with caplog.at_level(logging.ERROR, logger="flowlang.engine"):
        first = engine.handle(inbound("Hello", sender="web-1"))
    assert not first.dead_lettered
    assert [e["kind"] for e in heard][:1] == ["message_in"]
    assert all(e["conversation_id"] == first.conversation_id for e in heard)
    assert "event listener" in caplog.text and "dashboard down" in caplog.text

    bots.down = True
    before = len(heard)
    failed = engine.handle(inbound("12345678", 1, sender="web-1"))  # reaches the bot: fails
    assert failed.dead_lettered and len(heard) == before  # rolled back: nothing to tell
    third = engine.handle(inbound("Hi", 2, sender="web-2"))
    conversations = [e["conversation_id"] for e in heard if e["kind"] == "message_in"]
    # the failed event's message never reaches a listener
    assert conversations == [first.conversation_id, third.conversation_id]


def test_listeners_hear_a_failed_delivery_after_it_is_recorded() -> None:
    class Down:
        def send(self, _message: object) -> None:
            raise ConnectionError("the channel API is down")

    engine = _engine()
    engine.adapters = [Down()]
    assert engine.ports.adapters == engine.adapters  # the parts it reports are the ones it uses
    heard: list[Mapping[str, Any]] = []
    engine.listen(heard.append)
    outcome = engine.handle(inbound("Hello", sender="web-3"))
    (failure,) = [e for e in heard if e["kind"] == "delivery_failed"]
    assert failure["attempts"] == 1 and "the channel API is down" in failure["reason"]
    assert [e["kind"] for e in heard].index("message_in") < heard.index(failure)
    assert outcome.failed_sends and failure["conversation_id"] == outcome.conversation_id
