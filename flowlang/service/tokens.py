"""API tokens checked off the engine's thread, on a PostgreSQL store (docs/scaling.md).

Every request of the API and the pages is signed in by its token (`access.py`). On a SQLite
store that read is a call on the engine's worker, as everything that touches the store is; on a
PostgreSQL store `TokenReader` reads the user on a connection of its own, in a thread of the
event loop's pool, so a request's sign-in does not queue behind the engine's turn, nor costs
its thread a round trip. It reads the users table as it is at that moment: a token revoked in
any process (or by `flowlang users revoke`) is refused at the next request.
"""

from __future__ import annotations

import threading

import psycopg

from flowlang.runtime.ports import User
from flowlang.runtime.users import authenticate
from flowlang.store.postgres import PostgresStore


class TokenReader:
    """The user of a token (`user_of`), read on a connection of its own, opened at first use
    and again after the server dropped it; thread-safe (one read at a time)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: PostgresStore | None = None
        self._lock = threading.Lock()

    def user_of(self, token: str) -> User | None:
        """The user `token` belongs to (None: unknown or revoked). A connection the server
        dropped (a restart, an idle timeout) is opened again and the read tried once more;
        raises the store's error when that fails too."""
        with self._lock:
            try:
                return authenticate(self._opened(), token)
            except psycopg.OperationalError:
                self._drop()
            try:
                return authenticate(self._opened(), token)
            except psycopg.Error:
                self._drop()
                raise

    def _opened(self) -> PostgresStore:
        if self._store is None or self._store.dialect.closed:
            self._store = PostgresStore(self.url)
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def close(self) -> None:
        with self._lock:
            self._drop()
