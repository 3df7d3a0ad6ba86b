"""The durable conversation store in a SQL database, written once for SQLite and PostgreSQL:
`SqlStore` speaks to its database through a `Dialect` (dialect.py) for what differs between
them; `SqliteStore` (sqlite.py) and `PostgresStore` (postgres.py) open the connection.

It implements the engine's `ConversationStore` port and what hosts and the CLI need besides:
history paging, customer lookup and merging, the event log, dead letters, the inbound
events that were stored but not processed (for recovery after a crash), and the outbox.

Durability: `engine.handle` stores the raw event (`accept_inbound`) and processes it inside one
`transaction()`, which commits the event with its outcome (conversation state, history, events,
the processed mark, the messages to send) atomically, or nothing; the messages are delivered
after the commit. `accept_inbound` on its own (the service's webhooks) commits at once. Times
are kept as ISO text (events in UTC), so that the log sorts and filters alike in both.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import orjson

from flowlang.events import in_utc
from flowlang.runtime.memory import normalise_phone
from flowlang.runtime.ports import (
    ConversationView,
    CustomerView,
    IdentityClaim,
    PendingSend,
    SentMessage,
    User,
    status_advances,
)
from flowlang.runtime.users import check_new_user
from flowlang.store import active as active_table
from flowlang.store import sent as sent_table
from flowlang.store import sessions as sessions_table
from flowlang.store.active import ActiveFlow
from flowlang.store.dialect import Dialect, Rows
from flowlang.store.reconnect import Reconnect
from flowlang.store.sessions import StoredSession

_TIMES = ("started_at", "last_activity_at", "last_inbound_at")
# The customers owning identities (then: the identities' equalities); on a server with their
# current conversations (a round trip less per message; in-process SQLite keeps its lookup to
# the two tables' keys and finds the conversation with a query of its own).
_OWNERS = (
    "SELECT i.kind, i.value, c.id, c.name, c.phone, c.volunteered, NULL, NULL "
    "FROM identities i JOIN customers c ON c.id = i.customer_id WHERE "
)
_OWNERS_AND_CONVERSATIONS = (
    "SELECT i.kind, i.value, c.id, c.name, c.phone, c.volunteered, cc.channel, cv.body "
    "FROM identities i JOIN customers c ON c.id = i.customer_id "
    "LEFT JOIN current_conversation cc ON cc.customer_id = c.id "
    "LEFT JOIN conversations cv ON cv.id = cc.conversation_id WHERE "
)
_EVENTS = "INSERT INTO events (kind, at, conversation_id, data) VALUES (?, ?, ?, ?)"
_MESSAGES = (
    "INSERT INTO messages (customer_id, conversation_id, direction, content, at, sender) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_VIEW_NAMES = tuple(f.name for f in fields(ConversationView))
_VIEW_FIELDS = frozenset(_VIEW_NAMES)


@dataclass
class HistoryPage:
    """Messages in time order, and the cursor for the page before them (None: the first one)."""

    messages: list[dict[str, Any]]
    before: int | None


class SqlStore:
    """A ConversationStore in a SQL database, reached through its `dialect`."""

    def __init__(self, dialect: Dialect, path: str) -> None:
        self.dialect = dialect
        self.path = path
        self._depth = 0
        self._delivered: list[int] = []  # outbox rows to delete with the next transaction
        self._sent: list[SentMessage] = []  # vendor ids to keep with the next transaction
        # Conversations read or saved in the current transaction (their JSON), read again
        # from here: an agent's action reads its conversation several times, each a round
        # trip on a server. Forgotten when the transaction or a nested unit ends in failure.
        self._bodies: dict[str, str] = {}
        # Customers whose current conversations (channel -> conversation id) were read with
        # them in this transaction: finding the conversation then needs no query of its own.
        self._pointers: dict[str, dict[str, str]] = {}
        self._ahead: tuple[list[tuple[str, str]], Rows] | None = None  # (`read_ahead`)
        # Customers asked for together before a turn's events (`look_up`): for each identity
        # asked about, its rows of `_OWNERS_AND_CONVERSATIONS` (none: no owner). An answer the
        # transaction has since made untrue (a customer or identity written, a current
        # conversation changed) is dropped (`_untrue`); all of them with `_forget`.
        self._looked_up: dict[tuple[str, str], list[Any]] | None = None
        # Rows of the log and the history appended in the open transaction, by statement,
        # inserted together at its end or before anything reads those tables; the first
        # `_written` of each are in the database (`_write_appended`).
        self._appended: dict[str, list[tuple[Any, ...]]] = {_EVENTS: [], _MESSAGES: []}
        self._written: dict[str, int] = {_EVENTS: 0, _MESSAGES: 0}
        # Numbers reserved from a counter and not used yet (next, last), by counter
        # (`_next_id`); dropped whenever a unit of work fails, which may undo the reservation.
        self._reserved: dict[str, tuple[int, int]] = {}

    def close(self) -> None:
        if (self._delivered or self._sent) and not self.dialect.closed:
            with self.transaction():
                pass
        self.dialect.close()

    def __enter__(self) -> SqlStore:
        return self

    def ensure_open(self, reconnect: Reconnect) -> None:
        """Open the connection again if the server dropped it (a server's store: PostgreSQL);
        a file's connection is not dropped."""

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, query: str, args: Sequence[Any] = ()) -> Rows:
        return self.dialect.execute(query, args)

    def _many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.dialect.executemany(query, rows)

    def _returning(self, query: str, args: Sequence[Any]) -> Any:
        """The first row a statement with RETURNING gave (None: none), the statement run to
        its end."""
        rows = self._run(query, args).fetchall()
        return rows[0] if rows else None

    def _count(self, query: str, args: Sequence[Any] = ()) -> int:
        row = self._run(query, args).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together, or not at all. A nested call joins the outer
        one as a savepoint: when it fails, what it wrote is undone and the outer one goes on
        (the service processes several events in one transaction, each nested)."""
        if self._depth:
            self._depth += 1
            marks = {
                query: (len(rows), self._written[query]) for query, rows in self._appended.items()
            }
            try:
                with self.dialect.savepoint(self._depth):
                    yield
            except BaseException:
                self._forget()  # what the unit saved is undone
                self._reserved.clear()  # and perhaps the numbers it reserved
                # Its rows go; rows written to the database during it, its own or older
                # ones, were undone by the rollback: the older ones are written again later.
                for query, (appended, written) in marks.items():
                    del self._appended[query][appended:]
                    self._written[query] = min(self._written[query], written)
                raise
            finally:
                self._depth -= 1
            return
        delivered = self._delivered[:]
        sent = self._sent[:]
        try:
            with self.dialect.transaction():
                self._depth = 1
                self._began()
                self._many("DELETE FROM outbox WHERE id = ?", [(i,) for i in delivered])
                self._insert_sent(sent)
                yield
                self._write_appended()
                self._ending()
        except BaseException:
            self._reserved.clear()  # the numbers reserved in it are not reserved
            raise
        finally:
            self._depth = 0
            self._forget()
            for query, rows in self._appended.items():
                rows.clear()
                self._written[query] = 0
        del self._delivered[: len(delivered)]
        del self._sent[: len(sent)]

    def _forget(self) -> None:
        """Forget the conversations read or saved in this transaction (read them again)."""
        self._bodies.clear()
        self._pointers.clear()
        self._ahead = None
        self._looked_up = None

    def _append(self, query: str, row: tuple[Any, ...]) -> None:
        """An append-only row (the log, the history): in a transaction, kept to be inserted
        with the others at its end (one `executemany` a table); alone, inserted now."""
        if self._depth:
            self._appended[query].append(row)
        else:
            self._run(query, row)

    def _write_appended(self) -> None:
        """Insert the appended rows not written yet, in the order appended (before the commit,
        and before any statement that reads or changes those tables). They stay listed until
        the transaction ends: a nested unit that fails after this undoes the insert, and those
        of them appended before it began are written again."""
        for query, rows in self._appended.items():
            written = self._written[query]
            if written < len(rows):
                self._many(query, rows[written:])
                self._written[query] = len(rows)

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """A store method's writes together: its own transaction when called alone; inside a
        caller's, part of it (no savepoint: what fails there undoes the caller's unit)."""
        if self._depth:
            yield
        else:
            with self.transaction():
                yield

    def _began(self) -> None:
        """Called first in every outermost transaction (a shared store checks its lead)."""

    def _ending(self) -> None:
        """Called last in every outermost transaction that is about to commit; raising here
        rolls it back (a shared store checks there the lead it asked about in `_began`)."""

    def _next_id(self, counter: str, prefix: str) -> str:
        """The next number of `counter` (customers', conversations'), with its prefix. A
        server's dialect reserves a block of numbers at a time (`Dialect.id_block`): the
        counter moves past the block in the caller's transaction, and the numbers are taken
        from memory until it is used up, so a number costs no round trip of its own. A unit of
        work that fails may undo the reservation: what is left of it is then dropped, never
        handed out (numbers then have gaps; each is still used once)."""
        reserved = self._reserved.get(counter)
        if reserved is None:
            block = self.dialect.id_block
            row = self._returning(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = counters.value + ? RETURNING value",
                (counter, block, block),
            )
            reserved = int(row[0]) - block + 1, int(row[0])
        number, last = reserved
        if number < last:
            self._reserved[counter] = number + 1, last
        else:
            self._reserved.pop(counter, None)
        return f"{prefix}{number}"

    # ------------------------------------------------------------------ inbound
    def accept_inbound(
        self, channel: str, event_id: str, payload: dict[str, Any], processing: bool = False
    ) -> bool:
        """Store an inbound event (committed at once, or with the transaction it is called
        in); False when it was seen before. `processing`: the caller processes it in the
        transaction this is called in, so it is stored as processed (the mark commits with
        the processing, as `mark_processed` would); ValueError outside a transaction."""
        if not processing:
            return self.accept_inbounds([(channel, event_id, payload)])[0]
        if not self._depth:
            raise ValueError("accept_inbound(processing=True) is for inside a transaction")
        return self._accept_processed(channel, event_id, payload)

    def _accept_processed(self, channel: str, event_id: str, payload: dict[str, Any]) -> bool:
        """`accept_inbound` of an event processed in the open transaction."""
        stored = self.accept_inbounds([(channel, event_id, payload)])[0]
        if stored:
            self.mark_processed(channel, event_id)
        return stored

    def accept_inbounds(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> list[bool]:
        """Store inbound events (channel, event id, payload) together, numbered in the order
        given (committed at once, or with the transaction they are called in); for each, False
        when it was seen before (in the store, or earlier among `events`)."""
        if not events:
            return []
        with self._atomic():
            stored = self._insert_inbound(events)
            if any(stored):
                self._stored_inbound()
        return stored

    def _insert_inbound(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> list[bool]:
        """Insert the events not seen before and number them (`seq`): here from a counter row,
        since a SQLite file has one writer at a time (PostgreSQL numbers them its own way)."""
        stored = []
        for channel, event_id, payload in events:
            self._run(
                "INSERT INTO counters (name, value) VALUES ('inbound', 1) "
                "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
            )
            row = self._returning(
                "INSERT INTO inbound (channel, event_id, payload, seq) "
                "SELECT ?, ?, ?, value FROM counters WHERE name = 'inbound' "
                "ON CONFLICT DO NOTHING RETURNING seq",
                (channel, event_id, _dumps(payload)),
            )
            stored.append(row is not None)
        return stored

    def _stored_inbound(self) -> None:
        """Called when an inbound event was stored (a shared store tells the other processes)."""

    def mark_processed(self, channel: str, event_id: str) -> None:
        self._run(
            "UPDATE inbound SET processed = 1 WHERE channel = ? AND event_id = ?",
            (channel, event_id),
        )

    def inbound_sender(self, channel: str, event_id: str) -> str | None:
        """Who sent an inbound event stored before (a removal may come without its author)."""
        row = self._run(
            f"SELECT {self.dialect.json_text('payload', 'sender_id')} FROM inbound "
            "WHERE channel = ? AND event_id = ?",
            (channel, event_id),
        ).fetchone()
        return str(row[0]) if row and row[0] else None

    def pending_inbound(self) -> list[dict[str, Any]]:
        """Inbound events stored but not processed (a crash came in between), oldest first."""
        rows = self._run("SELECT payload FROM inbound WHERE processed = 0 ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def next_inbound(self, limit: int) -> list[dict[str, Any]]:
        """The first `limit` inbound events not processed yet (committed), in the order they
        were numbered (on PostgreSQL: by any process; see `PostgresStore._insert_inbound` for
        why a conversation's events never overtake one another)."""
        rows = self._run(
            "SELECT payload FROM inbound WHERE processed = 0 ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def unprocessed(self) -> int:
        """How many inbound events are stored and not processed yet."""
        return self._count("SELECT count(*) FROM inbound WHERE processed = 0")

    # ------------------------------------------------------------------ customers
    def resolve_customer(
        self, channel: str, external_id: str, phone: str | None, name: str | None
    ) -> CustomerView:
        e164 = normalise_phone(phone)
        with self._atomic():
            # Both identities' owners, with the owner's record, in one read (a round trip on
            # a server); a new customer's record is what is written, not read back.
            keys = _identity_keys(channel, external_id, e164)
            owners = self._owners(keys)
            known_by: set[str] = set()
            view = owners.get((channel, external_id))
            if view is not None:
                known_by.add("platform id")
            elif e164 and (view := owners.get(("phone", e164))) is not None:
                known_by.add("phone")
            new = view is None
            updated = False
            if view is None:
                view = CustomerView(self._next_id("customer", "c"), name, e164)
                self._run(
                    "INSERT INTO customers (id, name, phone) VALUES (?, ?, ?)",
                    (view.id, name, e164),
                )
                if self._depth:
                    self._pointers[view.id] = {}  # no conversation yet
            # A returning customer usually changes nothing: then nothing is written (a write
            # dirties pages of a table of a million customers; reading them stays cached).
            elif updated := (name is not None and view.name is None) or bool(
                e164 and view.phone is None
            ):
                self._run(
                    "UPDATE customers SET name = coalesce(name, ?), phone = coalesce(phone, ?) "
                    "WHERE id = ?",
                    (name, e164, view.id),
                )
                view = CustomerView(
                    view.id,
                    view.name if view.name is not None else name,
                    view.phone if view.phone is not None else e164,
                    view.known_by,
                )
            # Only identities no one has: one another customer owns stays theirs.
            unowned = [
                (kind, value, view.id) for kind, value in keys if (kind, value) not in owners
            ]
            self._many(
                "INSERT INTO identities (kind, value, customer_id) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                unowned,
            )
            if new or updated or unowned:
                self._untrue(view.id, keys)
        return CustomerView(view.id, view.name, view.phone, view.known_by | known_by, new)

    def read_ahead(self, channel: str, external_id: str, phone: str | None) -> None:
        """Say whose customer record the next unit of work will look up (`resolve_customer`'s
        arguments): on a server it is asked for with the end of the current unit, whose round
        trip then brings it (the service's leader, event after event of its turn)."""
        if not self.dialect.pipelined:
            return
        keys = _identity_keys(channel, external_id, normalise_phone(phone))
        if not all(_sendable(value) for _, value in keys):
            return  # asked for in its own unit, which it fails alone

        def ask() -> None:
            self._ahead = keys, self._ask_owners(keys)

        self.dialect.before_sync = ask

    def look_up(self, senders: Sequence[tuple[str, str, str | None]]) -> None:
        """Ask for the customers the next units of work will look up (`resolve_customer`'s
        arguments), all in one query, with their current conversations: on a server, inside a
        transaction (the leader's turn, before its events), one round trip for all. Each is
        then answered from memory, unless this transaction has since written what the answer
        says (the customer, their identities, their current conversation: then asked again)."""
        if not self.dialect.pipelined or not self._depth:
            return
        keys = sorted(
            {
                key
                for channel, external_id, phone in senders
                for key in _identity_keys(channel, external_id, normalise_phone(phone))
                if _sendable(key[1])  # else asked for in its own unit, which it fails alone
            }
        )
        if not keys:
            return
        rows = self._run(
            _OWNERS_AND_CONVERSATIONS
            + "(i.kind, i.value) IN (SELECT * FROM unnest(?::text[], ?::text[]))",
            ([kind for kind, _ in keys], [value for _, value in keys]),
        ).fetchall()
        found: dict[tuple[str, str], list[Any]] = {key: [] for key in keys}
        for row in rows:
            found[(str(row[0]), str(row[1]))].append(row)
        self._looked_up = found

    def _untrue(self, customer_id: str, keys: Collection[tuple[str, str]] = ()) -> None:
        """What `look_up` answered about these identities and this customer is no longer
        what the store holds (the transaction wrote it)."""
        looked = self._looked_up
        if not looked:
            return
        for key in keys:
            looked.pop(key, None)
        for key in [k for k, rows in looked.items() if any(str(r[2]) == customer_id for r in rows)]:
            del looked[key]

    def _ask_owners(self, keys: list[tuple[str, str]]) -> Rows:
        # Equalities joined by OR: SQLite looks each pair up in the primary key, where a
        # row-value IN list made it scan every identity (a million customers: 0.4 s a message).
        marks = " OR ".join(["(i.kind = ? AND i.value = ?)"] * len(keys))
        query = _OWNERS_AND_CONVERSATIONS if self.dialect.pipelined else _OWNERS
        return self._run(query + marks, [part for key in keys for part in key])

    def _owners(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], CustomerView]:
        """The customers who own these identities, by identity; on a server and inside a
        transaction, with their current conversations (kept for `conversation_for`: one
        query for both)."""
        ahead, self._ahead = self._ahead, None
        looked = self._looked_up
        if ahead is not None and ahead[0] == keys:
            rows = ahead[1].fetchall()  # asked for with the last unit's end
        elif looked is not None and all(key in looked for key in keys):
            rows = [row for key in keys for row in looked[key]]  # asked for before the turn
        else:
            rows = self._ask_owners(keys).fetchall()
        owners = {}
        known = set(self._pointers)  # what this transaction knows of them is as new
        for kind, value, cid, cname, cphone, volunteered, channel, body in rows:
            owners[(str(kind), str(value))] = CustomerView(
                cid, cname, cphone, frozenset(json.loads(volunteered)), False
            )
            if not self._depth or not self.dialect.pipelined or str(cid) in known:
                continue
            pointers = self._pointers.setdefault(str(cid), {})
            if channel is not None and body is not None:
                conv_id = str(json.loads(body)["id"])
                pointers[str(channel)] = conv_id
                self._bodies.setdefault(conv_id, body)  # one saved in this transaction is newer
        return owners

    def _owner(self, kind: str, value: str) -> str | None:
        row = self._run(
            "SELECT customer_id FROM identities WHERE kind = ? AND value = ?", (kind, value)
        ).fetchone()
        return str(row[0]) if row else None

    def get_customer(self, customer_id: str) -> CustomerView | None:
        row = self._run(
            "SELECT id, name, phone, volunteered FROM customers WHERE id = ?", (customer_id,)
        ).fetchone()
        if row is None:
            return None
        return CustomerView(row[0], row[1], row[2], frozenset(json.loads(row[3])), False)

    def find_customer(self, kind: str, value: str) -> CustomerView | None:
        """The customer known by an identity: ("phone", "+44..."), ("whatsapp", wa_id), ..."""
        if kind == "phone":
            value = normalise_phone(value) or value
        owner = self._owner(kind, value)
        return self.get_customer(owner) if owner else None

    def identities_of(self, customer_id: str) -> list[tuple[str, str]]:
        rows = self._run(
            "SELECT kind, value FROM identities WHERE customer_id = ? ORDER BY kind, value",
            (customer_id,),
        ).fetchall()
        return [(str(k), str(v)) for k, v in rows]

    def link_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        with self._atomic():
            self._looked_up = None  # identities and records change below
            owner = self._owner(kind, value)
            if owner is not None and owner != customer_id:
                self.merge_customers(keep=owner, absorb=customer_id)
                customer_id = owner
            self._run(
                "INSERT INTO identities (kind, value, customer_id) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, value) DO UPDATE SET customer_id = excluded.customer_id",
                (kind, value, customer_id),
            )
            self._run(
                "DELETE FROM identity_claims WHERE customer_id = ? AND kind = ? AND value = ?",
                (customer_id, kind, value),
            )
            view = self.get_customer(customer_id)
            assert view is not None
            volunteered = sorted(view.known_by | {kind})
            self._run(
                "UPDATE customers SET volunteered = ? WHERE id = ?",
                (json.dumps(volunteered), customer_id),
            )
        return CustomerView(view.id, view.name, view.phone, frozenset(volunteered), False)

    def move_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        with self._atomic():
            self._run("DELETE FROM identities WHERE kind = ? AND value = ?", (kind, value))
            return self.link_identity(customer_id, kind, value)

    def claim_identity(
        self, customer_id: str, kind: str, value: str, conversation_id: str, at: datetime
    ) -> bool:
        if self._owner(kind, value) == customer_id:
            return False
        self._run(
            "INSERT INTO identity_claims (customer_id, kind, value, conversation_id, at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (customer_id, kind, value, conversation_id, in_utc(at).isoformat()),
        )
        return True

    def claims_of(self, customer_id: str) -> list[IdentityClaim]:
        rows = self._run(
            "SELECT kind, value, conversation_id, at FROM identity_claims WHERE customer_id = ? "
            "ORDER BY at, kind, value",
            (customer_id,),
        ).fetchall()
        return [IdentityClaim(k, v, c, datetime.fromisoformat(a)) for k, v, c, a in rows]

    def merge_customers(self, keep: str, absorb: str) -> None:
        """Move everything of `absorb` (identities, conversations, history) to `keep`."""
        with self._atomic():
            self._forget()  # conversations are rewritten below
            self._write_appended()  # the history rows kept so far move too
            kept, gone = self.get_customer(keep), self.get_customer(absorb)
            if kept is None or gone is None:
                raise KeyError(f"no customer {keep if kept is None else absorb!r}")
            merged = kept.absorbing(gone)
            self._run(
                "UPDATE customers SET volunteered = ?, name = ?, phone = ? WHERE id = ?",
                (json.dumps(sorted(merged.known_by)), merged.name, merged.phone, keep),
            )
            for table in ("identities", "messages", "conversations"):
                self._run(
                    f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?", (keep, absorb)
                )
            # What `keep` has already stays; the rest of `absorb`'s moves over.
            for table, key in (
                ("identity_claims", "kind, value"),
                ("current_conversation", "channel"),
            ):
                self._run(
                    f"UPDATE {table} SET customer_id = ? WHERE customer_id = ? AND ({key}) "
                    f"NOT IN (SELECT {key} FROM {table} WHERE customer_id = ?)",
                    (keep, absorb, keep),
                )
                self._run(f"DELETE FROM {table} WHERE customer_id = ?", (absorb,))
            rows = self._run(
                "SELECT id, body FROM conversations WHERE customer_id = ?", (keep,)
            ).fetchall()
            for conv_id, body in rows:
                data = json.loads(body)
                data["customer_id"] = keep
                self._run("UPDATE conversations SET body = ? WHERE id = ?", (_dumps(data), conv_id))
            self._run("DELETE FROM customers WHERE id = ?", (absorb,))

    # ------------------------------------------------------------------ flow versions
    def save_flow_version(self, version: str, graph: dict[str, Any]) -> None:
        """Keep a flow version's graph (once: a version's content never changes)."""
        with self._unless_read_only(), self.transaction():
            self._run(
                "INSERT INTO flow_versions (version, graph) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (version, _dumps(graph)),
            )
            self.dialect.sync()

    def flow_version(self, version: str) -> dict[str, Any] | None:
        """The graph of a flow version kept by `save_flow_version`, or None."""
        row = self._run("SELECT graph FROM flow_versions WHERE version = ?", (version,)).fetchone()
        return json.loads(row[0]) if row else None

    def flow_versions(self) -> list[tuple[str, str]]:
        """Every flow version kept, as (version, the flow's name), in the order the event log
        first shows each run or published (any it never shows first)."""
        self._write_appended()
        json_text = self.dialect.json_text
        rows = self._run(
            f"SELECT version, name FROM (SELECT v.version, {json_text('v.graph', 'name')} AS name, "
            "(SELECT min(e.seq) FROM events e WHERE e.kind IN ('flow_path', 'flow_published')"
            f"  AND {json_text('e.data', 'version')} = v.version"
            ") AS first_seq FROM flow_versions v) AS kept"
            " ORDER BY first_seq IS NOT NULL, first_seq, version"
        ).fetchall()
        return [(version, name or "") for version, name in rows]

    def flow_publications(self) -> list[dict[str, Any]]:
        """The `flow_published` events of the log ({"at", "version", "flow", "by"}), in order."""
        self._write_appended()
        rows = self._run(
            "SELECT at, data FROM events WHERE kind = 'flow_published' ORDER BY seq"
        ).fetchall()
        return [{**json.loads(data), "at": datetime.fromisoformat(at)} for at, data in rows]

    # ------------------------------------------------------------------ users
    def add_user(
        self,
        name: str,
        role: str,
        token_hash: str,
        at: datetime,
        expires_at: datetime | None = None,
    ) -> User:
        expires = _utc_text(expires_at) if expires_at is not None else None
        with self._atomic():
            check_new_user(name, role, self.user(name))
            self._run(
                "INSERT INTO users (name, role, token_hash, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
                "token_hash = excluded.token_hash, created_at = excluded.created_at, "
                "revoked_at = NULL, expires_at = excluded.expires_at",
                (name, role, token_hash, _utc_text(at), expires),
            )
        return User(
            name, role, token_hash, in_utc(at), None, in_utc(expires_at) if expires_at else None
        )

    def user(self, name: str) -> User | None:
        return self._user("name", name)

    def user_by_token_hash(self, token_hash: str) -> User | None:
        return self._user("token_hash", token_hash)

    def _user(self, column: str, value: str) -> User | None:
        row = self._run(
            f"SELECT {_USER_COLUMNS} FROM users WHERE {column} = ?", (value,)
        ).fetchone()
        return _user(row) if row else None

    def users(self) -> list[User]:
        rows = self._run(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()
        return [_user(row) for row in rows]

    def revoke_user(self, name: str, at: datetime) -> bool:
        with self._atomic():
            changed = self._returning(
                "UPDATE users SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
                "RETURNING name",
                (_utc_text(at), name),
            )
        return changed is not None

    # ------------------------------------------------------------------ sign-in sessions
    def add_session(self, session: StoredSession) -> None:
        """Keep a new session; sessions already past their end are dropped meanwhile."""
        with self._atomic():
            self._run("DELETE FROM sessions WHERE ends_at <= ?", (_utc_text(session.created_at),))
            self._run(
                f"INSERT INTO sessions ({sessions_table.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.id_hash,
                    session.user_name,
                    session.token_hash,
                    _utc_text(session.created_at),
                    _utc_text(session.last_seen_at),
                    _utc_text(session.ends_at),
                ),
            )

    def session(self, id_hash: str) -> StoredSession | None:
        """The session whose id hashes to `id_hash` (None: none, or it was ended)."""
        row = self._run(
            f"SELECT {sessions_table.COLUMNS} FROM sessions WHERE id_hash = ?", (id_hash,)
        ).fetchone()
        return sessions_table.session_of(row) if row else None

    def touch_session(self, id_hash: str, at: datetime) -> None:
        """The session was used at `at`."""
        with self._atomic():
            self._run(
                "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", (_utc_text(at), id_hash)
            )

    def end_session(self, id_hash: str) -> bool:
        """Forget the session (signed out, or past its time); False when there was none."""
        with self._atomic():
            gone = self._returning(
                "DELETE FROM sessions WHERE id_hash = ? RETURNING id_hash", (id_hash,)
            )
        return gone is not None

    # ------------------------------------------------------------------ after-call work
    def set_work_end(self, conversation_id: str, agent: str) -> None:
        """`agent`'s interaction of the conversation ended now: the history's last message so
        far is the last they may read of it in their after-call work."""
        with self._atomic():
            self._write_appended()
            self._run(
                "INSERT INTO work_ends (conversation_id, agent, through_seq) "
                "VALUES (?, ?, (SELECT coalesce(max(seq), 0) FROM messages)) "
                "ON CONFLICT (conversation_id, agent) DO UPDATE "
                "SET through_seq = excluded.through_seq",
                (conversation_id, agent),
            )

    def work_end(self, conversation_id: str, agent: str) -> int | None:
        """The history's last message (its seq) when `agent`'s interaction of the conversation
        ended (None: none is kept)."""
        row = self._run(
            "SELECT through_seq FROM work_ends WHERE conversation_id = ? AND agent = ?",
            (conversation_id, agent),
        ).fetchone()
        return int(row[0]) if row else None

    def forget_work_end(self, conversation_id: str, agent: str) -> None:
        """`agent`'s after-call work on the conversation is over."""
        with self._atomic():
            self._run(
                "DELETE FROM work_ends WHERE conversation_id = ? AND agent = ?",
                (conversation_id, agent),
            )

    # ------------------------------------------------------------------ the policy's ledger
    def opted_out(self, channel: str, account: str, address: str) -> bool:
        row = self._run(
            "SELECT 1 FROM opt_outs WHERE channel = ? AND account = ? AND address = ?",
            (channel, account, address),
        ).fetchone()
        return row is not None

    def set_opted_out(
        self, channel: str, account: str, address: str, opted_out: bool, at: datetime
    ) -> None:
        with self._atomic():
            if opted_out:
                self._run(
                    "INSERT INTO opt_outs (channel, account, address, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (channel, account, address) DO UPDATE SET at = excluded.at",
                    (channel, account, address, _utc_text(at)),
                )
            else:
                self._run(
                    "DELETE FROM opt_outs WHERE channel = ? AND account = ? AND address = ?",
                    (channel, account, address),
                )

    def opt_outs(self) -> list[dict[str, str]]:
        """Every opt-out in force: channel, account, address and when, oldest first."""
        rows = self._run(
            "SELECT channel, account, address, at FROM opt_outs ORDER BY at, address"
        ).fetchall()
        return [dict(zip(("channel", "account", "address", "at"), r, strict=True)) for r in rows]

    def reached(self, scope: str, since: datetime, recipient: str) -> tuple[int, bool]:
        count, found = self._run(
            "SELECT count(*), count(*) FILTER (WHERE recipient = ?) FROM reaches "
            "WHERE scope = ? AND at > ?",
            (recipient, scope, _utc_text(since)),
        ).fetchone()
        return int(count), bool(found)

    def record_reach(self, scope: str, recipient: str, at: datetime) -> None:
        with self._atomic():
            self._run(
                "INSERT INTO reaches (scope, recipient, at) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, recipient) DO UPDATE "
                f"SET at = {self.dialect.greatest}(reaches.at, excluded.at)",
                (scope, recipient, _utc_text(at)),
            )

    # ------------------------------------------------------------------ conversations
    def conversation_for(
        self, customer_id: str, channel: str, account: str, now: datetime, window: timedelta
    ) -> ConversationView:
        """The customer's conversation on `channel` that continues at `now`, else a new one
        (the one before closed). Inside a caller's transaction a new conversation is written
        by the caller's `save_conversation`, in the same transaction (once, not twice)."""
        alone = not self._depth
        with self._atomic():
            pointers = self._pointers.get(customer_id)
            if pointers is not None:  # read with the customer
                known = pointers.get(channel)
                current = self.get_conversation(known) if known else None
            else:
                row = self._run(
                    "SELECT c.body FROM current_conversation cc JOIN conversations c "
                    "ON c.id = cc.conversation_id WHERE cc.customer_id = ? AND cc.channel = ?",
                    (customer_id, channel),
                ).fetchone()
                current = self._read_body(row[0]) if row else None
            if current is not None and current.continues_at(now, window):
                current.ongoing = True
                return current
            conv = ConversationView.starting(
                self._next_id("conversation", "conv"),
                customer_id,
                channel,
                account,
                now,
                after=current,
            )
            if current is not None and current.close():
                self.save_conversation(current)
            if alone:
                self.save_conversation(conv)
            self._run(
                "INSERT INTO current_conversation (customer_id, channel, conversation_id) "
                "VALUES (?, ?, ?) ON CONFLICT (customer_id, channel) "
                "DO UPDATE SET conversation_id = excluded.conversation_id",
                (customer_id, channel, conv.id),
            )
            if pointers is not None:
                pointers[channel] = conv.id
            else:
                self._untrue(customer_id)
        return conv

    def get_conversation(self, conversation_id: str) -> ConversationView | None:
        known = self._bodies.get(conversation_id)
        if known is not None:
            return _view(json.loads(known))
        row = self._run(
            "SELECT body FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return self._read_body(row[0]) if row else None

    def _read_body(self, body: str) -> ConversationView:
        """A conversation read from its row (kept for the rest of the transaction)."""
        data = json.loads(body)
        if self._depth:
            self._bodies[str(data["id"])] = body
        return _view(data)

    def conversations_with_names(
        self, conversation_ids: Collection[str]
    ) -> dict[str, tuple[ConversationView, str | None]]:
        """These conversations, each with its customer's name, in one query."""
        wanted = sorted(set(conversation_ids))
        if not wanted:
            return {}
        rows = self._run(
            "SELECT c.id, c.body, cu.name FROM conversations c "
            "LEFT JOIN customers cu ON cu.id = c.customer_id "
            f"WHERE c.id IN ({', '.join('?' * len(wanted))})",
            wanted,
        ).fetchall()
        return {str(i): (_view(json.loads(body)), name) for i, body, name in rows}

    def save_conversation(self, conversation: ConversationView) -> None:
        # Not dataclasses.asdict: its deep copy is wasted work before JSON, and it drops the
        # zone of datetime subclasses such as ruamel's TimeStamp.
        body = {name: getattr(conversation, name) for name in _VIEW_NAMES}
        text = _dumps(body)
        self._run(
            "INSERT INTO conversations (id, customer_id, channel, started_at, last_activity_at, "
            "body) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "customer_id = excluded.customer_id, last_activity_at = excluded.last_activity_at, "
            "body = excluded.body",
            (
                conversation.id,
                conversation.customer_id,
                conversation.channel,
                conversation.started_at.isoformat(),
                conversation.last_activity_at.isoformat(),
                text,
            ),
        )
        if self._depth:
            self._bodies[conversation.id] = text

    def conversations_of(self, customer_id: str) -> list[ConversationView]:
        rows = self._run(
            "SELECT body FROM conversations WHERE customer_id = ? ORDER BY started_at",
            (customer_id,),
        ).fetchall()
        return [_view(json.loads(r[0])) for r in rows]

    def routed_conversations(self) -> list[ConversationView]:
        """Conversations queued or with an agent that have a stored routing request (what an
        ACD takes back after a restart), oldest routing first."""
        found = []
        for (body,) in self._run("SELECT body FROM conversations"):
            data = json.loads(body)
            if data.get("status") in ("queued", "with_agent") and data.get("routing"):
                found.append(_view(data))
        return sorted(found, key=lambda c: (str(c.routing.get("entered_at")), c.id))

    def waiting_timers(self) -> list[tuple[datetime, str, str]]:
        """(deadline, conversation id, timer) of every flow waiting with a time limit."""
        out = []
        for (body,) in self._run("SELECT body FROM conversations"):
            data = json.loads(body)
            waiting = (data.get("flow_state") or {}).get("waiting") or {}
            if waiting.get("deadline") and waiting.get("timer"):
                deadline = datetime.fromisoformat(waiting["deadline"])
                out.append((deadline, str(data["id"]), str(waiting["timer"])))
            # an `on window closing` armed for the conversation (runtime/window_warning.py)
            warning = (data.get("channel_state") or {}).get("window_warning")
            if isinstance(warning, str) and data.get("status") != "closed":
                at = datetime.fromisoformat(warning)
                out.append((at, str(data["id"]), f"window_closing|{warning}"))
        return sorted(out)

    # ------------------------------------------------------------------ history and events
    def append_message(
        self,
        conversation: ConversationView,
        direction: str,
        content: dict[str, Any],
        at: datetime,
        sender: str,
    ) -> None:
        conversation.count_message(at)
        self._append(
            _MESSAGES,
            (
                conversation.customer_id,
                conversation.id,
                direction,
                _dumps(content),
                at.isoformat(),
                sender,
            ),
        )

    def history(self, customer_id: str, before: int | None = None, limit: int = 50) -> HistoryPage:
        """A customer's messages across conversations and channels, `limit` at a time, from
        the latest back to the very first (pass the page's `before` to get the one before)."""
        self._write_appended()
        rows = self._run(
            "SELECT seq, conversation_id, direction, content, at, sender FROM messages "
            "WHERE customer_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (customer_id, before if before is not None else 2**62, limit + 1),
        ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        messages = [
            {
                "seq": seq,
                "conversation_id": conv,
                "direction": direction,
                "content": json.loads(content),
                "at": datetime.fromisoformat(at),
                "sender": sender,
            }
            for seq, conv, direction, content, at, sender in reversed(rows)
        ]
        return HistoryPage(messages, messages[0]["seq"] if more and messages else None)

    def append_event(
        self, kind: str, at: datetime, conversation_id: str | None, data: dict[str, Any]
    ) -> None:
        self._append(_EVENTS, (kind, _utc_text(at), conversation_id, _dumps(data)))

    def iter_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        through_seq: int | None = None,
        after_seq: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The event log in time order: {"kind", "at", "conversation_id", **data} (only those
        written up to `through_seq`, when given: see `last_event_seq`; and after `after_seq`)."""
        self._write_appended()
        query = "SELECT kind, at, conversation_id, data FROM events WHERE 1 = 1"
        args: list[Any] = []
        if through_seq is not None:
            query += " AND seq <= ?"
            args.append(through_seq)
        if after_seq is not None:
            query += " AND seq > ?"
            args.append(after_seq)
        if start is not None:
            query += " AND at >= ?"
            args.append(_utc_text(start))
        if end is not None:
            query += " AND at < ?"
            args.append(_utc_text(end))
        for kind, at, conv, data in self._event_rows(query, args):
            yield {
                **json.loads(data),
                "kind": kind,
                "at": datetime.fromisoformat(at),
                "conversation_id": conv,
            }

    def conversation_events(self, conversation_id: str, kind: str) -> list[dict[str, Any]]:
        """The conversation's events of `kind`, in time order (as `iter_events` gives them)."""
        self._write_appended()
        rows = self._run(
            "SELECT kind, at, conversation_id, data FROM events "
            "WHERE conversation_id = ? AND kind = ? ORDER BY at, seq",
            (conversation_id, kind),
        ).fetchall()
        return [
            {**json.loads(data), "kind": k, "at": datetime.fromisoformat(at), "conversation_id": c}
            for k, at, c, data in rows
        ]

    def _event_rows(self, query: str, args: list[Any]) -> Iterator[tuple[Any, ...]]:
        page = self.dialect.page_size
        if page is None:
            yield from self._run(query + " ORDER BY at, seq", args)
            return
        # Page by (at, seq): a long log streams without holding the connection in between.
        query = query.replace(" data FROM", " data, seq FROM", 1)
        query += " AND (at, seq) > (?, ?) ORDER BY at, seq LIMIT ?"
        after: tuple[str, int] = ("", 0)
        while True:
            rows = self._run(query, [*args, *after, page]).fetchall()
            for row in rows:
                yield row[:4]
            if len(rows) < page:
                return
            after = (rows[-1][1], rows[-1][4])

    def agent_states(self) -> dict[str, str]:
        """Each agent's last state in the event log (its `agent_state` events)."""
        self._write_appended()
        rows = self._run(
            "SELECT data FROM events WHERE kind = 'agent_state' ORDER BY seq"
        ).fetchall()
        return {(d := json.loads(r[0]))["agent"]: d["state"] for r in rows}

    def last_event_seq(self) -> int:
        """The sequence number of the last event written (0 when there is none)."""
        self._write_appended()
        return self._count("SELECT coalesce(max(seq), 0) FROM events")

    # ------------------------------------------------------------------ report checkpoints
    @contextmanager
    def _unless_read_only(self) -> Iterator[None]:
        """Around a transaction whose writes only save time; its block ends with
        `dialect.sync()`, so that a refused write is raised inside it and undone."""
        try:
            yield
        except self.dialect.errors as exc:
            if not self.dialect.is_read_only(exc):
                raise

    def save_report_checkpoint(
        self, at: datetime, version: int, through_seq: int, body: dict[str, Any], keep: int
    ) -> None:
        """Keep the event log folded up to `at` (the events written up to `through_seq`), and
        only the `keep` latest checkpoints. A checkpoint only saves time: a file opened
        read-only keeps none."""
        packed = zlib.compress(_dumps(body).encode("utf-8"))
        with self._unless_read_only(), self.transaction():
            self._run(
                "INSERT INTO report_checkpoints (at, version, through_seq, body) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (at) DO UPDATE SET "
                "version = excluded.version, through_seq = excluded.through_seq, "
                "body = excluded.body",
                (_utc_text(at), version, through_seq, packed),
            )
            self._run(
                "DELETE FROM report_checkpoints WHERE at NOT IN "
                "(SELECT at FROM report_checkpoints ORDER BY at DESC LIMIT ?)",
                (keep,),
            )
            self.dialect.sync()

    def report_checkpoint(
        self, not_after: datetime | None, version: int
    ) -> tuple[datetime, dict[str, Any]] | None:
        """The latest checkpoint of `version` (at or before `not_after`) that is still true; one
        that an event written later but dated before it has made stale is dropped."""
        query = "SELECT at, through_seq, body FROM report_checkpoints WHERE version = ?"
        args: list[Any] = [version]
        if not_after is not None:
            query += " AND at <= ?"
            args.append(_utc_text(not_after))
        self._write_appended()
        rows = self._run(query + " ORDER BY at DESC", args).fetchall()
        for at, through_seq, body in rows:
            late = self._run(
                "SELECT 1 FROM events WHERE seq > ? AND at < ? LIMIT 1", (through_seq, at)
            ).fetchone()
            if late is None:
                return datetime.fromisoformat(at), json.loads(zlib.decompress(body))
            with self._unless_read_only(), self.transaction():
                self._run("DELETE FROM report_checkpoints WHERE at = ?", (at,))
                self.dialect.sync()
        return None

    def report_checkpoints(self) -> list[dict[str, Any]]:
        """The checkpoints kept, latest first: moment, fold version, events folded, bytes."""
        rows = self._run(
            f"SELECT at, version, through_seq, {self.dialect.byte_length}(body) "
            "FROM report_checkpoints ORDER BY at DESC"
        ).fetchall()
        return [
            {"at": datetime.fromisoformat(at), "version": v, "through_seq": seq, "bytes": size}
            for at, v, seq, size in rows
        ]

    def clear_report_checkpoints(self) -> int:
        """Drop every checkpoint (reports then fold from the first event); how many there were."""
        with self._atomic():
            return len(self._run("DELETE FROM report_checkpoints RETURNING at").fetchall())

    # ------------------------------------------------------------------ the stored fold
    def stored_fold(self, version: int) -> dict[str, Any] | None:
        """The stored fold of `version` (flowlang/reporting/stored_fold.py) when the log still
        agrees with it: as many events numbered up to its `through_seq` as it folded, and none
        after them dated before its last one. None otherwise (or when there is none)."""
        self._write_appended()
        row = self._run(
            "SELECT generation, through_seq, events, last_at, items, activity, body "
            "FROM report_fold WHERE version = ?",
            (version,),
        ).fetchone()
        if row is None:
            return None
        generation, through_seq, events, last_at, items, activity, body = row
        if self._count("SELECT count(*) FROM events WHERE seq <= ?", (through_seq,)) != events:
            return None
        late = self._run(
            "SELECT 1 FROM events WHERE seq > ? AND at < ? LIMIT 1", (through_seq, last_at)
        ).fetchone()
        if late is not None:
            return None
        return {
            "generation": generation,
            "through_seq": through_seq,
            "events": events,
            "last_at": datetime.fromisoformat(last_at) if last_at else None,
            "items": items,
            "activity": activity,
            "body": json.loads(zlib.decompress(bytes(body))),
        }

    def stored_fold_items(self, generation: int) -> Iterator[tuple[str, int, str, bytes]]:
        """The stored fold's interactions: id, start, media, packed (`reporting/spill.py`)."""
        query = "SELECT id, start, media, body FROM report_fold_items WHERE generation = ?"
        return self._paged(query, [generation], "id")

    def stored_fold_activity(
        self, generation: int
    ) -> Iterator[tuple[str, str, str, str, str | None, int]]:
        """The stored fold's agent activity, in order: at, agent, what, conversation, its
        interaction's media when final, and its number in that order."""
        query = (
            "SELECT at, agent, what, conv, media, n FROM report_fold_activity WHERE generation = ?"
        )
        return self._paged(query, [generation], "n")

    def _paged(self, query: str, args: list[Any], key: str) -> Iterator[tuple[Any, ...]]:
        """The rows of `query` in order of `key` (its last column when paged), a page at a
        time where the dialect pages long reads."""
        page = self.dialect.page_size
        if page is None:
            yield from self._run(f"{query} ORDER BY {key}", args)
            return
        after: Any = None
        while True:
            bound = f" AND {key} > ?" if after is not None else ""
            rows = self._run(
                f"{query}{bound} ORDER BY {key} LIMIT ?",
                [*args, *([after] if after is not None else []), page],
            ).fetchall()
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1][0 if key == "id" else -1]

    def save_stored_fold(
        self,
        version: int,
        through_seq: int,
        events: int,
        last_at: datetime | None,
        body: dict[str, Any],
        items: Iterable[tuple[str, int, str, bytes]],
        activity: Iterable[tuple[str, str, str, str, str | None]],
    ) -> None:
        """Keep a fold of the log's `events` events numbered up to `through_seq` (the latest
        dated `last_at`) in place of the one before, in one transaction. It only saves time:
        a file opened read-only keeps none."""
        packed = zlib.compress(_dumps(body).encode("utf-8"))
        with self._unless_read_only(), self.transaction():
            generation = self._count("SELECT coalesce(max(generation), 0) + 1 FROM report_fold")
            for table in ("report_fold_items", "report_fold_activity", "report_fold"):
                self._run(f"DELETE FROM {table}")
            item_count = 0
            for chunk in _chunks(items):
                self._many(
                    "INSERT INTO report_fold_items (generation, id, start, media, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(generation, *row) for row in chunk],
                )
                item_count += len(chunk)
            activity_count = 0
            for chunk in _chunks(activity):
                self._many(
                    "INSERT INTO report_fold_activity "
                    "(generation, n, at, agent, what, conv, media) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(generation, activity_count + n, *row) for n, row in enumerate(chunk)],
                )
                activity_count += len(chunk)
            self._run(
                "INSERT INTO report_fold (generation, version, through_seq, events, last_at, "
                "items, activity, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    generation,
                    version,
                    through_seq,
                    events,
                    _utc_text(last_at) if last_at is not None else "",
                    item_count,
                    activity_count,
                    packed,
                ),
            )
            self.dialect.sync()

    def clear_stored_fold(self) -> int:
        """Drop the stored fold (reports then fold from the first event); 1 if there was one."""
        with self._atomic():
            self._run("DELETE FROM report_fold_items")
            self._run("DELETE FROM report_fold_activity")
            return len(self._run("DELETE FROM report_fold RETURNING generation").fetchall())

    # ------------------------------------------------------------------ outbox
    def add_outbound(
        self,
        conversation_id: str,
        message: dict[str, Any],
        at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> int:
        """Queue a message to deliver once the current transaction commits."""
        row = self._returning(
            "INSERT INTO outbox (conversation_id, message, queued_at, delivered_to) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            (conversation_id, _dumps(message), at.isoformat(), json.dumps(list(delivered_to))),
        )
        return int(row[0])

    def pending_outbound(
        self, conversation_ids: Collection[str] | None = None
    ) -> list[PendingSend]:
        """Messages waiting to be delivered (of these conversations), oldest first."""
        query = (
            "SELECT id, conversation_id, message, queued_at, attempts, last_error, "
            "next_attempt_at, delivered_to FROM outbox"
        )
        params: list[str] = []
        if conversation_ids is not None:
            if not conversation_ids:
                return []
            params = sorted(conversation_ids)
            query += f" WHERE conversation_id IN ({', '.join('?' * len(params))})"
        delivered = set(self._delivered)
        return [
            PendingSend(
                i,
                conv,
                json.loads(message),
                datetime.fromisoformat(queued),
                attempts,
                error,
                datetime.fromisoformat(retry) if retry else None,
                json.loads(took),
            )
            for i, conv, message, queued, attempts, error, retry, took in self._run(
                query + " ORDER BY id", params
            )
            if i not in delivered
        ]

    def outbound_failed(
        self,
        send_id: int,
        reason: str,
        next_attempt_at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> None:
        self._run(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
            "delivered_to = ? WHERE id = ?",
            (reason, next_attempt_at.isoformat(), json.dumps(list(delivered_to)), send_id),
        )

    def outbound_done(self, send_id: int) -> None:
        """Delivered or given up on. Outside a transaction the row is deleted with the next one,
        which saves a commit per message; a crash before then delivers it again on recovery."""
        if self._depth:
            self._run("DELETE FROM outbox WHERE id = ?", (send_id,))
        else:
            self._delivered.append(send_id)

    # ------------------------------------------------------------------ sent messages
    def record_sent(self, sent: SentMessage) -> None:
        if self._depth:
            self._insert_sent([sent])
        else:
            self._sent.append(sent)

    def _insert_sent(self, sent: Sequence[SentMessage]) -> None:
        if sent:
            self._many(
                f"INSERT INTO sent_messages ({sent_table.COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel, vendor_id) DO UPDATE SET "
                "message_id = excluded.message_id, conversation_id = excluded.conversation_id, "
                "recipient = excluded.recipient, sent_at = excluded.sent_at, "
                "status = excluded.status, status_at = excluded.status_at, "
                "error = excluded.error",
                [sent_table.row_of(s) for s in sent],
            )

    def update_sent(
        self, channel: str, vendor_id: str, status: str, error: str, at: datetime
    ) -> SentMessage | None:
        row = self._run(
            f"SELECT {sent_table.COLUMNS} FROM sent_messages WHERE channel = ? AND vendor_id = ?"
            + self.dialect.lock_rows,
            (channel, vendor_id),
        ).fetchone()
        if row is None:
            return None
        sent = sent_table.sent_of(row)
        if status_advances(sent.status, status):
            sent.status, sent.status_at, sent.error = status, at, error
            self._run(
                "UPDATE sent_messages SET status = ?, status_at = ?, error = ? "
                "WHERE channel = ? AND vendor_id = ?",
                (status, _utc_text(at), error, channel, vendor_id),
            )
        return sent

    def update_sent_until(
        self, channel: str, recipient: str, status: str, until: datetime, at: datetime
    ) -> list[SentMessage]:
        rows = self._run(
            f"SELECT {sent_table.COLUMNS} FROM sent_messages "
            "WHERE channel = ? AND recipient = ? AND sent_at <= ? ORDER BY sent_at"
            + self.dialect.lock_rows,
            (channel, recipient, _utc_text(until)),
        ).fetchall()
        changed = []
        for row in rows:
            sent = sent_table.sent_of(row)
            if status_advances(sent.status, status):
                sent.status, sent.status_at = status, at
                changed.append(sent)
        self._many(
            "UPDATE sent_messages SET status = ?, status_at = ? "
            "WHERE channel = ? AND vendor_id = ?",
            [(status, _utc_text(at), s.channel, s.vendor_id) for s in changed],
        )
        return changed

    def sent_messages(self, message_ids: Collection[str]) -> dict[str, SentMessage]:
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self._run(
            f"SELECT {sent_table.COLUMNS} FROM sent_messages WHERE message_id IN ({marks})",
            wanted,
        ).fetchall()
        pending = [s for s in self._sent if s.message_id in set(wanted)]
        return sent_table.latest_attempts([*map(sent_table.sent_of, rows), *pending])

    # ------------------------------------------------------------------ active flow versions
    def active_flows(self) -> dict[str, ActiveFlow]:
        """Each flow's active version, by the flow's name."""
        rows = self._run(f"SELECT {active_table.COLUMNS} FROM active_flows").fetchall()
        return {row[0]: active_table.active_flow_of(row) for row in rows}

    def set_active_flow(
        self, flow: str, version: str, by: str, at: datetime, file_version: str | None = None
    ) -> None:
        """Make `version` the active one of `flow`, published `by` someone `at` a time; a
        `file_version` is the version the flow's file has at this start (None: unchanged)."""
        self._run(
            f"INSERT INTO active_flows ({active_table.COLUMNS}) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (flow) DO UPDATE SET version = excluded.version, "
            "published_by = excluded.published_by, published_at = excluded.published_at, "
            "file_version = coalesce(?, active_flows.file_version)",
            (flow, version, by, _utc_text(at), file_version or "", file_version),
        )

    # ------------------------------------------------------------------ dead letters
    def dead_letter(self, source: str, payload: dict[str, Any], reason: str, at: datetime) -> None:
        self._run(
            "INSERT INTO dead_letters (source, payload, reason, at) VALUES (?, ?, ?, ?)",
            (source, _dumps(payload), reason, at.isoformat()),
        )

    def keep_unreadable(
        self, source: str, payload: dict[str, Any], reason: str, at: datetime
    ) -> None:
        """Keep a webhook's unreadable payload as a dead letter, once: the vendor's retry of
        the request (the same source and payload but for when it was received, `received_at`)
        keeps nothing more. A different payload is kept."""
        self._run(
            "INSERT INTO dead_letters (source, payload, reason, at, intake_key) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (source, _dumps(payload), reason, at.isoformat(), _intake_key(source, payload)),
        )

    def dead_letters(self, include_replayed: bool = False) -> list[dict[str, Any]]:
        query = "SELECT id, source, payload, reason, at, replayed_at FROM dead_letters"
        if not include_replayed:
            query += " WHERE replayed_at IS NULL"
        return [
            {
                "id": i,
                "source": s,
                "payload": json.loads(p),
                "reason": r,
                "at": a,
                "replayed_at": done,
            }
            for i, s, p, r, a, done in self._run(query + " ORDER BY id")
        ]

    def mark_replayed(self, letter_id: int, at: datetime) -> None:
        self._run(
            "UPDATE dead_letters SET replayed_at = ? WHERE id = ?", (at.isoformat(), letter_id)
        )


def _intake_key(source: str, payload: dict[str, Any]) -> str:
    """What makes two unreadable webhook payloads the same one: their source and payload,
    but for when each was received."""
    same = {name: value for name, value in payload.items() if name != "received_at"}
    text = f"{source}\n{_dumps(same)}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _identity_keys(channel: str, external_id: str, e164: str | None) -> list[tuple[str, str]]:
    """The identities a customer is looked up by: the platform's id, and the phone if any."""
    return [(channel, external_id)] + ([("phone", e164)] if e164 else [])


def _sendable(text: str) -> bool:
    """Whether a text can be a statement's parameter: the driver refuses a NUL character
    (PostgreSQL's text has none) and a lone surrogate (no UTF-8) before sending anything."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _view(data: dict[str, Any]) -> ConversationView:
    values = {k: v for k, v in data.items() if k in _VIEW_FIELDS}
    for name in _TIMES:
        if values.get(name):
            values[name] = datetime.fromisoformat(values[name])
    return ConversationView(**values)


_USER_COLUMNS = "name, role, token_hash, created_at, revoked_at, expires_at"


def _user(row: tuple[str, str, str, str, str | None, str | None]) -> User:
    name, role, token_hash, created, revoked, expires = row
    return User(
        name,
        role,
        token_hash,
        datetime.fromisoformat(created),
        datetime.fromisoformat(revoked) if revoked else None,
        datetime.fromisoformat(expires) if expires else None,
    )


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    raise TypeError(f"cannot store {type(value).__name__}")


def _utc_text(moment: datetime) -> str:
    """The event log's time text: UTC, so that text order is time order."""
    return in_utc(moment).isoformat()


_ENCODER = json.JSONEncoder(default=_default, ensure_ascii=False, sort_keys=True)
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _chunks(rows: Iterable[Any], size: int = 1_000) -> Iterator[list[Any]]:
    """`rows` a list of `size` at a time: written in batches without holding them all."""
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _dumps(value: Any) -> str:
    """A value as the store's JSON text: keys sorted, no spaces, times as ISO text. orjson
    writes it (the standard encoder cost 13 % of a stored message's CPU); what orjson refuses,
    an integer past 64 bits or a lone surrogate, the standard encoder writes (`json.loads`
    reads both back the same). Not a number (NaN, infinity) is written as null, as standard
    JSON has no such value (`evaluate._number` refuses to make one)."""
    try:
        return orjson.dumps(value, default=_default, option=_ORJSON).decode()
    except TypeError:  # orjson.JSONEncodeError: what orjson cannot write
        return _ENCODER.encode(value)
