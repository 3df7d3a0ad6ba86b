"""API tokens checked off the engine's thread, on a PostgreSQL store (docs/scaling.md).

Every request of the API and the pages is signed in by its token (`access.py`). On a SQLite
store that read is a call on the engine's worker, as everything that touches the store is; on a
PostgreSQL store `TokenReader` reads the user on a connection of its own, in a thread of the
event loop's pool, so a request's sign-in does not queue behind the engine's turn, nor costs
its thread a round trip. It reads the users table as it is at that moment: a token revoked in
any process (or by `flowlang users revoke`) is refused at the next request; the browser's
sessions (`sessions.py`) are read and kept on the same connection. A connection the
server dropped is opened again (`store/reconnect.py`); while the store cannot be reached a
sign-in is refused at once (503), without waiting for a connect each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import psycopg

from flowlang.runtime.ports import User
from flowlang.runtime.users import authenticate
from flowlang.store.migrations import StoreError
from flowlang.store.postgres import PostgresStore
from flowlang.store.reconnect import Reconnect, StoreUnreachable

APPLICATION_NAME = "flowlang-tokens"
T = TypeVar("T")


class TokenReader:
    """The user of a token (`user_of`), read on a connection of its own, opened at first use
    and again after the server dropped it; thread-safe (one read at a time)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: PostgresStore | None = None
        self._lock = threading.Lock()
        self.reconnect = Reconnect(APPLICATION_NAME)

    def user_of(self, token: str, now: datetime) -> User | None:
        """The user `token` belongs to (None: unknown, revoked or expired); see `run`."""
        return self.run(lambda store: authenticate(store, token, now))

    def run(self, read: Callable[[PostgresStore], T]) -> T:
        """`read` (a sign-in's few statements: a token's user, a session's) on this reader's
        connection. A connection the server dropped (a restart, an idle timeout) is opened again
        and `read` tried once more. Raises StoreUnreachable while the store cannot be reached,
        psycopg.Error when the read fails otherwise."""
        with self._lock:
            store = self._opened()
            try:
                return read(store)
            except psycopg.OperationalError as exc:
                if not store.dialect.closed:
                    raise
                self.reconnect.lost(exc)
            return read(self._opened())

    def _opened(self) -> PostgresStore:
        if self._store is None:
            if not self.reconnect.due():
                raise StoreUnreachable(f"{APPLICATION_NAME}: the store cannot be reached")
            try:
                self._store = PostgresStore(self.url, APPLICATION_NAME)
            except StoreError as exc:
                self.reconnect.failed(exc)
                raise StoreUnreachable(f"{APPLICATION_NAME}: {exc}") from exc
            self.reconnect.opened()
            return self._store
        self._store.ensure_open(self.reconnect)
        return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
