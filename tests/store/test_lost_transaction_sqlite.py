"""SQLite rolls a whole transaction back on some failures of a statement in it (a full disk,
an I/O error), not just the statement. A nested unit that fails so must not leave the units
after it running outside any transaction (each committed on its own by its RELEASE) while
the units before it are gone: nothing of the transaction commits, and the caller is told."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flowlang.store import SqliteStore


def _fill_the_disk(store: SqliteStore) -> None:
    """The file may grow no further: a write that needs a new page fails as on a full disk."""
    pages = store.dialect.db.execute("PRAGMA page_count").fetchone()[0]
    store.dialect.db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_unit_failing_on_a_full_disk_loses_the_transaction_not_the_units_before_it(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "full.db")
    failures: list[Exception] = []
    with pytest.raises(sqlite3.OperationalError, match="rolled back"), store.transaction():
        with store.transaction():
            store.resolve_customer("whatsapp", "447700900001", None, None)
        _fill_the_disk(store)
        for sender, name in (("447700900002", "x" * 200_000), ("447700900003", None)):
            try:  # as the engine does: a failing event is kept, the next one goes on
                with store.transaction():
                    store.resolve_customer("whatsapp", sender, None, name)
            except sqlite3.Error as exc:
                failures.append(exc)
    assert "full" in str(failures[0])  # the unit's own failure, not a missing savepoint
    assert "rolled back" in str(failures[1])  # the next is refused, not run on its own
    for sender in ("447700900001", "447700900002", "447700900003"):
        assert store.find_customer("whatsapp", sender) is None
    store.close()
