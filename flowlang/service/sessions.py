"""The browser's sign-in sessions: the sign-in page takes an API token once and gives the
browser a session instead, so that the cookie never holds the token (docs/workspace.md).

A session id is `fls_` and 32 random bytes; the store keeps only its SHA-256 (`sessions`
table), with the user's token hash at sign-in, so that every process sharing a PostgreSQL store
sees it. A session ends when its user signs out, when it has not been used for the deployment's
`access.session_idle_timeout`, at `access.session_lifetime` after sign-in however active it is,
and when the user's token is revoked, expires or is replaced. Its last use is written at most
once every `TOUCH_EVERY`, so that a busy page does not write the store on every request.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flowlang.config.models import Access
from flowlang.runtime.ports import User
from flowlang.runtime.users import in_force, token_hash
from flowlang.store.sessions import StoredSession
from flowlang.store.sql import SqlStore

SESSION_PREFIX = "fls_"
SESSION_BYTES = 32
MAX_SESSION_ID = 100
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionRules:
    """How long a session lasts unused (`idle`) and at most (`lifetime`)."""

    idle: timedelta = Access().session_idle_timeout
    lifetime: timedelta = Access().session_lifetime

    @staticmethod
    def of(access: Access) -> SessionRules:
        return SessionRules(access.session_idle_timeout, access.session_lifetime)


def session_hash(session_id: str) -> str | None:
    """What the store keeps of a session id (None: it cannot be one, so nobody's)."""
    if (
        not session_id.startswith(SESSION_PREFIX)
        or not session_id.isascii()
        or len(session_id) > MAX_SESSION_ID
    ):
        return None
    return token_hash(session_id)


def open_session(store: SqlStore, user: User, rules: SessionRules, now: datetime) -> str:
    """A new session for `user` (signed in with their token just now): its id, for the
    cookie; the store keeps its hash."""
    session_id = SESSION_PREFIX + secrets.token_urlsafe(SESSION_BYTES)
    digest = token_hash(session_id)
    store.add_session(
        StoredSession(digest, user.name, user.token_hash, now, now, now + rules.lifetime)
    )
    return session_id


def session_user(store: SqlStore, digest: str, rules: SessionRules, now: datetime) -> User | None:
    """The user of the session whose id hashes to `digest`, now one more use of it; None when
    there is none, or it has ended (which then forgets it)."""
    found = store.session(digest)
    if found is None:
        return None
    user = store.user(found.user_name)
    ends_at = min(found.ends_at, found.created_at + rules.lifetime)
    if (
        now >= ends_at
        or now - found.last_seen_at >= rules.idle
        or user is None
        or not in_force(user, now)
        or not hmac.compare_digest(user.token_hash, found.token_hash)
    ):
        store.end_session(digest)
        return None
    if now - found.last_seen_at >= TOUCH_EVERY:
        store.touch_session(digest, now)
    return user
