"""The durable conversation store (SQLite) and its schema migrations."""

from flowlang.store.migrations import StoreError
from flowlang.store.sqlite import HistoryPage, SqliteStore

__all__ = ["HistoryPage", "SqliteStore", "StoreError"]
