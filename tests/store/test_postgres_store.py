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
from tests.round_trips import counting
from tests.store.helpers import T0

WINDOW = timedelta(hours=24)


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


def test_a_unit_of_work_that_only_reads_begins_no_transaction_and_commits_nothing(
    postgres_store: PostgresStore,
) -> None:
    """An agent's screen asked for reads the store and writes nothing: each read is one round
    trip, and no BEGIN, fence or commit (nested units included) waits for the server."""
    postgres_store.add_user("alice", "agent", "hash-a", T0)
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        with postgres_store.transaction():
            assert postgres_store.user_by_token_hash("hash-a") is not None
            assert postgres_store.get_conversation("conv404") is None
        assert postgres_store.db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert len(waits) == 2


def test_a_unit_that_reads_then_writes_begins_at_its_write_and_is_atomic(
    postgres_store: PostgresStore,
) -> None:
    failed = pytest.raises(RuntimeError)
    with counting(postgres_store.db) as waits, failed, postgres_store.transaction():
        assert postgres_store.dead_letters() == []
        with postgres_store.transaction():  # begun here, with its savepoint
            postgres_store.dead_letter("test", {"n": 1}, "written", T0)
        postgres_store.dead_letter("test", {"n": 2}, "written", T0)
        raise RuntimeError("the unit fails after its writes")
    assert postgres_store.dead_letters() == []  # neither write was kept
    # the read, the nested unit's end (a failure inside would show there), the rollback
    assert len(waits) == 3


def test_writing_several_rows_in_a_transaction_queues_them_without_a_wait(
    postgres_store: PostgresStore,
) -> None:
    """A new customer's identities (two rows) go down the pipeline with the rest."""
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        customer = postgres_store.resolve_customer(
            "whatsapp", "447700900123", "+447700900123", None
        )
    assert customer.new and len(postgres_store.identities_of(customer.id)) == 2
    # its identities' owners read, its number taken, the commit
    assert len(waits) == 3


def test_a_nested_unit_in_a_begun_transaction_that_only_reads_sends_no_savepoint_or_sync(
    postgres_store: PostgresStore,
) -> None:
    """The leader's turn takes the API's calls waiting into its transaction: a call that only
    reads the engine's memory costs nothing there, one that reads the store its read alone."""
    postgres_store.add_user("alice", "agent", "hash-a", T0)
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        postgres_store.dead_letter("test", {"n": 1}, "the turn's write", T0)  # begun
        with postgres_store.transaction():
            pass  # a call reading the engine's memory
        with postgres_store.transaction():
            assert postgres_store.user_by_token_hash("hash-a") is not None
        sent = len(waits)
    assert sent == 1  # the read; no savepoint's end waited for
    assert len(waits) == 2  # and the commit


def test_a_read_that_fails_in_a_nested_unit_of_a_begun_transaction_undoes_that_unit_alone(
    postgres_store: PostgresStore,
) -> None:
    with postgres_store.transaction():
        postgres_store.dead_letter("test", {"n": 1}, "kept", T0)
        with pytest.raises(psycopg.errors.DivisionByZero), postgres_store.transaction():
            read = "SELECT 1 / (SELECT count(*) - count(*) FROM users)"
            postgres_store.dialect.execute(read).fetchall()
        with pytest.raises(psycopg.errors.UndefinedTable), postgres_store.transaction():
            postgres_store.dead_letter("test", {"n": 2}, "undone", T0)
            postgres_store.dialect.execute("SELECT * FROM no_such_table").fetchall()
        postgres_store.dead_letter("test", {"n": 3}, "kept too", T0)
    assert [letter["reason"] for letter in postgres_store.dead_letters()] == ["kept", "kept too"]


def test_new_customers_and_conversations_take_their_numbers_a_block_at_a_time(
    postgres_store: PostgresStore,
) -> None:
    """A new customer's and a new conversation's numbers come from blocks reserved in one round
    trip each, not one round trip a number."""
    with counting(postgres_store.db) as waits, postgres_store.transaction():
        made = []
        for n in range(5):
            customer = postgres_store.resolve_customer("web", f"visitor-{n}", None, None)
            conv = postgres_store.conversation_for(customer.id, "web", "site", T0, WINDOW)
            postgres_store.save_conversation(conv)
            made.append((customer.id, conv.id))
    assert made == [(f"c{n}", f"conv{n}") for n in range(1, 6)]
    # each customer's owners read, one reservation per counter, the commit
    assert len(waits) == 5 + 2 + 1


def test_numbers_a_failed_unit_reserved_are_never_handed_out_twice(postgres_url: str) -> None:
    """A reservation undone with its unit of work is dropped: another process may reserve
    the same numbers after the rollback, and each number is still used once."""
    with PostgresStore(postgres_url) as first, PostgresStore(postgres_url) as second:
        with pytest.raises(RuntimeError), first.transaction():
            first.resolve_customer("web", "visitor-undone", None, None)
            raise RuntimeError("the unit fails after taking a number")
        taken = [second.resolve_customer("web", f"visitor-{n}", None, None).id for n in (1, 2)]
        with first.transaction():
            with pytest.raises(RuntimeError), first.transaction():  # a nested unit fails
                first.resolve_customer("web", "visitor-undone-too", None, None)
                raise RuntimeError("the nested unit fails after taking a number")
            taken.append(first.resolve_customer("web", "visitor-3", None, None).id)
        taken.append(first.resolve_customer("web", "visitor-4", None, None).id)
        taken.append(second.resolve_customer("web", "visitor-5", None, None).id)
    assert taken[:2] == ["c1", "c2"]  # the first process's rolled-back block went back
    assert len(set(taken)) == len(taken)
    with PostgresStore(postgres_url) as store:
        found = [store.find_customer("web", f"visitor-{n}") for n in range(1, 6)]
        assert sorted(c.id for c in found if c is not None) == sorted(taken)
