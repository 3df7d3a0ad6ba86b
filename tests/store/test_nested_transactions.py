"""A nested unit of work that fails is undone alone; the outer one goes on and commits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlang.store import database_errors, open_store

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_failed_nested_unit_is_undone_and_the_outer_one_commits(
    durable_location: str | Path,
) -> None:
    with open_store(durable_location) as store:
        with store.transaction():
            store.accept_inbound("web", "m1", {"n": 1})
            with pytest.raises(RuntimeError), store.transaction():
                store.accept_inbound("web", "m2", {"n": 2})
                store.dead_letter("test", {"n": 2}, "half done", AT)
                raise RuntimeError("the event failed half way")
            store.accept_inbound("web", "m3", {"n": 3})
        assert [p["n"] for p in store.pending_inbound()] == [1, 3]
        assert store.dead_letters() == []
        with pytest.raises(RuntimeError), store.transaction():  # the outer one still all or nothing
            store.accept_inbound("web", "m4", {"n": 4})
            raise RuntimeError("the whole unit failed")
    with open_store(durable_location) as store:
        assert [p["n"] for p in store.pending_inbound()] == [1, 3]


def test_a_statement_that_fails_in_a_nested_unit_undoes_that_unit_alone(
    durable_location: str | Path,
) -> None:
    """On PostgreSQL statements go ahead without waiting for the server (pipeline mode): the
    failure of one is still raised inside its unit, which alone is undone."""
    with open_store(durable_location) as store:
        with store.transaction():
            store.accept_inbound("web", "m1", {"n": 1})
            with pytest.raises(database_errors()), store.transaction():
                store.dead_letter("test", {"n": 2}, "half done", AT)
                store.claim_identity("c404", "account_number", "1", "conv1", AT)  # no c404
            store.accept_inbound("web", "m3", {"n": 3})
        assert [p["n"] for p in store.pending_inbound()] == [1, 3]
        assert store.dead_letters() == [] and store.claims_of("c404") == []
