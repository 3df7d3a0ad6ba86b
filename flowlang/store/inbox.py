"""The SQLite store's inbox: webhook events made durable in a file of their own.

A SQLite file takes one writer at a time, and the engine's transactions (processing events, an
agent's action) hold the store's write lock while the flow runs. So the service makes its
webhooks durable in `<store>-inbox` beside the store file (WAL, `synchronous=FULL`,
owner-only): the service's intake thread appends every request waiting in one transaction (one
disk sync for all) and answers them, while the engine processes what came before.

Each row has its arrival number (`seq`, never reused). The engine takes rows into the store in
that order (an event: stored and processed, a seen event id a duplicate; an unreadable payload:
a dead letter) and, in the same transaction, keeps the last `seq` it took in the store's
counters (`inbox:<the inbox's id>`): so a row is taken exactly once across crashes, whichever
of the two files a crash caught. Rows taken are trimmed from the inbox later. A store opened
without the service (recovery, `flowlang replay`) takes the rows not taken yet first
(`SqliteStore.pending_inbound`).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flowlang.private_files import create_private
from flowlang.store.migrations import StoreError
from flowlang.store.sql import _dumps

INBOX_SUFFIX = "-inbox"
VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    event_id TEXT,
    payload TEXT NOT NULL,
    source TEXT,
    reason TEXT,
    at TEXT,
    UNIQUE (channel, event_id)
);
"""


@dataclass(frozen=True)
class Letter:
    """A payload that could not be read: kept as a dead letter with its reason."""

    source: str
    payload: dict[str, Any]
    reason: str
    at: datetime


@dataclass(frozen=True)
class Entry:
    """One request's part to append: an event (`channel`, `event_id`, its JSON) or a letter."""

    channel: str
    event_id: str | None
    payload: dict[str, Any]
    letter: Letter | None = None


@dataclass(frozen=True)
class Appended:
    """What became of one request's entries: the positions of those appended (None for an
    event seen before: a duplicate)."""

    seqs: list[int | None]


def inbox_path(store_path: str | Path) -> Path:
    """The inbox file of the SQLite store at `store_path`."""
    return Path(f"{store_path}{INBOX_SUFFIX}")


def counter_name(inbox_id: str) -> str:
    """The store's counter holding the last `seq` taken from the inbox `inbox_id`."""
    return f"inbox:{inbox_id}"


def taken_in(store: sqlite3.Connection, inbox_id: str) -> int:
    """The last `seq` of the inbox `inbox_id` that the store on connection `store` took."""
    row = store.execute(
        "SELECT value FROM counters WHERE name = ?", (counter_name(inbox_id),)
    ).fetchone()
    return int(row[0]) if row else 0


class SqliteInbox:
    """The inbox of the SQLite store at `store_path` (created when missing), written by one
    thread: `append` group-commits requests' entries; `trim` drops the rows the store took."""

    def __init__(self, store_path: str | Path) -> None:
        self.path = inbox_path(store_path)
        self.db = _open(self.path, create=True)
        self.id = _identity(self.db)
        # The store's own file, read (never written) to tell an event it took long ago.
        self._store = sqlite3.connect(
            str(store_path), isolation_level=None, check_same_thread=False
        )
        self._trimmed = 0

    def close(self) -> None:
        self.db.close()
        self._store.close()

    def taken(self) -> int:
        """The last `seq` the store has taken (committed) from this inbox."""
        return taken_in(self._store, self.id)

    def append(self, requests: Sequence[Sequence[Entry]]) -> list[Appended]:
        """Append every request's entries in one transaction (one disk sync) and trim the rows
        the store has taken. An event whose id the inbox or the store holds already is a
        duplicate, not appended. Raises sqlite3.Error when nothing could be written."""
        taken = self.taken()
        results: list[Appended] = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if taken > self._trimmed:
                self.db.execute("DELETE FROM inbox WHERE seq <= ?", (taken,))
            for entries in requests:
                results.append(Appended([self._append(entry) for entry in entries]))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._trimmed = max(self._trimmed, taken)
        return results

    def _append(self, entry: Entry) -> int | None:
        letter = entry.letter
        if letter is None and self._stored(entry.channel, entry.event_id):
            return None
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO inbox (channel, event_id, payload, source, reason, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                entry.channel,
                entry.event_id,
                _dumps(entry.payload),
                letter.source if letter else None,
                letter.reason if letter else None,
                letter.at.isoformat() if letter else None,
            ),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def _stored(self, channel: str, event_id: str | None) -> bool:
        row = self._store.execute(
            "SELECT 1 FROM inbound WHERE channel = ? AND event_id = ?", (channel, event_id)
        ).fetchone()
        return row is not None


class InboxReader:
    """The inbox of the SQLite store at `store_path` (created when missing), as the engine reads
    it: the rows the intake appended after a `seq`, in arrival order, whichever process wrote
    them (each read sees every transaction committed before it)."""

    def __init__(self, store_path: str | Path) -> None:
        self.path = inbox_path(store_path)
        self.db = _open(self.path, create=True)
        self.id = _identity(self.db)

    def after(self, seq: int) -> list[tuple[int, Entry]]:
        return rows_after(self.db, seq)

    def close(self) -> None:
        self.db.close()


def rows_after(db: sqlite3.Connection, after: int) -> list[tuple[int, Entry]]:
    """The inbox's rows after `seq` `after`, in arrival order."""
    found = []
    query = (
        "SELECT seq, channel, event_id, payload, source, reason, at FROM inbox "
        "WHERE seq > ? ORDER BY seq"
    )
    for seq, channel, event_id, payload, source, reason, at in db.execute(query, (after,)):
        letter = None
        if source is not None:
            letter = Letter(source, json.loads(payload), reason, datetime.fromisoformat(at))
        found.append((seq, Entry(channel, event_id, json.loads(payload), letter)))
    return found


def open_existing(store_path: str | Path) -> tuple[sqlite3.Connection, str] | None:
    """The inbox of the store at `store_path` and its id, if the service ever made one."""
    path = inbox_path(store_path)
    if not path.exists():
        return None
    db = _open(path, create=False)
    return db, _identity(db)


def _open(path: Path, create: bool) -> sqlite3.Connection:
    try:
        if create:
            create_private(path)
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open the store's inbox: {exc}") from exc
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > VERSION:
            raise StoreError(f"{path}: inbox from a newer flowlang (version {version})")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version = {VERSION}")
    except (sqlite3.Error, StoreError) as exc:
        db.close()
        raise StoreError(f"{path}: cannot open as the store's inbox: {exc}") from exc
    return db


def _identity(db: sqlite3.Connection) -> str:
    """The inbox's id, made when the file was: a new file (an old one deleted) is another
    inbox, whose rows the store has not taken yet."""
    db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('id', ?)", (uuid.uuid4().hex,))
    (value,) = db.execute("SELECT value FROM meta WHERE name = 'id'").fetchone()
    return str(value)
