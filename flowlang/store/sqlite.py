"""The durable conversation store in one SQLite file (WAL), no server: the SQL store (`sql.py`)
on a SQLite connection, and SQLite's spelling of what differs (`SqliteDialect`).

The file uses WAL with `synchronous=FULL`, so a committed transaction survives a power cut, not
only a crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from flowlang.private_files import create_private
from flowlang.store.dialect import Dialect, Rows
from flowlang.store.migrations import StoreError, migrate
from flowlang.store.sql import HistoryPage, SqlStore


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

    def execute(self, query: str, args: Sequence[Any] | None = ()) -> Rows:
        return self.db.execute(query) if args is None else self.db.execute(query, args)

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(query, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def savepoint(self, depth: int) -> Iterator[None]:
        name = f"nested{depth}"
        self.db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            raise
        self.db.execute(f"RELEASE {name}")

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


class SqliteStore(SqlStore):
    """A ConversationStore in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """Open (or create) the store file and bring its schema up to date.

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
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=5000")
            self.schema_version = migrate(self.dialect)
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


def count_unprocessed(path: str | Path, timeout: float = 2.0) -> int:
    """Inbound events stored and not processed in the store file at `path`, read on a
    connection of its own (read-only), beside the process writing it; raises sqlite3.Error."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=timeout)
    try:
        (count,) = db.execute("SELECT count(*) FROM inbound WHERE processed = 0").fetchone()
        return int(count)
    finally:
        db.close()


__all__ = ["HistoryPage", "SqliteDialect", "SqliteStore", "count_unprocessed"]
