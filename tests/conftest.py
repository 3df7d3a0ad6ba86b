"""Shared pytest options."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from flowlang.store.postgres import PostgresStore
from tests.fake_vendor import FakeVendor
from tests.postgres_server import NoPostgres, fresh_schema, postgres_server
from tests.requirements import missing, under_ci

# No property test is timed: an example's duration, or how slowly its data is drawn, depends on
# the machine's load, and speed is measured in benchmarks/, never in tests. CI runs the property
# tests on a fixed seed, so a landing never hangs on a lucky draw; local runs keep exploring new
# inputs (and save what they find in .hypothesis/).
settings.register_profile("local", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("local"), derandomize=True, print_blob=True)
settings.load_profile("ci" if under_ci() else "local")

# The browser tests need Playwright (a dev dependency): a virtualenv installed before it was
# added skips them until `pip install -e '.[dev]'`; under CI=true they always run.
collect_ignore: list[str] = []
if importlib.util.find_spec("playwright") is None and not under_ci():
    collect_ignore.append("browser")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the expected output of golden tests instead of comparing (review the diff)",
    )


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    """A fake vendor API on a free loopback port (tests/fake_vendor.py): records every request,
    answers as scripted."""
    with FakeVendor() as vendor:
        yield vendor


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server of the tests' own (tests/postgres_server.py), for the whole run.
    Without one the tests that need it skip; under CI=true they fail instead."""
    try:
        with postgres_server() as url:
            yield url
    except NoPostgres as exc:
        missing(f"no PostgreSQL server: {exc}")


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """The URL of a clean store of its own on the tests' PostgreSQL server."""
    return fresh_schema(postgres_server_url)


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[PostgresStore]:
    """A clean PostgresStore of its own on the tests' server."""
    with PostgresStore(postgres_url) as store:
        yield store


@pytest.fixture(params=["sqlite", "postgres"])
def durable_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a durable store lives, for `flowlang.store.open_store`: a SQLite file, or a
    clean store on the tests' PostgreSQL server (each test its own)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return tmp_path / "store.db"
