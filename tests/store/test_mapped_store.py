"""The service's engine reads its SQLite store through a memory map (docs/store.md,
"Performance"); every other opening (reports, the `store` commands) reads it by read calls.
Mapped or not, the store answers the same, and each connection sees the other's writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.service.app import create_app
from flowlang.store import SqliteStore, open_store
from flowlang.store.sqlite import MAPPED_BYTES
from tests.service.helpers import environment, settings_for


def _mapped_bytes(store: object) -> int:
    assert isinstance(store, SqliteStore)
    (size,) = store.db.execute("PRAGMA mmap_size").fetchone()
    return int(size)


def test_only_a_store_opened_mapped_reads_through_a_memory_map(tmp_path: Path) -> None:
    path = tmp_path / "cc.sqlite"
    with SqliteStore(path) as plain, open_store(path) as opened:
        assert _mapped_bytes(plain) == 0 and _mapped_bytes(opened) == 0
    with SqliteStore(path, mapped=True) as mapped, open_store(path, mapped=True) as opened:
        assert 0 < _mapped_bytes(mapped) <= MAPPED_BYTES
        assert _mapped_bytes(opened) == _mapped_bytes(mapped)


def test_a_postgres_store_opened_mapped_is_an_ordinary_one(durable_location: str | Path) -> None:
    with open_store(durable_location, mapped=True) as store:
        first = store.resolve_customer("whatsapp", "447700900123", "447700900123", "Ann")
        again = store.resolve_customer("whatsapp", "447700900123", "447700900123", None)
        assert first.new and not again.new and again.id == first.id


def test_the_services_engine_store_is_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(settings_for(tmp_path))) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        assert _mapped_bytes(service.store) > 0
        assert _mapped_bytes(service.worker.engine.ports.store) > 0


# (which connection, WhatsApp number, a phone given too?, a name)
STEPS = st.lists(
    st.tuples(
        st.booleans(),
        st.integers(0, 40),
        st.booleans(),
        st.sampled_from([None, "Ann", "Bo"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(STEPS)
def test_a_mapped_and_a_plain_connection_answer_alike_and_see_each_others_writes(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[bool, int, bool, str | None]]
) -> None:
    """Two connections to one file, one mapped (the engine's), one not (a tool's), looking
    customers up and creating them in turn; beside them, a plain store alone given the same
    steps: each answer is the plain store's (the same customer, new or returning, name and
    phone), whichever connection gave it."""
    folder = tmp_path_factory.mktemp("mapped")
    with (
        SqliteStore(folder / "shared.sqlite", mapped=True) as mapped,
        SqliteStore(folder / "shared.sqlite") as plain,
        SqliteStore(folder / "alone.sqlite") as alone,
    ):
        for use_mapped, number, with_phone, name in steps:
            wa_id = f"4477009{number:05d}"
            phone = wa_id if with_phone else None
            expected = alone.resolve_customer("whatsapp", wa_id, phone, name)
            got = (mapped if use_mapped else plain).resolve_customer("whatsapp", wa_id, phone, name)
            assert (got.id, got.new, got.name, got.phone) == (
                expected.id,
                expected.new,
                expected.name,
                expected.phone,
            )
        for number in range(41):
            wa_id = f"4477009{number:05d}"
            found = mapped.find_customer("whatsapp", wa_id)
            assert found == plain.find_customer("whatsapp", wa_id)
