"""The commit-failure rebuild on PostgreSQL (tests/store/test_failed_commit.py has SQLite's): a
group whose commit the server refuses, a timer whose unit is refused, and one event whose
statement fails inside a group (its savepoint undone down the pipeline) leave nothing in the
engine's memory that the store does not hold."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from flowlang.runtime.engine import Engine
from flowlang.store.leadership import LeadershipLost
from flowlang.store.postgres import PostgresStore
from tests.store.helpers import T0, engine_on, inbound, with_an_agent
from tests.store.test_failed_commit import _escalated, _phantoms


@pytest.fixture
def engine(postgres_url: str) -> Iterator[tuple[Engine, PostgresStore]]:
    engine, store = engine_on(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        yield engine, store
    finally:
        store.close()


def _refusing_commits(store: PostgresStore) -> Callable[[], None]:
    """Every commit refused by the server's own check: the store's lead (fence) is not the
    leader row's epoch, so the transaction is rolled back; the returned function mends it."""
    store.fence = 99
    return lambda: setattr(store, "fence", None)


def test_a_group_whose_commit_is_refused_leaves_no_agent_holding_its_work(
    engine: tuple[Engine, PostgresStore],
) -> None:
    eng, store = engine
    kept, kept_agent = with_an_agent(eng, "web-kept")
    mend = _refusing_commits(store)
    with pytest.raises(LeadershipLost), eng.group():
        lost, agent = with_an_agent(eng, "web-lost", minutes=5)
    mend()
    assert store.get_conversation(lost) is None  # the server undid it all
    eng.handle(inbound("Hello", 10, sender="web-next"))
    assert _phantoms(eng, store) == []  # type: ignore[arg-type]
    acd: Any = eng.acd
    assert lost not in acd.agents[agent].holding
    assert kept in acd.agents[kept_agent].holding
    again, _ = with_an_agent(eng, "web-lost", minutes=20)
    assert store.get_conversation(again) is not None
    assert _phantoms(eng, store) == []  # type: ignore[arg-type]


def test_a_timer_whose_unit_is_refused_fires_again(engine: tuple[Engine, PostgresStore]) -> None:
    eng, store = engine
    asked = eng.handle(inbound("Hello", 0, sender="web-quiet"))
    mend = _refusing_commits(store)
    with pytest.raises(LeadershipLost):
        eng.advance(T0 + timedelta(minutes=11))
    mend()
    outcomes = eng.advance(T0 + timedelta(minutes=12))
    assert [o for o in outcomes if o.conversation_id == asked.conversation_id]
    conv = store.get_conversation(asked.conversation_id or "")
    assert conv is not None and conv.status == "bot"


def test_an_event_whose_statement_fails_in_a_group_is_undone_alone(
    engine: tuple[Engine, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real server error inside one event's savepoint (sent down the pipeline, reported at
    its end): that event is undone and kept as a dead letter, the others commit."""
    eng, store = engine
    append = PostgresStore.append_event

    def failing(self: PostgresStore, kind: str, *args: Any, **kwargs: Any) -> None:
        if kind == "accepted":
            self.dialect.execute("INSERT INTO no_such_table VALUES (1)", ())
        append(self, kind, *args, **kwargs)

    asked = eng.handle(inbound("Hello", 0, sender="web-a"))
    eng.handle(inbound("12345678", 1, sender="web-a"))
    with monkeypatch.context() as patch:
        patch.setattr(PostgresStore, "append_event", failing)
        failed, other = eng.handle_all(
            [_escalated(asked.conversation_id or "", 2), inbound("Hello", 3, sender="web-b")]
        )
    assert failed.dead_lettered and not other.dead_lettered
    assert store.get_conversation(other.conversation_id or "") is not None
    eng.handle(inbound("thanks", 4, sender="web-b"))
    assert _phantoms(eng, store) == []  # type: ignore[arg-type]


def test_a_connection_lost_in_a_group_commits_nothing_and_a_restart_finds_no_phantom(
    postgres_url: str,
) -> None:
    eng, store = engine_on(postgres_url)
    assert isinstance(store, PostgresStore)
    kept, _ = with_an_agent(eng, "web-kept")
    admin = psycopg.connect(postgres_url, autocommit=True)
    with admin, pytest.raises(psycopg.OperationalError), eng.group():
        lost, _ = with_an_agent(eng, "web-lost", minutes=5)
        admin.execute("SELECT pg_terminate_backend(%s)", (store.db.info.backend_pid,))
    assert store.dialect.closed  # the store says so (the service's worker gives up the lead)
    store.close()
    again, reopened = engine_on(postgres_url)
    try:
        assert reopened.get_conversation(lost) is None and reopened.get_conversation(kept)
        again.recover(T0 + timedelta(minutes=6))
        assert _phantoms(again, reopened) == []  # type: ignore[arg-type]
    finally:
        reopened.close()
