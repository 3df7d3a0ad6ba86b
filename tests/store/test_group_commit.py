"""Group commit (`engine.group`, `engine.handle_all`): several events processed, then one
durable commit for all of them, with nothing released before it: no message delivered, no
listener told. The result is the one handling them one at a time gives."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.events import BotEvent, InboundEvent
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter, ScriptedDataActions
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import DataResult
from flowlang.store import SqliteStore
from tests.store.helpers import ROOT, T0, inbound

TEXTS = ("Hello", "12345678", "thanks", "any news?", "STOP", "START")


class Bots:
    """A bot platform that can go down (a hand-off then fails the event)."""

    def __init__(self) -> None:
        self.down = False
        self.started: list[str] = []

    def start(self, conversation_id: str, bot: str, context: dict[str, Any]) -> None:
        if self.down:
            raise ConnectionError("the bot platform is down")
        self.started.append(conversation_id)


def _engine(store: SqliteStore, bots: Bots | None = None) -> tuple[Engine, RecordingAdapter]:
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    sent = RecordingAdapter()
    crm = ScriptedDataActions({"CRM Lookup": DataResult("not_found")})
    parts: dict[str, Any] = {"store": store, "data_actions": crm, "adapters": [sent]}
    if bots is not None:
        parts["bots"] = bots
    return project.engine(**parts), sent


def _commits(store: SqliteStore) -> list[str]:
    seen: list[str] = []
    store.db.set_trace_callback(lambda sql: seen.append(sql) if sql.strip() == "COMMIT" else None)
    return seen


def _stream(picks: list[tuple[int, int]]) -> list[InboundEvent | BotEvent]:
    return [
        inbound(TEXTS[text], n, sender=f"web-{sender}", event_id=f"m{n}")
        for n, (sender, text) in enumerate(picks)
    ]


def _seen(outcome: Outcome) -> tuple[Any, ...]:
    return (
        outcome.conversation_id,
        outcome.path,
        [(t.node, t.detail) for t in outcome.trace],
        [(d.status, d.message.content) for d in outcome.deliveries],
        [(n.kind, n.conversation_id, n.agent) for n in outcome.notices],
        outcome.duplicate,
        outcome.dead_lettered,
        outcome.note,
    )


def _stored(store: SqliteStore) -> dict[str, Any]:
    """Everything the store keeps, without the ids a run draws at random (message ids)."""

    def rows(query: str) -> list[Any]:
        return [list(row) for row in store.db.execute(query)]

    def without_ids(text: str) -> Any:
        value = json.loads(text)
        if isinstance(value, dict):
            value.pop("message_id", None)
        return value

    return {
        "events": rows("SELECT kind, at, conversation_id, data FROM events ORDER BY seq"),
        "messages": [
            [conv, direction, without_ids(content), at]
            for conv, direction, content, at in rows(
                "SELECT conversation_id, direction, content, at FROM messages ORDER BY seq"
            )
        ],
        "conversations": rows("SELECT id, body FROM conversations ORDER BY id"),
        "inbound": rows("SELECT channel, event_id, payload, processed FROM inbound ORDER BY seq"),
        "customers": rows("SELECT * FROM customers ORDER BY id"),
        "letters": rows("SELECT source, payload, reason FROM dead_letters ORDER BY id"),
    }


@settings(max_examples=25, deadline=None)
@given(
    picks=st.lists(st.tuples(st.integers(0, 4), st.integers(0, len(TEXTS) - 1)), max_size=30),
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=8),
)
def test_a_stream_handled_in_groups_gives_what_handling_it_one_by_one_gives(
    picks: list[tuple[int, int]], sizes: list[int]
) -> None:
    events = _stream(picks)
    events += events[: len(events) // 3]  # the channel's retries: duplicates
    with SqliteStore(":memory:") as alone, SqliteStore(":memory:") as grouped:
        engine, sent = _engine(alone)
        one_by_one = [engine.handle(event) for event in events]
        group_engine, group_sent = _engine(grouped)
        in_groups: list[Outcome] = []
        start, turn = 0, 0
        while start < len(events):
            size = sizes[turn % len(sizes)]
            in_groups += group_engine.handle_all(events[start : start + size])
            start, turn = start + size, turn + 1
        assert [_seen(o) for o in in_groups] == [_seen(o) for o in one_by_one]
        assert _stored(grouped) == _stored(alone)
        assert [m.content for m in group_sent.sent] == [m.content for m in sent.sent]


def test_a_group_commits_once_and_releases_nothing_before_its_commit(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "group.db") as store:
        engine, sent = _engine(store)
        heard: list[Mapping[str, Any]] = []
        engine.listen(heard.append)
        commits = _commits(store)
        outsider = sqlite3.connect(tmp_path / "group.db")  # another process's view of the file
        with engine.group():
            outcomes = [engine.handle(inbound("Hello", n, sender=f"web-{n}")) for n in range(10)]
            assert all(len(o.deliveries) == 1 for o in outcomes)  # each queued its welcome
            assert sent.sent == [] and heard == [] and commits == []
            assert outsider.execute("SELECT count(*) FROM inbound").fetchone() == (0,)
        assert len(commits) == 1
        assert outsider.execute("SELECT count(*) FROM inbound WHERE processed = 1").fetchone() == (
            10,
        )
        assert len(sent.sent) == 10
        assert [e["kind"] for e in heard].count("message_in") == 10
        outsider.close()

        one_by_one = _commits(store)
        for n in range(10, 15):
            engine.handle(inbound("Hello", n, sender=f"web-{n}"))
        assert len(one_by_one) == 5


def test_a_group_whose_commit_fails_keeps_sends_and_tells_nothing(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "failed.db") as store:
        engine, sent = _engine(store)
        heard: list[Mapping[str, Any]] = []
        engine.listen(heard.append)

        def refuse() -> None:
            raise sqlite3.OperationalError("disk I/O error")

        store._ending = refuse  # type: ignore[method-assign]
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            engine.handle_all([inbound("Hello", n, sender=f"web-{n}") for n in range(3)])
        del store._ending
        assert sent.sent == [] and heard == []
        assert store.db.execute("SELECT count(*) FROM inbound").fetchone() == (0,)
        assert store.pending_outbound() == []
        # the channel retries them, and they go through
        retried = engine.handle_all([inbound("Hello", n, sender=f"web-{n}") for n in range(3)])
        assert not any(o.duplicate for o in retried) and len(sent.sent) == 3


def test_an_event_that_fails_in_a_group_is_undone_alone_and_the_others_are_sent(
    tmp_path: Path,
) -> None:
    """Its messages are not sent and its events not heard; the messages of the events before
    it in the group are (they were not thrown away with it)."""
    bots = Bots()
    with SqliteStore(tmp_path / "one-fails.db") as store:
        engine, sent = _engine(store, bots)
        heard: list[Mapping[str, Any]] = []
        engine.listen(heard.append)
        bots.down = True
        outcomes = engine.handle_all(
            [
                inbound("Hello", 0, sender="web-a"),
                inbound("Hello", 1, sender="web-b"),
                inbound("12345678", 2, sender="web-b"),  # reaches the bot: fails
                inbound("Hello", 3, sender="web-c"),
            ]
        )
        assert [o.dead_lettered for o in outcomes] == [False, False, True, False]
        welcomed = {o.conversation_id for o in outcomes if not o.dead_lettered}
        assert {m.conversation_id for m in sent.sent} == welcomed and len(sent.sent) == 3
        assert store.pending_outbound() == []
        assert [letter["source"] for letter in store.dead_letters()] == ["inbound:web"]
        assert [e["kind"] for e in heard].count("message_in") == 3
        assert outcomes[2].conversation_id not in {
            e["conversation_id"] for e in heard if e["kind"] == "bot_started"
        }


def test_a_failed_send_in_a_group_is_on_its_conversations_last_outcome(tmp_path: Path) -> None:
    class Down:
        name = "down"

        def send(self, _message: object) -> None:
            raise ConnectionError("the channel API is down")

    with SqliteStore(tmp_path / "down.db") as store:
        engine, _ = _engine(store)
        engine.adapters = [Down()]
        first, other, second = engine.handle_all(
            [
                inbound("Hello", 0, sender="web-a"),
                inbound("Hello", 1, sender="web-b"),
                inbound("12345678", 2, sender="web-a"),
            ]
        )
        assert first.conversation_id == second.conversation_id
        assert first.failed_sends == [] and len(other.failed_sends) == 1
        assert [f.message.conversation_id for f in second.failed_sends] == [second.conversation_id]
        assert all(f.retry_at == T0 + timedelta(minutes=2, seconds=30) for f in second.failed_sends)
