"""When a browser's session ends: signed out, idle for `idle`, `lifetime` after it was opened
however busy, or when its user's token is revoked, expires or is replaced; its last use written
at most once a minute."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowlang.runtime.ports import User
from flowlang.runtime.users import new_token, token_hash
from flowlang.service.sessions import (
    TOUCH_EVERY,
    SessionRules,
    open_session,
    session_hash,
    session_user,
)
from flowlang.store import SqliteStore

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RULES = SessionRules(idle=timedelta(minutes=30), lifetime=timedelta(hours=12))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "s.db") as db:
        yield db


def frank(store: SqliteStore, expires_at: datetime | None = None) -> User:
    return store.add_user("frank", "agent", token_hash(new_token()), T0, expires_at)


def digest(session_id: str) -> str:
    found = session_hash(session_id)
    assert found is not None
    return found


def test_a_session_id_is_random_prefixed_and_kept_only_as_its_hash(store: SqliteStore) -> None:
    user = frank(store)
    ids = {open_session(store, user, RULES, T0) for _ in range(20)}
    assert len(ids) == 20 and all(i.startswith("fls_") and len(i) == 47 for i in ids)
    rows = store.db.execute("SELECT id_hash FROM sessions").fetchall()
    assert sorted(r[0] for r in rows) == sorted(token_hash(i) for i in ids)


@pytest.mark.parametrize("value", ["", "flt_" + "a" * 43, "fls_\udc80", "fls_" + "a" * 200])
def test_what_cannot_be_a_session_id_is_nobodys(value: str) -> None:
    assert session_hash(value) is None


def test_use_keeps_a_session_alive_and_idleness_ends_it(store: SqliteStore) -> None:
    session = digest(open_session(store, frank(store), RULES, T0))
    at = T0
    for _ in range(5):  # used every 29 minutes: never idle for 30
        at += timedelta(minutes=29)
        assert session_user(store, session, RULES, at) is not None
    assert session_user(store, session, RULES, at + RULES.idle) is None
    assert store.session(session) is None  # ended: forgotten
    assert session_user(store, session, RULES, at) is None


def test_a_busy_session_ends_at_its_lifetime(store: SqliteStore) -> None:
    session = digest(open_session(store, frank(store), RULES, T0))
    at = T0
    while at + timedelta(minutes=10) < T0 + RULES.lifetime:
        at += timedelta(minutes=10)
        assert session_user(store, session, RULES, at) is not None
    assert session_user(store, session, RULES, T0 + RULES.lifetime) is None


def test_a_shorter_lifetime_configured_later_counts_for_open_sessions(store: SqliteStore) -> None:
    session = digest(open_session(store, frank(store), RULES, T0))
    shorter = SessionRules(idle=RULES.idle, lifetime=timedelta(minutes=20))
    assert session_user(store, session, shorter, T0 + timedelta(minutes=19)) is not None
    assert session_user(store, session, shorter, T0 + timedelta(minutes=20)) is None


def test_the_last_use_is_written_at_most_once_a_minute(store: SqliteStore) -> None:
    session = digest(open_session(store, frank(store), RULES, T0))
    assert session_user(store, session, RULES, T0 + TOUCH_EVERY / 2) is not None
    kept = store.session(session)
    assert kept is not None and kept.last_seen_at == T0
    assert session_user(store, session, RULES, T0 + TOUCH_EVERY) is not None
    kept = store.session(session)
    assert kept is not None and kept.last_seen_at == T0 + TOUCH_EVERY


def test_a_revoked_replaced_or_expired_token_ends_its_sessions(store: SqliteStore) -> None:
    user = frank(store, expires_at=T0 + timedelta(hours=1))
    expiring = digest(open_session(store, user, RULES, T0))
    for minutes in (29, 58):
        assert session_user(store, expiring, RULES, T0 + timedelta(minutes=minutes)) is not None
    assert session_user(store, expiring, RULES, T0 + timedelta(hours=1)) is None  # not idle
    revoked = digest(open_session(store, user, RULES, T0))
    store.revoke_user("frank", T0 + timedelta(minutes=1))
    assert session_user(store, revoked, RULES, T0 + timedelta(minutes=2)) is None
    replaced = digest(open_session(store, user, RULES, T0))  # opened with the old token
    store.add_user("frank", "agent", token_hash(new_token()), T0 + timedelta(minutes=3))
    assert session_user(store, replaced, RULES, T0 + timedelta(minutes=4)) is None
