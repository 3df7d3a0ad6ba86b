"""Which of the service processes sharing a PostgreSQL store runs the engine (docs/scaling.md).

Every process takes webhooks into the shared inbound log; one, the leader, runs the engine (flow
processing in arrival order, the ACD, timers, the policy's counters, deliveries). The lead is a
session-level `pg_try_advisory_lock` held on a connection of its own: the server releases it
when that connection ends, a process killed with `kill -9` included, and another process takes
it. Taking the lead bumps the `leader` row's epoch (and records the leader's URL, where the
others forward the API); every transaction of the leader's store checks that epoch under a
share lock (`PostgresStore.fence`), so a process that lost the lead cannot commit one more
decision: the new leader's bump waits for its transactions in flight, and those after fail.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from flowlang.errors import FlowError

INBOUND_CHANNEL = "flowlang_inbound"  # NOTIFY channel: an event was made durable (payload: schema)
_KEY = "SELECT hashtext('flowlang:leader:' || current_schema())"


class LeadershipLost(FlowError, RuntimeError):
    """Another process has taken the lead: this one's transaction was not committed."""


class Leadership:
    """One process's bid for the lead (`try_lead`), on a connection of its own."""

    def __init__(self, url: str, advertise_url: str) -> None:
        self.url = url
        self.advertise_url = advertise_url
        self.db: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
            url, autocommit=True, connect_timeout=10
        )
        row = self.db.execute("SELECT current_schema(), (" + _KEY + ")").fetchone()
        assert row is not None
        self.schema, self.key = str(row[0]), int(row[1])
        self.epoch: int | None = None

    def try_lead(self) -> int | None:
        """Take the lead if no process holds it: the new epoch, else None."""
        if self.epoch is not None:
            return self.epoch
        if self.db.closed:  # the process is stopping
            return None
        row = self.db.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not row or not row[0]:
            return None
        # Waits for the transactions in flight of a leader that lost the lock (they hold the
        # row in share mode); those it starts afterwards see the new epoch and fail.
        bumped = self.db.execute(
            "UPDATE leader SET epoch = epoch + 1, url = %s, since = %s WHERE id = 1 "
            "RETURNING epoch",
            (self.advertise_url, datetime.now(UTC).isoformat()),
        ).fetchone()
        assert bumped is not None
        self.epoch = int(bumped[0])
        return self.epoch

    def forwarding_key(self) -> bytes:
        """The mark the service's processes put on a request one of them forwarded to another
        (`service/forward.py`), which a client cannot know: kept in the store, made by the
        first process that asks."""
        self.db.execute(
            "INSERT INTO counters (name, value) VALUES ('forwarding_key', %s) "
            "ON CONFLICT (name) DO NOTHING",
            (secrets.randbits(63),),
        )
        row = self.db.execute("SELECT value FROM counters WHERE name = 'forwarding_key'").fetchone()
        assert row is not None
        return str(row[0]).encode()

    def leader_url(self) -> str | None:
        """Where the leader takes API calls (None: no process holds the lead)."""
        row = self.db.execute(
            "SELECT l.url FROM leader l WHERE l.id = 1 AND EXISTS (SELECT 1 FROM pg_locks p "
            "WHERE p.locktype = 'advisory' AND p.granted AND p.objsubid = 1 "
            "AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND p.classid::bigint = ((%(k)s::bigint >> 32) & 4294967295) "
            "AND p.objid::bigint = (%(k)s::bigint & 4294967295))",
            {"k": self.key},
        ).fetchone()
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
        self.db.close()


class InboundListener:
    """Calls `wake` when another process makes an inbound event durable (LISTEN/NOTIFY), on a
    thread and a connection of its own; `stop` ends both."""

    def __init__(self, url: str, schema: str, wake: Callable[[], None]) -> None:
        self.db: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
            url, autocommit=True, connect_timeout=10
        )
        self.db.execute("LISTEN " + INBOUND_CHANNEL)
        self.schema = schema
        self.wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowlang-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                for note in self.db.notifies(timeout=0.5):
                    if note.payload == self.schema:
                        self.wake()
            except psycopg.Error:
                if self._stopping.is_set():
                    return
                self._stopping.wait(0.5)  # the poll between turns still finds the events

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(2.0)
        self.db.close()
