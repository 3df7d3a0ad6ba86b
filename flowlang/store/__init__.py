"""The durable conversation stores: take the engine's conversations, messages and events, give
them back across restarts from a SQLite file (`SqliteStore`) or a PostgreSQL database
(`PostgresStore`), one SQL store (`sql.py`) with a dialect each and one list of schema
migrations; `open_store` opens either from what `--store` was given. The service makes a SQLite
store's webhooks durable in its inbox (`inbox.py`, a file beside the store), which the store
takes in exactly once."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from flowlang.store.migrations import StoreError
from flowlang.store.sql import HistoryPage, SqlStore
from flowlang.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from flowlang.store.postgres import PostgresStore

Store: TypeAlias = "SqliteStore | PostgresStore"

URL_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | Path) -> bool:
    """Whether a `--store` value names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def open_store(location: str | Path, *, mapped: bool = False, name: str = "flowlang") -> Store:
    """The store at `location`: a `postgresql://` URL (`name`: the connection's application
    name), or the path of a SQLite file (created when missing; `mapped`: read through a memory
    map, `SqliteStore`). Raises StoreError saying what is wrong."""
    if is_postgres_url(location):
        from flowlang.store.postgres import PostgresStore  # psycopg only when it is used

        return PostgresStore(str(location), name)
    return SqliteStore(location, mapped=mapped)


def shown_location(location: str | Path) -> str:
    """A store's location to show: a URL without its password."""
    if is_postgres_url(location):
        from flowlang.store.postgres import redacted

        return redacted(str(location))
    return str(location)


def database_errors() -> tuple[type[Exception], ...]:
    """The errors a store's database may raise (psycopg's only once it is in use)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)


def unreachable_errors() -> tuple[type[Exception], ...]:
    """What a read or write of the store raises when the store cannot be reached (a lost
    connection not open again: `reconnect.py`) or the database failed: the request is answered
    503, nothing of it kept."""
    from flowlang.store.reconnect import StoreUnreachable

    return (StoreUnreachable, *database_errors())


def count_unprocessed(location: str | Path, timeout: float = 2.0) -> int:
    """Inbound events stored and not processed, read on a connection of its own beside the
    process writing the store; raises sqlite3.Error or psycopg.Error."""
    if is_postgres_url(location):
        from flowlang.store import postgres

        return postgres.count_unprocessed(str(location), timeout)
    from flowlang.store import sqlite

    return sqlite.count_unprocessed(location, timeout)


__all__ = [
    "HistoryPage",
    "SqlStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "count_unprocessed",
    "database_errors",
    "is_postgres_url",
    "open_store",
    "shown_location",
    "unreachable_errors",
]
