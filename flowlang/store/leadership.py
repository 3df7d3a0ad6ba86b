"""Which of the service processes sharing a PostgreSQL store runs the engine (docs/scaling.md).

Every process takes webhooks into the shared inbound log; one, the leader, runs the engine (flow
processing in arrival order, the ACD, timers, the policy's counters, deliveries). The lead is a
session-level `pg_try_advisory_lock` held on a connection of its own: the server releases it
when that connection ends, a process killed with `kill -9` included, and another process takes
it. Taking the lead bumps the `leader` row's epoch (and records the leader's URL, where the
others forward the API); every transaction of the leader's store checks that epoch under a
share lock (`PostgresStore.fence`), so a process that lost the lead cannot commit one more
decision: the new leader's bump waits for its transactions in flight, and those after fail.

The lock's connection and the listener's are opened again after the server dropped them
(`store/reconnect.py`): a lost lock connection gives up the lead (the lock went with it), and is
opened again at the next bid; the listener listens again and wakes the engine once, for what was
announced while it did not listen.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import psycopg

from flowlang.errors import FlowError
from flowlang.store.reconnect import Reconnect, StoreUnreachable

INBOUND_CHANNEL = "flowlang_inbound"  # NOTIFY channel: an event was made durable (payload: schema)
_KEY = "SELECT hashtext('flowlang:leader:' || current_schema())"
LEAD_NAME = "flowlang-lead"  # the connections' application names (pg_stat_activity)
LISTEN_NAME = "flowlang-listen"
FORWARD_NAME = "flowlang-forward"  # a front's, which only reads who leads (service/front_route.py)


def _connect(url: str, application_name: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        url, autocommit=True, connect_timeout=10, application_name=application_name
    )


class LeadershipLost(FlowError, RuntimeError):
    """Another process has taken the lead: this one's transaction was not committed."""


