"""The durable conversation store: takes the engine's conversations, messages and events, gives
them back across restarts from a SQLite file (`SqliteStore`), with its schema migrations."""

from flowlang.store.migrations import StoreError
from flowlang.store.sqlite import HistoryPage, SqliteStore

__all__ = ["HistoryPage", "SqliteStore", "StoreError"]
