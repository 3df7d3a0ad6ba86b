"""A nested unit whose RELEASE has been sent, then something fails before its end (the read
sent ahead for the next unit, `PostgresStore.read_ahead`): the unit cannot be undone alone any
more (its savepoint is gone), so it must not be reported undone while its work commits, and
the failure must not be pinned on the next unit or lose the units before it."""

from __future__ import annotations

from contextlib import suppress

import psycopg
import pytest

from flowlang.store.postgres import PostgresStore, TurnUndone
from tests.store.helpers import T0


def _customer(store: PostgresStore, sender: str) -> None:
    """A unit that writes: a new customer."""
    store.resolve_customer("whatsapp", sender, None, None)


def _failing_read(store: PostgresStore) -> None:
    """The next unit's read, sent with this unit's end, fails on the server."""

    def ask() -> None:
        store.dialect.execute("SELECT 1 / (random() > 2)::int")

    store.dialect.before_sync = ask


def test_a_read_ahead_failing_after_the_release_undoes_the_whole_transaction(
    postgres_store: PostgresStore,
) -> None:
    with pytest.raises(TurnUndone), postgres_store.transaction():
        with postgres_store.transaction():
            _customer(postgres_store, "447700900001")
        _failing_read(postgres_store)
        with suppress(Exception), postgres_store.transaction():
            _customer(postgres_store, "447700900002")
        with suppress(Exception), postgres_store.transaction():
            _customer(postgres_store, "447700900003")
    assert postgres_store.find_customer("whatsapp", "447700900001") is None


def test_the_unit_after_it_is_not_blamed(postgres_store: PostgresStore) -> None:
    """The unit after the one that ended is told the transaction is undone, not given the
    other unit's failure as its own."""
    failures: list[BaseException] = []
    with suppress(TurnUndone), postgres_store.transaction():
        _failing_read(postgres_store)
        for sender in ("447700900002", "447700900003"):
            try:
                with postgres_store.transaction():
                    _customer(postgres_store, sender)
            except Exception as exc:
                failures.append(exc)
    assert all(isinstance(failure, TurnUndone) for failure in failures), failures
    assert len(failures) == 2


def test_a_failure_raised_after_the_release_commits_nothing(
    postgres_store: PostgresStore,
) -> None:
    """Raised by code of ours after the unit's RELEASE was sent (here the read ahead itself,
    before it sends anything): the unit's work is in the transaction, its caller told it
    failed; the transaction must not commit it, and the unit after it is not blamed."""

    def broken() -> None:
        raise RuntimeError("broken")

    after: list[BaseException] = []
    with pytest.raises(TurnUndone), postgres_store.transaction():
        postgres_store.dialect.before_sync = broken
        with pytest.raises(TurnUndone), postgres_store.transaction():
            _customer(postgres_store, "447700900004")
        try:
            with postgres_store.transaction():
                _customer(postgres_store, "447700900005")
        except Exception as exc:
            after.append(exc)
    assert all(isinstance(failure, TurnUndone) for failure in after), after
    assert postgres_store.find_customer("whatsapp", "447700900004") is None
    assert postgres_store.find_customer("whatsapp", "447700900005") is None


def test_a_units_own_failure_reported_at_its_end_still_undoes_it_alone(
    postgres_store: PostgresStore,
) -> None:
    """The usual case of a failure after the RELEASE was sent: the unit's statement failed,
    so the server skipped the RELEASE; the unit is undone alone and the others commit."""
    with postgres_store.transaction():
        postgres_store.read_ahead("whatsapp", "447700900007", None)
        with postgres_store.transaction():
            _customer(postgres_store, "447700900006")
        with (
            pytest.raises(psycopg.errors.ForeignKeyViolation),
            postgres_store.transaction(),
        ):
            _customer(postgres_store, "447700900007")
            postgres_store.claim_identity("c404", "account_number", "1", "conv1", T0)
        with postgres_store.transaction():
            _customer(postgres_store, "447700900008")
    assert postgres_store.find_customer("whatsapp", "447700900006") is not None
    assert postgres_store.find_customer("whatsapp", "447700900007") is None
    assert postgres_store.find_customer("whatsapp", "447700900008") is not None


def test_an_interrupt_after_the_release_stays_one_and_commits_nothing(
    postgres_store: PostgresStore,
) -> None:
    """A KeyboardInterrupt (or a task cancelled) is not turned into an error a caller would
    carry on past; the unit's work, which it cannot undo alone, does not commit."""

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), postgres_store.transaction():
        postgres_store.dialect.before_sync = interrupted
        with postgres_store.transaction():
            _customer(postgres_store, "447700900009")
    assert postgres_store.find_customer("whatsapp", "447700900009") is None
