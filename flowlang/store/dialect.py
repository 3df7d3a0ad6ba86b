"""What differs between the SQL databases a store lives in (SQLite, PostgreSQL): how a statement
is sent, how a transaction and a nested one begin and end, and the few SQL spellings that are
not the same in both. The store (`sql.py`) and the migrations (`migrations.py`) are written once
against this; `sqlite.py` and `postgres.py` implement it.

Statements are written with `?` placeholders; a dialect turns them into its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Rows(Protocol):
    """What a statement gives back: its rows, one at a time or all together."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Dialect(ABC):
    """One database connection and the way its SQL is spelled."""

    name: str  # "sqlite" or "postgres": which of a migration step's texts to run
    greatest: str  # the larger of two values
    byte_length: str  # the length in bytes of a blob
    lock_rows: str  # appended to a SELECT of rows about to be updated
    page_size: int | None  # the event log read this many rows at a time (None: one query)
    # Statements go ahead without waiting for their answers (a server: `sync` waits): then a
    # read sent at the end of a unit comes back with the round trip that ends it.
    pipelined = False
    # Customers' and conversations' numbers reserved this many at a time (`SqlStore._next_id`):
    # on a server, one round trip per block rather than per number.
    id_block = 1
    # Called once, when the next nested unit directly inside the outermost one ends, just
    # before its round trip (a pipelined dialect): sends a read the next unit will need.
    before_sync: Callable[[], None] | None = None

    @abstractmethod
    def execute(self, query: str, args: Sequence[Any] | None = ()) -> Rows:
        """Run one statement (`?` placeholders; `args` None: a script statement, sent as is)."""

    @abstractmethod
    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of `rows` (no results)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """The outermost unit of work: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    def savepoint(self, depth: int) -> AbstractContextManager[None]:
        """A unit of work nested in the current one, undone alone if its block raises."""

    @abstractmethod
    def sync(self) -> None:
        """Wait for the statements sent so far, so that one that failed is raised now."""

    @abstractmethod
    def migrating(self) -> AbstractContextManager[None]:
        """The transaction the migrations run in, one process at a time."""

    @abstractmethod
    def has_table(self, table: str) -> bool:
        """Whether the store's schema has this table."""

    @abstractmethod
    def json_text(self, column: str, key: str) -> str:
        """SQL for a top-level text field of the JSON kept in a text column."""

    @abstractmethod
    def is_read_only(self, error: BaseException) -> bool:
        """Whether a failed write failed because the store was opened read-only."""

    @property
    @abstractmethod
    def errors(self) -> tuple[type[Exception], ...]:
        """The driver's error classes."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """Whether the connection is closed."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""
