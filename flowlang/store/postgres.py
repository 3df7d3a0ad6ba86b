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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from typing import Any

import psycopg

from flowlang.errors import FlowError
from flowlang.store.dialect import Dialect, Rows
from flowlang.store.leadership import INBOUND_CHANNEL, LeadershipLost
from flowlang.store.migrations import StoreError, migrate
from flowlang.store.reconnect import Reconnect, StoreUnreachable
from flowlang.store.sql import SqlStore, _dumps

_PLACEHOLDER = re.compile(r"%|\?")
_NOT_ONLY_READING = re.compile(r"\bFOR (UPDATE|SHARE)\b|\bpg_advisory|\bpg_notify\b|\bnextval\b")


# libpq takes any connection parameter in the query, so a password may be given there too
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL without its password (in the user info, or `password=` and `sslpassword=` in
    the query), to show in messages and logs."""
    return _QUERY_PASSWORD.sub(r"\1***", re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url))


class PostgresDialect(Dialect):
    """PostgreSQL's connection and spelling."""

    name = "postgres"
    greatest = "greatest"
    byte_length = "octet_length"
    lock_rows = " FOR UPDATE"
    page_size = 5000  # a long log streams without holding the connection in between
    pipelined = True
    id_block = 64

    def __init__(self, db: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.db = db
        self._queries: dict[str, tuple[bytes, bool]] = {}
        self._pipeline: psycopg.Pipeline | None = None  # in the outermost transaction, begun
        self._unbegun: ExitStack | None = None  # in the outermost transaction, not begun yet
        self._savepoints: list[bytes] = []  # nested units entered, not sent yet
        self._wrote = False  # a write was sent in the innermost nested unit open
        self.on_begin: Callable[[], None] = lambda: None  # first in every transaction begun
        # While set, a nested unit directly inside the outermost one ends without waiting for
        # the server (`deferring`); `_unsure`: one did, and nothing has waited since, so a
        # failure reported now may be its; `_undone`: such a failure was reported, so the
        # transaction must not commit.
        self.deferred = False
        self._unsure = False
        self._undone = False

    def _query(self, query: str) -> tuple[bytes, bool]:
        """The statement with psycopg's placeholders (each `?` a `%s`, each `%` doubled), and
        whether it writes (or locks, or notifies): only such a statement begins a transaction."""
        known = self._queries.get(query)
        if known is None:
            sent = _PLACEHOLDER.sub(lambda m: "%s" if m[0] == "?" else "%%", query).encode()
            known = sent, _writes(query)
            self._queries[query] = known
        return known

    def execute(self, query: str, args: Sequence[Any] | None = ()) -> Rows:
        if args is None:
            self._begin()
            return self.db.execute(query.encode())
        sent, writes = self._query(query)
        if writes:
            self._begin()
        elif self._savepoints and self._pipeline is not None:
            self._enter_savepoints()  # a read inside a begun transaction's unit: after its mark
        return self.db.execute(sent, args)

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        self._begin()
        sent, _ = self._query(query)
        if self._pipeline is not None:
            # Queued one by one: psycopg's executemany opens a pipeline of its own, which in
            # ours waits for the server first.
            for row in rows:
                self.db.execute(sent, row)
            return
        with self.db.cursor() as cursor:
            cursor.executemany(sent, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Begun at its first statement that writes (`_begin`): the reads before it run on
        # their own (at PostgreSQL's read-committed isolation a read inside a transaction that
        # has written nothing sees what it would see outside), and a unit of work that only
        # reads (an agent's screen asked for) costs no BEGIN, no fence, no commit. BEGIN and
        # COMMIT are statements down the pipeline, so the commit is the pipeline's one sync
        # (psycopg's own transaction() in a pipeline waits for the server at its start and
        # several times at its end).
        with ExitStack() as begun:
            self._unbegun = begun
            self._unsure = self._undone = False
            try:
                yield
                if self._undone:  # a failure no unit could be sure was not its own
                    raise TurnUndone("a statement failed in a unit that did not wait for it")
                if self._pipeline is not None:
                    self.db.execute(b"COMMIT")
            except BaseException:
                if self._pipeline is not None:
                    # (a failure not yet read may be reported here: the one being raised, or
                    # one it caused; what is left open is rolled back by `_end`)
                    with suppress(psycopg.Error):
                        self.db.execute(b"ROLLBACK")
                raise
            finally:
                self._unbegun = None
                self._savepoints.clear()
                self._pipeline = None
                self._unsure = self._undone = False

    def _begin(self) -> None:
        """Begin the transaction entered and not begun yet, and the nested units entered in it
        (their savepoints), before its first write."""
        self._wrote = True
        begun = self._unbegun
        if begun is None:
            self._enter_savepoints()
            return
        self._unbegun = None
        begun.callback(self._end)
        self._pipeline = begun.enter_context(self.db.pipeline())
        self.db.execute(b"BEGIN")
        self.on_begin()
        self._enter_savepoints()

    def _enter_savepoints(self) -> None:
        """Send the savepoints of the nested units entered and not marked yet (their first
        statement is about to be sent)."""
        for name in self._savepoints:
            self.db.execute(b"SAVEPOINT " + name)
        self._savepoints.clear()

    def _end(self) -> None:
        """After the pipeline's last sync: a transaction a failure left open is rolled back
        (its COMMIT, sent after the failure, was skipped)."""
        if self.db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with suppress(psycopg.Error):
                self.db.execute(b"ROLLBACK")

    @contextmanager
    def savepoint(self, depth: int) -> Iterator[None]:
        # Sent down the pipeline like any statement (psycopg's nested transaction() waits for
        # the server at its start and end, several round trips per nested unit), and only
        # just before the unit's first statement: a unit that sends nothing (an API call that
        # reads the engine's memory only) sends no savepoint either; one that only reads sends
        # no write to wait for at its end. A statement that failed inside is reported at the
        # latest when a unit directly inside the outermost transaction ends (each event of the
        # service's batch, each API call of the leader's turn): that unit is undone alone;
        # deeper ones are undone with it. In a transaction not begun yet the savepoint waits
        # for the first write (reads run outside the transaction until then).
        name = f"nested{depth}".encode()
        self._savepoints.append(name)
        wrote_before, self._wrote = self._wrote, False
        released = False  # RELEASE sent: whether the server ran it shows at the next wait
        try:
            yield
            if self._savepoints and self._savepoints[-1] == name:
                self._savepoints.pop()  # nothing was sent inside: nothing to send
                return
            self.db.execute(b"RELEASE " + name)
            released = True
            if depth <= 2 and self._wrote:
                if self.deferred:  # a failure shows at the next wait (`deferring`)
                    self._unsure = True
                    return
                ahead, self.before_sync = self.before_sync, None
                if ahead is not None:
                    ahead()
                self.sync()
            # (a unit that only read has fetched its answers, as every read of the store does:
            # a failure among them was raised there)
        except BaseException as exc:
            if self._savepoints and self._savepoints[-1] == name:
                self._savepoints.pop()  # nothing was sent inside: nothing to undo
                raise
            if self._undone:  # the transaction is lost already: nothing to undo alone
                raise TurnUndone(f"the transaction was undone: {exc}") from exc
            unsure = self._unsure  # an earlier unit's end was not waited for
            answered = False  # the server has run all that was sent, without a failure
            try:
                self.sync()
                answered = not isinstance(exc, psycopg.Error)
            except psycopg.Error as failed:
                if unsure:  # perhaps an earlier unit's: which to undo is not known
                    self._undone = True
                    raise TurnUndone(f"a statement failed: {_reason(failed)}") from failed
                # else the failure being raised, already reported
            else:
                if unsure and isinstance(exc, psycopg.Error):
                    # reported by a read of this unit, perhaps about a statement before it
                    self._undone = True
                    raise TurnUndone(f"a statement failed: {_reason(exc)}") from exc
            if released and (answered or not self._rolled_back_to(name)):
                # The unit's work is in the transaction: it cannot be undone alone, nor
                # committed while its caller is told it failed.
                self._undone = True
                if not isinstance(exc, Exception):
                    raise  # (an interrupt stays one; the transaction will not commit)
                raise TurnUndone(f"a unit failed after it had ended: {_reason(exc)}") from exc
            if not released:
                self.db.execute(b"ROLLBACK TO " + name)
            self.db.execute(b"RELEASE " + name)
            raise
        finally:
            self._wrote = self._wrote or wrote_before

    def _rolled_back_to(self, name: bytes) -> bool:
        """After a unit's RELEASE was sent and a statement failed: undo the unit if the server
        skipped its RELEASE (the failure was the unit's), waiting to know. False: the RELEASE
        ran (the failure came after it, e.g. the read sent ahead for the next unit)."""
        self.db.execute(b"ROLLBACK TO " + name)
        try:
            self.sync()
        except psycopg.errors.InvalidSavepointSpecification:
            return False
        return True

    @contextmanager
    def deferring(self) -> Iterator[None]:
        """Inside, the nested units directly inside the outermost one (the events of the
        leader's turn) end without a round trip of their own: their statements are answered
        with the next read, `confirm` or the commit. A statement that fails is then reported
        in a later unit or at the end: when the unit it is reported in might not be the one
        that failed, nothing is undone alone: the whole transaction is, with `TurnUndone`
        raised (it never commits), for its caller to run again without deferring, where the
        failing unit is undone alone."""
        self.deferred = True
        try:
            yield
        finally:
            self.deferred = False

    def confirm(self) -> None:
        """Wait for what units ended without waiting have sent: a failure among them raises
        `TurnUndone` (the transaction will not commit)."""
        if self._unsure and not self._undone:
            try:
                self.sync()
            except psycopg.Error as failed:
                self._undone = True
                raise TurnUndone(f"a statement failed: {_reason(failed)}") from failed

    def sync(self) -> None:
        """Wait for the statements sent so far: a failure among them is raised now."""
        if self._pipeline is not None:
            self._pipeline.sync()
            self._unsure = False

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

    def replace(self, db: psycopg.Connection[tuple[Any, ...]]) -> None:
        """Go on on `db`, a new connection in place of one that was lost (nothing of a
        transaction that was open on the old one is left)."""
        self.db = db
        self._pipeline = None
        self._unbegun = None
        self._savepoints.clear()
        self._wrote = False
        self._unsure = self._undone = False


def connect(url: str, application_name: str) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection of the service's, named for `pg_stat_activity` (docs/service.md)."""
    return psycopg.connect(
        url, autocommit=True, connect_timeout=10, application_name=application_name
    )


class TurnUndone(FlowError, RuntimeError):
    """A statement failed while units of work ended without waiting for the server
    (`PostgresDialect.deferring`), so which unit failed is not known: the whole transaction is
    rolled back, to be run again unit by unit."""


class PostgresStore(SqlStore):
    """A ConversationStore in a PostgreSQL database."""

    def __init__(self, url: str, application_name: str = "flowlang") -> None:
        """Connect and bring the schema up to date; `application_name` names the connection
        (`pg_stat_activity`).

        Raises StoreError when the server cannot be reached, refuses the login, or holds a
        store from a newer flowlang.
        """
        self.shown = redacted(url)
        self.application_name = application_name
        try:
            self.db: psycopg.Connection[tuple[Any, ...]] = connect(url, application_name)
        except psycopg.Error as exc:
            raise StoreError(f"{self.shown}: cannot connect: {_reason(exc)}") from exc
        dialect = PostgresDialect(self.db)
        super().__init__(dialect, url)
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
        dialect.on_begin = self._fence_begun

    def __enter__(self) -> PostgresStore:
        return self

    def deferring(self) -> AbstractContextManager[None]:
        """The units of work directly inside this transaction end without a round trip of
        their own (`PostgresDialect.deferring`): the events of the leader's turn."""
        return self._postgres.deferring()

    def confirm(self) -> None:
        """Wait for what the deferred units sent; raises `TurnUndone` when one failed."""
        self._postgres.confirm()

    @property
    def _postgres(self) -> PostgresDialect:
        dialect = self.dialect
        assert isinstance(dialect, PostgresDialect)
        return dialect

    def reopen(self) -> None:
        """A new connection in place of the one the server dropped (a restart, a failover,
        `pg_terminate_backend`): what was open on the old one is gone with it; the schema is
        not migrated again. Raises StoreError when the server cannot be reached."""
        with suppress(psycopg.Error):
            self.db.close()
        try:
            db = connect(self.path, self.application_name)
        except psycopg.Error as exc:
            raise StoreError(f"{self.shown}: cannot connect: {_reason(exc)}") from exc
        self.db = db
        self._fenced = None
        self._forget()  # a read sent ahead on the old one included
        dialect = self.dialect
        assert isinstance(dialect, PostgresDialect)
        dialect.replace(db)

    def ensure_open(self, reconnect: Reconnect) -> None:
        """Open the connection again if the server dropped it, when `reconnect` says an
        attempt is due; raises StoreUnreachable (nothing read or written) while it cannot."""
        if not self.db.closed:
            return
        reconnect.lost("found closed")
        wait = reconnect.wait()
        if wait > 0:
            raise StoreUnreachable(
                f"{self.application_name}: the store cannot be reached (next attempt in "
                f"{wait:.1f} s)"
            )
        try:
            self.reopen()
        except StoreError as exc:
            reconnect.failed(exc)
            raise StoreUnreachable(f"{self.application_name}: {exc}") from exc
        reconnect.opened()

    def _began(self) -> None:
        self._fenced = None  # asked again when this transaction begins

    def _fence_begun(self) -> None:
        """First in every transaction begun (at its first write: `PostgresDialect`)."""
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
        return [seq is not None for seq in self.number_inbound(events)]

    def number_inbound(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> list[int | None]:
        """Insert the events not seen before, numbered by the `inbound_seq` sequence (in the
        order given), in one round trip; the number each took (None: seen before, in the store
        or earlier among `events`).

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
        return self.numbering_inbound(events, announce=False)()

    def numbering_inbound(
        self, events: Sequence[tuple[str, str, dict[str, Any]]], announce: bool
    ) -> Callable[[], list[int | None]]:
        """`number_inbound` without waiting for its answer: the statements are sent and the
        numbers read by calling what it returns, once the transaction they were sent in has
        ended (in a pipelined transaction they are answered with its commit, so they cost no
        round trip of their own). When `announce`, the same statement notifies the other
        processes (`NOTIFY`, delivered at the commit) if an event was new."""
        keys = sorted({conversation_key(channel, payload) for channel, _, payload in events})
        self._run(
            "SELECT pg_advisory_xact_lock(hashtext('flowlang:inbound:' || current_schema()), k) "
            "FROM unnest(?::int[]) AS k",
            (keys,),
        )
        # The notification's subquery runs once, when the first new row is read: none, none.
        inserting = self._run(
            "WITH new AS (INSERT INTO inbound (channel, event_id, payload) "
            "SELECT c, e, p FROM unnest(?::text[], ?::text[], ?::text[]) "
            "WITH ORDINALITY AS t(c, e, p, n) ORDER BY n "
            "ON CONFLICT DO NOTHING RETURNING channel, event_id, seq), "
            "told AS (SELECT pg_notify(?, current_schema()) "
            "FROM (SELECT 1 FROM new LIMIT 1) AS one WHERE ?) "
            "SELECT channel, event_id, seq, (SELECT count(*) FROM told) FROM new",
            (
                [channel for channel, _, _ in events],
                [event_id for _, event_id, _ in events],
                [_dumps(payload) for _, _, payload in events],
                INBOUND_CHANNEL,
                announce,
            ),
        )

        def numbers() -> list[int | None]:
            new = {(str(c), str(e)): int(seq) for c, e, seq, _ in inserting.fetchall()}
            # the same event twice: the second a duplicate
            return [new.pop((channel, event_id), None) for channel, event_id, _ in events]

        return numbers

    def accept_numbered(
        self, events: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> Callable[[], list[int | None]]:
        """`accept_inbounds`, with the number each event took in the log (None: seen before),
        read by calling what it returns once the transaction it was called in has ended (its
        own when called alone): the commit answers it. Notifies the other processes if
        `announce_inbound` and an event was new."""
        if not events:
            return lambda: []
        with self._atomic():
            return self.numbering_inbound(events, self.announce_inbound)

    def _stored_inbound(self) -> None:
        if self.announce_inbound:  # delivered at the commit
            self._run("SELECT pg_notify(?, current_schema())", (INBOUND_CHANNEL,))


def _writes(query: str) -> bool:
    """Whether a statement may change something (a SELECT that locks rows, takes an advisory
    lock, notifies or takes a number included), so needs the transaction begun."""
    head = query.lstrip()[:6].upper()
    return head != "SELECT" or _NOT_ONLY_READING.search(query) is not None


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
    with psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=max(1, round(timeout)),
        application_name="flowlang-ready",
    ) as db:
        row = db.execute("SELECT count(*) FROM inbound WHERE processed = 0").fetchone()
        return int(row[0]) if row else 0
