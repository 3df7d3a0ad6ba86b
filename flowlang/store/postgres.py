"""The durable conversation store on PostgreSQL (psycopg 3): the SQL store (`sql.py`) on a
PostgreSQL connection, for deployments that outgrow one file (docs/scaling.md), and PostgreSQL's
spelling of what differs (`PostgresDialect`).

A transaction is sent in pipeline mode: statements whose result no one reads (the history, the
event log, the conversation saved) go with the next one that is read, not a round trip each.

The store lives in the first schema of the connection's `search_path` (`public` unless the URL
says otherwise, e.g. `?options=-csearch_path%3Dflowlang`).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from flowlang.store.dialect import Dialect, Rows
from flowlang.store.leadership import INBOUND_CHANNEL, LeadershipLost
from flowlang.store.migrations import StoreError, migrate
from flowlang.store.sql import SqlStore, _dumps

_PLACEHOLDER = re.compile(r"%|\?")


def redacted(url: str) -> str:
    """The URL without its password, to show in messages and logs."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


class PostgresDialect(Dialect):
    """PostgreSQL's connection and spelling."""

    name = "postgres"
    greatest = "greatest"
    byte_length = "octet_length"
    lock_rows = " FOR UPDATE"
    page_size = 5000  # a long log streams without holding the connection in between

    def __init__(self, db: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.db = db
        self._queries: dict[str, bytes] = {}
        self._pipeline: psycopg.Pipeline | None = None  # in the outermost transaction

    def _query(self, query: str) -> bytes:
        """The statement with psycopg's placeholders (each `?` a `%s`, each `%` doubled)."""
        sent = self._queries.get(query)
        if sent is None:
            sent = _PLACEHOLDER.sub(lambda m: "%s" if m[0] == "?" else "%%", query).encode()
            self._queries[query] = sent
        return sent

    def execute(self, query: str, args: Sequence[Any] | None = ()) -> Rows:
        if args is None:
            return self.db.execute(query.encode())
        return self.db.execute(self._query(query), args)

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.db.cursor() as cursor:
            cursor.executemany(self._query(query), rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.pipeline() as pipeline, self.db.transaction():
            self._pipeline = pipeline
            try:
                yield
            finally:
                self._pipeline = None

    @contextmanager
    def savepoint(self, depth: int) -> Iterator[None]:
        # Sent down the pipeline like any statement (psycopg's nested transaction() waits for
        # the server at its start and end, several round trips per nested unit). A statement
        # that failed inside is reported at the latest when a unit directly inside the
        # outermost transaction ends (each event of the service's batch): that unit is undone
        # alone; deeper ones are undone with it.
        name = f"nested{depth}".encode()
        self.db.execute(b"SAVEPOINT " + name)
        try:
            yield
            self.db.execute(b"RELEASE " + name)
            if depth <= 2:
                self.sync()
        except BaseException:
            with suppress(psycopg.Error):  # the failure being raised, already reported
                self.sync()
            self.db.execute(b"ROLLBACK TO " + name)
            self.db.execute(b"RELEASE " + name)
            raise

    def sync(self) -> None:
        """Wait for the statements sent so far: a failure among them is raised now."""
        if self._pipeline is not None:
            self._pipeline.sync()

    @contextmanager
    def migrating(self) -> Iterator[None]:
        with self.db.transaction():
            if self.db.execute("SELECT current_schema()").fetchone() == (None,):
                raise StoreError("no schema to create the tables in: check the search_path")
            # One process migrates; the others wait here, then find the work done.
            self.db.execute(
                "SELECT pg_advisory_xact_lock(hashtext('flowlang:' || current_schema()))"
            )
            yield

    def has_table(self, table: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s",
            (table,),
        ).fetchone()
        return row is not None

    def json_text(self, column: str, key: str) -> str:
        return f"{column}::json->>'{key}'"

    def is_read_only(self, error: BaseException) -> bool:
        return isinstance(
            error, psycopg.errors.ReadOnlySqlTransaction | psycopg.errors.InsufficientPrivilege
        )

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        return (psycopg.Error,)

    @property
    def closed(self) -> bool:
        return self.db.closed

    def close(self) -> None:
        self.db.close()


class PostgresStore(SqlStore):
    """A ConversationStore in a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        """Connect and bring the schema up to date.

        Raises StoreError when the server cannot be reached, refuses the login, or holds a
        store from a newer flowlang.
        """
        self.shown = redacted(url)
        try:
            self.db: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
                url, autocommit=True, connect_timeout=10
            )
        except psycopg.Error as exc:
            raise StoreError(f"{self.shown}: cannot connect: {_reason(exc)}") from exc
        super().__init__(PostgresDialect(self.db), url)
        try:
            self.schema_version = migrate(self.dialect)
        except (psycopg.Error, StoreError) as exc:
            self.db.close()
            raise StoreError(
                f"{self.shown}: cannot open as a flowlang store: {_reason(exc)}"
            ) from exc
        # Set by a process sharing the store with others (flowlang/store/leadership.py): the
        # leader's epoch, checked by every transaction; whether accepted events are announced.
        self.fence: int | None = None
        self.announce_inbound = False
        self._fenced: psycopg.Cursor[tuple[Any, ...]] | None = None  # the lead asked about

    def __enter__(self) -> PostgresStore:
        return self

    def _began(self) -> None:
        if self.fence is not None:
            # In share mode: a process taking the lead waits for this transaction to end. The
            # answer is read before the commit (`_ending`), not waited for here: a round trip
            # less per transaction, and a transaction whose epoch is not ours commits nothing.
            self._fenced = self.db.execute("SELECT epoch FROM leader WHERE id = 1 FOR SHARE")

    def _ending(self) -> None:
        fenced, self._fenced = self._fenced, None
        if self.fence is None or fenced is None:
            return
        row = fenced.fetchone()
        if row is None or int(row[0]) != self.fence:
            raise LeadershipLost(
                f"{self.shown}: another process has taken the lead (epoch "
                f"{row[0] if row else '?'}, ours {self.fence}); nothing was committed"
            )

    def _insert_inbound(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> list[bool]:
        """Insert the events not seen before, numbered by the `inbound_seq` sequence (in the
        order given), in one round trip.

        No row is locked from numbering to commit, so the intakes of several processes commit
        side by side; but a number is taken before its transaction commits, so a reader may see
        number 11 committed while 10 is still on its way. Per conversation that cannot happen:
        the events' conversations (channel and sender) are locked first, each with a
        transaction-level advisory lock (in one order, so two batches cannot deadlock), so an
        event of a conversation takes its number only after every earlier one of that
        conversation has committed or failed. A reader in number order (`next_inbound`)
        therefore never takes an event before an earlier one of its conversation; an event
        still on its way belongs to other conversations and is taken when it has committed.
        (The sequence caches no numbers: a number taken later is always larger.)"""
        keys = sorted({conversation_key(channel, payload) for channel, _, payload in events})
        self._run(
            "SELECT pg_advisory_xact_lock(hashtext('flowlang:inbound:' || current_schema()), k) "
            "FROM unnest(?::int[]) AS k",
            (keys,),
        )
        inserted = self._run(
            "INSERT INTO inbound (channel, event_id, payload) "
            "SELECT c, e, p FROM unnest(?::text[], ?::text[], ?::text[]) "
            "WITH ORDINALITY AS t(c, e, p, n) ORDER BY n "
            "ON CONFLICT DO NOTHING RETURNING channel, event_id",
            (
                [channel for channel, _, _ in events],
                [event_id for _, event_id, _ in events],
                [_dumps(payload) for _, _, payload in events],
            ),
        ).fetchall()
        new = {(str(channel), str(event_id)) for channel, event_id in inserted}
        stored = []
        for channel, event_id, _ in events:
            stored.append((channel, event_id) in new)
            new.discard((channel, event_id))  # the same event twice: the second a duplicate
        return stored

    def _stored_inbound(self) -> None:
        if self.announce_inbound:
            self.db.execute(
                "SELECT pg_notify(%s, current_schema())", (INBOUND_CHANNEL,)
            )  # delivered at the commit


def _reason(exc: BaseException) -> str:
    """The first line of a driver error: what the server said, without the context lines."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def conversation_key(channel: str, payload: dict[str, Any]) -> int:
    """The 32-bit key an inbound event's conversation (its channel and sender) is locked by
    while the event is numbered; two conversations may share one (they then wait for each
    other, nothing worse)."""
    sender = str(payload.get("sender_id") or "")
    return zlib.crc32(f"{channel}\x1f{sender}".encode()) - 2**31


def count_unprocessed(url: str, timeout: float = 2.0) -> int:
    """Inbound events stored and not processed, read on a connection of its own; raises
    psycopg.Error."""
    with psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(timeout))) as db:
        row = db.execute("SELECT count(*) FROM inbound WHERE processed = 0").fetchone()
        return int(row[0]) if row else 0
