"""A unit of work the store undoes (its commit fails: disk full, the connection lost; or an
event fails inside a group) leaves nothing of it in the engine's memory either: the ACD and the
flows' timers are taken back from the store before the next event, so no agent holds work that
was never stored and no timer of a wait that was stored is forgotten."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowlang.events import BotEvent
from flowlang.runtime.engine import Engine
from flowlang.store import SqliteStore
from tests.store.helpers import T0, engine_on, inbound, with_an_agent


def _failing_commit(store: SqliteStore) -> Callable[[], None]:
    """Make every commit fail as a full disk does; the returned function mends it."""

    def refuse() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    store._ending = refuse  # type: ignore[method-assign]
    return lambda: delattr(store, "_ending")


def _phantoms(engine: Engine, store: SqliteStore) -> list[str]:
    """What the ACD holds that the store does not route: conversations it has no row of, or
    not queued nor with an agent there."""
    acd: Any = engine.acd
    held = set(acd.interactions) | {i for r in acd.agents.values() for i in r.holding}
    return sorted(
        cid
        for cid in held
        if (conv := store.get_conversation(cid)) is None
        or conv.status not in ("queued", "with_agent")
    )


def test_a_group_whose_commit_fails_leaves_no_agent_holding_its_work(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "full.db")
    assert isinstance(store, SqliteStore)
    kept, kept_agent = with_an_agent(engine, "web-kept")
    mend = _failing_commit(store)
    with pytest.raises(sqlite3.OperationalError), engine.group():
        lost, agent = with_an_agent(engine, "web-lost", minutes=5)
    mend()
    assert store.get_conversation(lost) is None  # the store undid it all
    engine.handle(inbound("Hello", 10, sender="web-next"))  # the next event
    assert _phantoms(engine, store) == []
    acd: Any = engine.acd
    assert lost not in acd.agents[agent].holding
    assert kept in acd.agents[kept_agent].holding  # what was stored is still theirs
    # the channel sends the lost conversation's messages again: it reaches an agent as new
    again, _ = with_an_agent(engine, "web-lost", minutes=20)
    assert store.get_conversation(again) is not None and _phantoms(engine, store) == []


def test_a_timer_whose_unit_fails_fires_again_once_the_store_is_back(tmp_path: Path) -> None:
    """The 10-minute wait for the account number is stored; its timeout's unit of work fails
    to commit. The wait is still stored, so its timeout runs at the next advance."""
    engine, store = engine_on(tmp_path / "timer.db")
    assert isinstance(store, SqliteStore)
    asked = engine.handle(inbound("Hello", 0, sender="web-quiet"))
    mend = _failing_commit(store)
    with pytest.raises(sqlite3.OperationalError):
        engine.advance(T0 + timedelta(minutes=11))
    mend()
    outcomes = engine.advance(T0 + timedelta(minutes=12))
    timed_out = [o for o in outcomes if o.conversation_id == asked.conversation_id]
    assert timed_out, "the wait's timeout was forgotten"
    conv = store.get_conversation(asked.conversation_id or "")
    assert conv is not None and conv.status == "bot"  # served anyway: on to the bot


def test_an_event_undone_alone_in_a_group_leaves_nothing_in_the_acd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection fails while the agent's taking it is being logged: the event is undone (kept
    as a dead letter) and the others of the group go on; the agent is not left holding it."""
    engine, store = engine_on(tmp_path / "one.db")
    assert isinstance(store, SqliteStore)
    append = SqliteStore.append_event

    def flaky(self: SqliteStore, kind: str, *args: Any, **kwargs: Any) -> None:
        if kind == "accepted":
            raise sqlite3.OperationalError("server closed the connection unexpectedly")
        append(self, kind, *args, **kwargs)

    asked = engine.handle(inbound("Hello", 0, sender="web-a"))
    engine.handle(inbound("12345678", 1, sender="web-a"))
    with monkeypatch.context() as patch:
        patch.setattr(SqliteStore, "append_event", flaky)
        failed, other = engine.handle_all(
            [_escalated(asked.conversation_id or "", 2), inbound("Hello", 3, sender="web-b")]
        )
    assert failed.dead_lettered and not other.dead_lettered
    engine.handle(inbound("thanks", 4, sender="web-b"))  # the next event
    assert _phantoms(engine, store) == []


def _escalated(conversation_id: str, minutes: float) -> BotEvent:
    return BotEvent(
        event_id=f"bot-{conversation_id}-{minutes}",
        conversation_id=conversation_id,
        outcome="escalate",
        intent="loan_enquiry",
        timestamp=T0 + timedelta(minutes=minutes),
    )


def test_a_host_that_undoes_its_own_transaction_says_so_and_the_acd_follows(
    tmp_path: Path,
) -> None:
    """The service runs an agent's call inside a savepoint of its own; when the host's write
    after it fails, the savepoint undoes the engine's work too: `engine.rolled_back()`."""
    engine, store = engine_on(tmp_path / "host.db")
    assert isinstance(store, SqliteStore)
    asked = engine.handle(inbound("Hello", 0, sender="web-a"))
    engine.handle(inbound("12345678", 1, sender="web-a"))
    with pytest.raises(sqlite3.OperationalError), store.transaction():
        taken = engine.handle(_escalated(asked.conversation_id or "", 2))
        assert [n.kind for n in taken.notices if n.kind == "accepted"]
        raise sqlite3.OperationalError("the host's own write failed")
    engine.rolled_back()
    engine.handle(inbound("Hello", 3, sender="web-b"))
    assert _phantoms(engine, store) == []