class Leadership:
    """One process's bid for the lead (`try_lead`), on a connection of its own (opened again
    after the server dropped it: `Reconnect`)."""

    def __init__(self, url: str, advertise_url: str, name: str = LEAD_NAME) -> None:
        """Raises psycopg.Error when the server cannot be reached. `name`: the connection's
        application name."""
        self.url = url
        self.advertise_url = advertise_url
        self.name = name
        self.db: psycopg.Connection[tuple[Any, ...]] = _connect(url, name)
        row = self.db.execute("SELECT current_schema(), (" + _KEY + ")").fetchone()
        assert row is not None
        self.schema, self.key = str(row[0]), int(row[1])
        self.epoch: int | None = None
        self.reconnect = Reconnect(name)
        self._closed = False
        self._opening = threading.Lock()

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The lock's connection, opened again if the server dropped it (the lead went with
        it); raises StoreUnreachable while it cannot be, until the next attempt is due."""
        with self._opening:
            if not self.db.closed:
                return self.db
            self.epoch = None  # the server released the lock with the connection
            if self._closed:
                raise StoreUnreachable(f"{self.name}: closed")
            self.reconnect.lost("found closed")
            wait = self.reconnect.wait()
            if wait > 0:
                raise StoreUnreachable(f"{self.name}: the store cannot be reached")
            try:
                self.db = _connect(self.url, self.name)
            except psycopg.Error as exc:
                self.reconnect.failed(exc)
                raise StoreUnreachable(f"{self.name}: {exc}") from exc
            self.reconnect.opened()
            return self.db

    def try_lead(self) -> int | None:
        """Take the lead if no process holds it: the new epoch, else None (also while the
        store cannot be reached)."""
        if self.epoch is not None:
            return self.epoch
        if self._closed:  # the process is stopping
            return None
        try:
            db = self._connection()
            row = db.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except StoreUnreachable:
            return None
        except psycopg.OperationalError as exc:  # opened again at the next bid
            self.reconnect.lost(exc)
            return None
        if not row or not row[0]:
            return None
        # Waits for the transactions in flight of a leader that lost the lock (they hold the
        # row in share mode); those it starts afterwards see the new epoch and fail.
        bumped = db.execute(
            "UPDATE leader SET epoch = epoch + 1, url = %s, since = %s WHERE id = 1 "
            "RETURNING epoch",
            (self.advertise_url, datetime.now(UTC).isoformat()),
        ).fetchone()
        assert bumped is not None
        self.epoch = int(bumped[0])
        return self.epoch

    def resign(self) -> None:
        """Give up the lead (if the connection holding it still answers); bid again later."""
        self.epoch = None
        with suppress(psycopg.Error):
            self.db.execute("SELECT pg_advisory_unlock_all()")

    def forwarding_key(self) -> bytes:
        """The mark the service's processes put on a request one of them forwarded to another
        (`service/forward.py`), which a client cannot know: kept in the store, made by the
        first process that asks."""
        db = self._connection()
        db.execute(
            "INSERT INTO counters (name, value) VALUES ('forwarding_key', %s) "
            "ON CONFLICT (name) DO NOTHING",
            (secrets.randbits(63),),
        )
        row = db.execute("SELECT value FROM counters WHERE name = 'forwarding_key'").fetchone()
        assert row is not None
        return str(row[0]).encode()

    def leader_url(self) -> str | None:
        """Where the leader takes API calls (None: no process holds the lead). Raises
        StoreUnreachable or psycopg.Error when the store cannot say."""
        row = (
            self._connection()
            .execute(
                "SELECT l.url FROM leader l WHERE l.id = 1 AND EXISTS (SELECT 1 FROM pg_locks p "
                "WHERE p.locktype = 'advisory' AND p.granted AND p.objsubid = 1 "
                "AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND p.classid::bigint = ((%(k)s::bigint >> 32) & 4294967295) "
                "AND p.objid::bigint = (%(k)s::bigint & 4294967295))",
                {"k": self.key},
            )
            .fetchone()
        )
        return str(row[0]) if row and row[0] else None

    def holds(self) -> bool:
        """Whether the lead is still ours (the connection that holds it answers)."""
        if self.epoch is None:
            return False
        try:
            self.db.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        with self._opening:
            self._closed = True
            self.db.close()


def _closed(db: psycopg.Connection[tuple[Any, ...]]) -> bool:
    """Whether the connection is closed (found lost by the statement that just failed)."""
    return db.closed


class InboundListener:
    """Calls `wake` when another process makes an inbound event durable (LISTEN/NOTIFY), on a
    thread and a connection of its own, opened by the thread and again after the server dropped
    it (`Reconnect`): once it listens again it calls `wake` once, for what was announced while
    it did not (the engine then reads the log). `stop` ends both."""

    def __init__(self, url: str, schema: str, wake: Callable[[], None]) -> None:
        self.url = url
        self.db: psycopg.Connection[tuple[Any, ...]] | None = None
        self.schema = schema
        self.wake = wake
        self.reconnect = Reconnect(LISTEN_NAME)
        self.listening = threading.Event()  # (tests) set while the connection listens
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowlang-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            db = self.db
            if db is None or _closed(db):
                self._listen()
                continue
            try:
                for note in db.notifies(timeout=0.5):
                    if note.payload == self.schema:
                        self.wake()
            except psycopg.Error as exc:
                if self._stopping.is_set():
                    return
                if _closed(db):
                    self.listening.clear()
                    self.reconnect.lost(exc)
                else:
                    self._stopping.wait(0.5)  # the poll between turns still finds the events

    def _listen(self) -> None:
        """Connect and LISTEN when an attempt is due (else wait for it), then wake the engine
        for what may have been announced in between."""
        wait = self.reconnect.wait()
        if wait > 0:
            self._stopping.wait(wait)
            return
        try:
            db = _connect(self.url, LISTEN_NAME)
            db.execute("LISTEN " + INBOUND_CHANNEL)
        except psycopg.Error as exc:
            self.reconnect.failed(exc)
            return
        self.db = db
        if self._stopping.is_set():  # stop() came while it connected: it closes nothing of it
            db.close()
            return
        self.reconnect.opened()
        self.listening.set()
        self.wake()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(2.0)
        if self.db is not None:
            self.db.close()
