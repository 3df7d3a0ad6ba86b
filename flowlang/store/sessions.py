"""The `sessions` table both SQL stores share: the browser's sign-in sessions, each kept by the
SHA-256 of its id (the id itself is only in the browser's cookie), with the API token it was
opened with, when it was last used and when it ends at the latest (`service/sessions.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StoredSession:
    """One sign-in session as the store keeps it."""

    id_hash: str
    user_name: str
    token_hash: str  # the user's token when it was opened: another token (or none) ends it
    created_at: datetime
    last_seen_at: datetime
    ends_at: datetime  # its absolute end, however active it is


COLUMNS = "id_hash, user_name, token_hash, created_at, last_seen_at, ends_at"


def session_of(row: tuple[object, ...]) -> StoredSession:
    """A row selected with COLUMNS."""
    id_hash, user_name, token_hash, created, seen, ends = row
    return StoredSession(
        str(id_hash),
        str(user_name),
        str(token_hash),
        datetime.fromisoformat(str(created)),
        datetime.fromisoformat(str(seen)),
        datetime.fromisoformat(str(ends)),
    )
