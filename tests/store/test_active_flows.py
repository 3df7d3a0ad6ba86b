"""Each flow's active version in the store (SQLite and PostgreSQL): published over the API or
taken from its file at a start, with the version the file had then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowlang.store import open_store

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    location = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    db = open_store(location or tmp_path / "s.db")
    yield db
    db.close()


def test_a_publication_keeps_the_file_version_of_the_last_start(store: Any) -> None:
    assert store.active_flows() == {}
    with store.transaction():
        store.set_active_flow("Chat", "v1", "file:chat.flow", T0, "v1")
    with store.transaction():
        store.set_active_flow("Chat", "v2", "ada", T0 + timedelta(minutes=5))
    (chat,) = store.active_flows().values()
    assert (chat.flow, chat.version, chat.by, chat.file_version) == ("Chat", "v2", "ada", "v1")
    assert chat.at == T0 + timedelta(minutes=5)
    with store.transaction():
        store.set_active_flow("Chat", "v3", "file:chat.flow", T0 + timedelta(hours=1), "v3")
        store.set_active_flow("Social", "s1", "file:social.flow", T0, "s1")
    flows = store.active_flows()
    assert {name: (f.version, f.file_version) for name, f in flows.items()} == {
        "Chat": ("v3", "v3"),
        "Social": ("s1", "s1"),
    }
