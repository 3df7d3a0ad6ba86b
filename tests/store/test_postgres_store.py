"""What only the PostgreSQL store has to show: its migrations, its pipelined transactions, its
paged event log (the rest is the contract every store passes)."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from flowlang.store import StoreError, open_store
from flowlang.store.migrations import MIGRATIONS
from flowlang.store.postgres import PostgresStore
from tests.store.helpers import T0


def test_a_failing_statement_undoes_its_whole_unit_of_work_and_the_store_goes_on(
    postgres_store: PostgresStore,
) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation), postgres_store.transaction():
        postgres_store.dead_letter("inbound:web", {"n": 1}, "first", T0)
        postgres_store.claim_identity("c404", "account_number", "1", "conv1", T0)  # no c404
        postgres_store.dead_letter("inbound:web", {"n": 2}, "after", T0)
    assert postgres_store.dead_letters() == []
    with postgres_store.transaction():
        postgres_store.dead_letter("inbound:web", {"n": 3}, "next", T0)
    assert [letter["payload"] for letter in postgres_store.dead_letters()] == [{"n": 3}]


def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    opened: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            with PostgresStore(postgres_url) as store:
                opened.append(store.schema_version)
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and opened == [len(MIGRATIONS)] * 4
    with PostgresStore(postgres_url) as store:
        rows = store.db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))


def test_a_store_from_a_newer_flowlang_is_refused_naming_it_without_the_password(
    postgres_url: str,
) -> None:
    with PostgresStore(postgres_url) as store:
        store.db.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS) + 1,))
    with_password = postgres_url.replace("flowlang@", "flowlang:hunter2@")
    with pytest.raises(StoreError) as refused:
        open_store(with_password)
    message = str(refused.value)
    assert "newer than this flowlang" in message and "upgrade flowlang" in message
    assert "flowlang:***@" in message and "hunter2" not in message


def test_the_event_log_reads_page_by_page_in_time_order(
    postgres_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_store.dialect, "page_size", 3)
    with postgres_store.transaction():
        for n in range(8):  # two events at each moment, written out of time order
            at = T0 + timedelta(minutes=(7 - n) // 2)
            postgres_store.append_event("note", at, f"conv{n}", {"n": n})
    read = [(e["at"], e["n"]) for e in postgres_store.iter_events()]
    assert len(read) == 8 and read == sorted(read, key=lambda pair: pair[0])
    assert [n for _at, n in read] == [6, 7, 4, 5, 2, 3, 0, 1]
    later = list(postgres_store.iter_events(start=T0 + timedelta(minutes=2)))
    assert [e["n"] for e in later] == [2, 3, 0, 1]
