"""One numbered list of migrations makes the same tables in SQLite and PostgreSQL: a step
written for one database only (outside the few that must differ) shows here."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlang.store.migrations import MIGRATIONS, Step
from flowlang.store.postgres import PostgresStore
from flowlang.store.sqlite import SqliteStore

ONLY_POSTGRES = {"leader"}  # one process writes a SQLite file: it has no leader to record


def test_both_databases_get_the_same_tables_and_columns(postgres_url: str, tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as lite:
        tables = [
            row[0]
            for row in lite.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] != "sqlite_sequence"
        ]
        sqlite_columns = {
            table: [row[1] for row in lite.db.execute(f"PRAGMA table_info({table})")]
            for table in tables
        }
    with PostgresStore(postgres_url) as pg:
        rows = pg.db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ).fetchall()
    postgres_columns: dict[str, list[str]] = {}
    for table, column in rows:
        postgres_columns.setdefault(table, []).append(column)
    assert set(postgres_columns) - set(sqlite_columns) == ONLY_POSTGRES
    assert {t: c for t, c in postgres_columns.items() if t not in ONLY_POSTGRES} == sqlite_columns


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_type_words_of_a_step_are_spelled_for_each_database(database: str) -> None:
    step = Step(both="CREATE TABLE t (id {serial}, n {bigint}, b {blob})")
    spelled = step.sql(database)
    assert "{" not in spelled
    expected = {"sqlite": "AUTOINCREMENT", "postgres": "IDENTITY"}[database]
    assert expected in spelled and ("BYTEA" in spelled) == (database == "postgres")


def test_every_step_is_spelled_for_both_databases() -> None:
    for number, step in enumerate(MIGRATIONS, start=1):
        for database in ("sqlite", "postgres"):
            text = (Step(both=step) if isinstance(step, str) else step).sql(database)
            assert "{" not in text, f"migration {number} on {database}"
