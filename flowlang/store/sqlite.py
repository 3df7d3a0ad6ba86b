"""The durable conversation store in one SQLite file (WAL), no server: the SQL store (`sql.py`)
on a SQLite connection, and SQLite's spelling of what differs (`SqliteDialect`).

The file uses WAL with `synchronous=FULL`, so a committed transaction survives a power cut, not
only a crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from flowlang.private_files import create_private
from flowlang.store import inbox
from flowlang.store.dialect import Dialect, Rows
from flowlang.store.migrations import StoreError, migrate
from flowlang.store.sql import HistoryPage, SqlStore, _dumps


class SqliteDialect(Dialect):
    """SQLite's connection and spelling (3.35 or later: RETURNING, FILTER, row values)."""

    name = "sqlite"
    greatest = "max"
    byte_length = "length"
    lock_rows = ""  # a write transaction already holds the whole file
    page_size = None  # a cursor reads the log as it goes, at no cost to writers (WAL)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._closed = False
        self._lost: str | None = None  # the failure SQLite rolled the transaction back for

    def execute(self, query: str, args: Sequence[Any] | None = ()) -> Rows:
        return self.db.execute(query) if args is None else self.db.execute(query, args)

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(query, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        self._lost = None
        try:
            yield
            self._check_open()
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        finally:
            self._lost = None
        self.db.execute("COMMIT")

    @contextmanager
    def savepoint(self, depth: int) -> Iterator[None]:
        # SQLite rolls the whole transaction back on some failures of a statement (a full
        # disk, an I/O error): then there is no savepoint to go back to, and a SAVEPOINT
        # would begin a transaction of its own, committed by its RELEASE.
        self._check_open()
        name = f"nested{depth}"
        self.db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException as exc:
            if not self.db.in_transaction:
                self._lost = f"{type(exc).__name__}: {exc}"
                raise
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            raise
        self.db.execute(f"RELEASE {name}")

    def _check_open(self) -> None:
        """Raise if SQLite has rolled the transaction back (`_lost` says after what)."""
        if not self.db.in_transaction:
            after = f" after {self._lost}" if self._lost else ""
            raise sqlite3.OperationalError(
                f"the transaction was rolled back{after}: nothing of it was kept"
            )

    def sync(self) -> None:
        pass  # each statement has run when `execute` returns

    def migrating(self) -> AbstractContextManager[None]:
        return self.transaction()

    def has_table(self, table: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def is_read_only(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "readonly" in str(error)

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self.db.close()


MAPPED_BYTES = 2**31
"""How much of the file a `mapped` store reads through a memory map (SQLite caps it at its
build's maximum: 2 GiB less 64 KiB with Debian's)."""


class SqliteStore(SqlStore):
    """A ConversationStore in one SQLite file."""

    def __init__(self, path: str | Path, *, mapped: bool = False) -> None:
        """Open (or create) the store file and bring its schema up to date. `mapped`: read
        the file through a memory map (the service's engine: a customer lookup among a million
        then makes no read call per page; docs/store.md, "Performance").

        Raises StoreError when the file is not a SQLite database or is from a newer flowlang.
        """
        location = str(path)
        if location not in ("", ":memory:"):
            try:
                # Owner-only: SQLite gives the -wal and -shm files the database file's mode.
                create_private(location)
            except OSError as exc:
                raise StoreError(f"{location}: cannot create the store: {exc.strerror}") from exc
        self.dialect: SqliteDialect
        db = sqlite3.connect(location, isolation_level=None, check_same_thread=False)
        super().__init__(SqliteDialect(db), location)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=5000")
            if mapped:
                self.db.execute(f"PRAGMA mmap_size={MAPPED_BYTES}")
            # Migrations run before keys are enforced: one that rebuilds a table drops the old
            # one while others still refer to its name (SQLite's own procedure for it).
            self.schema_version = migrate(self.dialect)
            self.db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.DatabaseError, StoreError) as exc:
            self.db.close()
            raise StoreError(f"{location}: cannot open as a flowlang store: {exc}") from exc

    @property
    def db(self) -> sqlite3.Connection:
        """The store's connection (a tool or test may put another in its place)."""
        return self.dialect.db

    @db.setter
    def db(self, connection: sqlite3.Connection) -> None:
        self.dialect.db = connection

    def __enter__(self) -> SqliteStore:
        return self

    def _accept_processed(self, channel: str, event_id: str, payload: dict[str, Any]) -> bool:
        """One statement stores the event, numbered and marked processed (where storing it,
        then marking it, took three: the counter, the row, the mark), and one more counts it."""
        stored = self.db.execute(
            "INSERT INTO inbound (channel, event_id, payload, processed, seq) VALUES (?, ?, ?, 1, "
            "coalesce((SELECT value FROM counters WHERE name = 'inbound'), 0) + 1) "
            "ON CONFLICT DO NOTHING",
            (channel, event_id, _dumps(payload)),
        ).rowcount
        if stored:
            self.db.execute(
                "INSERT INTO counters (name, value) VALUES ('inbound', 1) "
                "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
            )
        return bool(stored)

    def add_outbound(
        self,
        conversation_id: str,
        message: dict[str, Any],
        at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> int:
        """Queue a message to deliver once the current transaction commits; its id is the row's
        rowid, as SQLite reports it (RETURNING costs SQLite a temporary table a statement)."""
        cursor = self.db.execute(
            "INSERT INTO outbox (conversation_id, message, queued_at, delivered_to) "
            "VALUES (?, ?, ?, ?)",
            (conversation_id, _dumps(message), at.isoformat(), _dumps(list(delivered_to))),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def pending_inbound(self) -> list[dict[str, Any]]:
        """Inbound events stored but not processed (a crash came in between), oldest first;
        the service's inbox rows not taken yet are taken first (`inbox.py`)."""
        self.take_inbox()
        return super().pending_inbound()

    def took_from_inbox(self, inbox_id: str, seq: int) -> None:
        """(In the transaction that took them) the inbox's rows up to `seq` are in the store."""
        self.db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
            (inbox.counter_name(inbox_id), seq),
        )

    def take_inbox(self) -> None:
        """The inbox's rows not taken yet (the service stopped or crashed before it processed
        them) into the store: events as not processed, unreadable payloads as dead letters."""
        opened = inbox.open_existing(self.path) if self.path not in ("", ":memory:") else None
        if opened is None:
            return
        db, inbox_id = opened
        try:
            with self.transaction():
                rows = inbox.rows_after(db, inbox.taken_in(self.db, inbox_id))
                for _, entry in rows:
                    if entry.letter is not None:
                        letter = entry.letter
                        self.keep_unreadable(
                            letter.source, letter.payload, letter.reason, letter.at
                        )
                    elif entry.event_id is not None:
                        self.accept_inbound(entry.channel, entry.event_id, entry.payload)
                if rows:
                    self.took_from_inbox(inbox_id, rows[-1][0])
        finally:
            db.close()


def count_unprocessed(path: str | Path, timeout: float = 2.0) -> int:
    """Inbound events stored and not processed in the store file at `path` (its inbox's rows
    not taken yet included), read on connections of their own (read-only), beside the process
    writing it; raises sqlite3.Error."""
    db = _read_only(path, timeout)
    try:
        (count,) = db.execute("SELECT count(*) FROM inbound WHERE processed = 0").fetchone()
        box_path = inbox.inbox_path(path)
        if box_path.exists():
            box = _read_only(box_path, timeout)
            try:
                row = box.execute("SELECT value FROM meta WHERE name = 'id'").fetchone()
                taken = inbox.taken_in(db, str(row[0])) if row else 0
                (waiting,) = box.execute(
                    "SELECT count(*) FROM inbox WHERE seq > ?", (taken,)
                ).fetchone()
            finally:
                box.close()
            count += waiting
        return int(count)
    finally:
        db.close()


def _read_only(path: str | Path, timeout: float) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=timeout)


__all__ = ["MAPPED_BYTES", "HistoryPage", "SqliteDialect", "SqliteStore", "count_unprocessed"]
