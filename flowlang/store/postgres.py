"""The durable conversation store on PostgreSQL (psycopg 3): the same store as `SqliteStore`,
table for table, for deployments that outgrow one file (docs/scaling.md).

Durability as with SQLite: `accept_inbound` commits the raw event at once; the engine processes
it inside `transaction()`, which commits its whole outcome (conversation state, history, events,
the processed mark, the messages to send) in one Postgres transaction, or nothing. Times are
kept as the same ISO text as in SQLite (events in UTC), so that both sort and filter alike.

The store lives in the first schema of the connection's `search_path` (`public` unless the URL
says otherwise, e.g. `?options=-csearch_path%3Dflowlang`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

import psycopg

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
from flowlang.store.active import ActiveFlow
from flowlang.store.leadership import INBOUND_CHANNEL, LeadershipLost
from flowlang.store.migrations import StoreError
from flowlang.store.postgres_migrations import migrate
from flowlang.store.sqlite import HistoryPage, _dumps, _user, _utc_text, _view

_PAGE = 5000  # events read at a time


def redacted(url: str) -> str:
    """The URL without its password, to show in messages and logs."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


class PostgresStore:
    """A ConversationStore in a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        """Connect and bring the schema up to date.

        Raises StoreError when the server cannot be reached, refuses the login, or holds a
        store from a newer flowlang.
        """
        self.path = url
        self.shown = redacted(url)
        try:
            self.db: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
                url, autocommit=True, connect_timeout=10
            )
        except psycopg.Error as exc:
            raise StoreError(f"{self.shown}: cannot connect: {_reason(exc)}") from exc
        try:
            self.schema_version = migrate(self.db)
        except (psycopg.Error, StoreError) as exc:
            self.db.close()
            raise StoreError(
                f"{self.shown}: cannot open as a flowlang store: {_reason(exc)}"
            ) from exc
        self._depth = 0
        self._delivered: list[int] = []  # outbox rows to delete with the next transaction
        # Set by a process sharing the store with others (flowlang/store/leadership.py): the
        # leader's epoch, checked by every transaction; whether accepted events are announced.
        self.fence: int | None = None
        self.announce_inbound = False


        self._sent: list[SentMessage] = []  # vendor ids to keep with the next transaction

    def close(self) -> None:
        if (self._delivered or self._sent) and not self.db.closed:
            with self.transaction():
                pass
        self.db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together, or not at all. A nested call joins the outer
        one as a savepoint: when it fails, what it wrote is undone and the outer one goes on."""
        if self._depth:
            self._depth += 1
            try:
                with self.db.transaction():  # psycopg: a savepoint inside a transaction
                    yield
            finally:
                self._depth -= 1
            return
        delivered = self._delivered[:]
        sent = self._sent[:]
        try:
            # Pipelined: statements whose result no one reads (the history, the event log, the
            # conversation saved) go with the next one that is read, not a round trip each.
            with self.db.pipeline(), self.db.transaction():
                self._depth = 1
                if self.fence is not None:
                    self._check_fence(self.fence)
                if delivered:
                    with self.db.cursor() as cursor:
                        cursor.executemany(
                            "DELETE FROM outbox WHERE id = %s", [(i,) for i in delivered]
                        )
                self._insert_sent(sent)
                yield
        finally:
            self._depth = 0
        del self._delivered[: len(delivered)]
        del self._sent[: len(sent)]

    def _check_fence(self, epoch: int) -> None:
        # In share mode: a process taking the lead waits for this transaction to end.
        row = self.db.execute("SELECT epoch FROM leader WHERE id = 1 FOR SHARE").fetchone()
        if row is None or int(row[0]) != epoch:
            raise LeadershipLost(
                f"{self.shown}: another process has taken the lead (epoch "
                f"{row[0] if row else '?'}, ours {epoch}); nothing was committed"
            )

    def _next_id(self, counter: str, prefix: str) -> str:
        row = self.db.execute(
            "INSERT INTO counters (name, value) VALUES (%s, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
            (counter,),
        ).fetchone()
        assert row is not None
        return f"{prefix}{row[0]}"

    # ------------------------------------------------------------------ inbound
    def accept_inbound(self, channel: str, event_id: str, payload: dict[str, Any]) -> bool:
        """Store an inbound event (committed at once); False when it was seen before."""
        with self.transaction():
            seq = self._next_id("inbound", "")
            # RETURNING, not rowcount: in a pipeline a count is known only after the sync.
            stored = self.db.execute(
                "INSERT INTO inbound (channel, event_id, payload, seq) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING seq",
                (channel, event_id, _dumps(payload), int(seq)),
            ).fetchone()
            if stored is not None and self.announce_inbound:
                self.db.execute(
                    "SELECT pg_notify(%s, current_schema())", (INBOUND_CHANNEL,)
                )  # delivered at the commit
        return stored is not None

    def mark_processed(self, channel: str, event_id: str) -> None:
        self.db.execute(
            "UPDATE inbound SET processed = 1 WHERE channel = %s AND event_id = %s",
            (channel, event_id),
        )

    def inbound_sender(self, channel: str, event_id: str) -> str | None:
        """Who sent an inbound event stored before (a removal may come without its author)."""
        row = self.db.execute(
            "SELECT payload FROM inbound WHERE channel = %s AND event_id = %s",
            (channel, event_id),
        ).fetchone()
        sender = json.loads(row[0]).get("sender_id") if row else None
        return str(sender) if sender else None

    def pending_inbound(self) -> list[dict[str, Any]]:
        """Inbound events stored but not processed (a crash came in between), oldest first."""
        rows = self.db.execute(
            "SELECT payload FROM inbound WHERE processed = 0 ORDER BY seq"
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def next_inbound(self, limit: int) -> list[dict[str, Any]]:
        """The first `limit` inbound events not processed yet, in the order they were made
        durable (by any process: the counter that numbers them is locked to the commit)."""
        rows = self.db.execute(
            "SELECT payload FROM inbound WHERE processed = 0 ORDER BY seq LIMIT %s", (limit,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def unprocessed(self) -> int:
        """How many inbound events are stored and not processed yet."""
        return self._count("SELECT count(*) FROM inbound WHERE processed = 0")

    def _count(self, query: str, args: Sequence[Any] = ()) -> int:
        row = self.db.execute(query.encode(), args).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ customers
    def resolve_customer(
        self, channel: str, external_id: str, phone: str | None, name: str | None
    ) -> CustomerView:
        e164 = normalise_phone(phone)
        with self.transaction():
            known_by: set[str] = set()
            customer_id = self._owner(channel, external_id)
            if customer_id is not None:
                known_by.add("platform id")
            elif e164 and (owner := self._owner("phone", e164)) is not None:
                customer_id = owner
                known_by.add("phone")
            new = customer_id is None
            if customer_id is None:
                customer_id = self._next_id("customer", "c")
                self.db.execute(
                    "INSERT INTO customers (id, name, phone) VALUES (%s, %s, %s)",
                    (customer_id, name, e164),
                )
            else:
                # Only when it changes something: a returning customer's lookup then writes
                # nothing, and its commit waits for no disk.
                self.db.execute(
                    "UPDATE customers SET name = coalesce(name, %(name)s), "
                    "phone = coalesce(phone, %(phone)s) WHERE id = %(id)s "
                    "AND ((name IS NULL AND %(name)s::text IS NOT NULL) "
                    "OR (phone IS NULL AND %(phone)s::text IS NOT NULL))",
                    {"name": name, "phone": e164, "id": customer_id},
                )
            for kind, value in [(channel, external_id)] + ([("phone", e164)] if e164 else []):
                self.db.execute(
                    "INSERT INTO identities (kind, value, customer_id) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (kind, value, customer_id),
                )
            view = self.get_customer(customer_id)
        assert view is not None
        return CustomerView(view.id, view.name, view.phone, view.known_by | known_by, new)

    def _owner(self, kind: str, value: str) -> str | None:
        row = self.db.execute(
            "SELECT customer_id FROM identities WHERE kind = %s AND value = %s", (kind, value)
        ).fetchone()
        return str(row[0]) if row else None

    def get_customer(self, customer_id: str) -> CustomerView | None:
        row = self.db.execute(
            "SELECT id, name, phone, volunteered FROM customers WHERE id = %s", (customer_id,)
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
        rows = self.db.execute(
            "SELECT kind, value FROM identities WHERE customer_id = %s ORDER BY kind, value",
            (customer_id,),
        ).fetchall()
        return [(str(k), str(v)) for k, v in rows]

    def link_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        with self.transaction():
            owner = self._owner(kind, value)
            if owner is not None and owner != customer_id:
                self.merge_customers(keep=owner, absorb=customer_id)
                customer_id = owner
            self.db.execute(
                "INSERT INTO identities (kind, value, customer_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (kind, value) DO UPDATE SET customer_id = excluded.customer_id",
                (kind, value, customer_id),
            )
            self.db.execute(
                "DELETE FROM identity_claims WHERE customer_id = %s AND kind = %s AND value = %s",
                (customer_id, kind, value),
            )
            view = self.get_customer(customer_id)
            assert view is not None
            volunteered = sorted(view.known_by | {kind})
            self.db.execute(
                "UPDATE customers SET volunteered = %s WHERE id = %s",
                (json.dumps(volunteered), customer_id),
            )
        return CustomerView(view.id, view.name, view.phone, frozenset(volunteered), False)

    def move_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        with self.transaction():
            self.db.execute("DELETE FROM identities WHERE kind = %s AND value = %s", (kind, value))
            return self.link_identity(customer_id, kind, value)

    def claim_identity(
        self, customer_id: str, kind: str, value: str, conversation_id: str, at: datetime
    ) -> bool:
        if self._owner(kind, value) == customer_id:
            return False
        self.db.execute(
            "INSERT INTO identity_claims (customer_id, kind, value, conversation_id, at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (customer_id, kind, value, conversation_id, in_utc(at).isoformat()),
        )
        return True

    def claims_of(self, customer_id: str) -> list[IdentityClaim]:
        rows = self.db.execute(
            "SELECT kind, value, conversation_id, at FROM identity_claims "
            "WHERE customer_id = %s ORDER BY at, kind, value",
            (customer_id,),
        ).fetchall()
        return [IdentityClaim(k, v, c, datetime.fromisoformat(a)) for k, v, c, a in rows]

    def merge_customers(self, keep: str, absorb: str) -> None:
        """Move everything of `absorb` (identities, conversations, history) to `keep`."""
        with self.transaction():
            kept, gone = self.get_customer(keep), self.get_customer(absorb)
            if kept is None or gone is None:
                raise KeyError(f"no customer {keep if kept is None else absorb!r}")
            volunteered = sorted(kept.known_by | gone.known_by)
            self.db.execute(
                "UPDATE customers SET volunteered = %s, name = coalesce(name, %s), "
                "phone = coalesce(phone, %s) WHERE id = %s",
                (json.dumps(volunteered), gone.name, gone.phone, keep),
            )
            for table in ("identities", "messages", "conversations"):
                self.db.execute(
                    f"UPDATE {table} SET customer_id = %s WHERE customer_id = %s".encode(),
                    (keep, absorb),
                )
            # What `keep` has already stays; the rest of `absorb`'s moves over.
            for table, key in (
                ("identity_claims", "kind, value"),
                ("current_conversation", "channel"),
            ):
                self.db.execute(
                    f"UPDATE {table} SET customer_id = %s WHERE customer_id = %s AND ({key}) "
                    f"NOT IN (SELECT {key} FROM {table} WHERE customer_id = %s)".encode(),
                    (keep, absorb, keep),
                )
                self.db.execute(f"DELETE FROM {table} WHERE customer_id = %s".encode(), (absorb,))
            rows = self.db.execute(
                "SELECT id, body FROM conversations WHERE customer_id = %s", (keep,)
            ).fetchall()
            for conv_id, body in rows:
                data = json.loads(body)
                data["customer_id"] = keep
                self.db.execute(
                    "UPDATE conversations SET body = %s WHERE id = %s", (_dumps(data), conv_id)
                )
            self.db.execute("DELETE FROM customers WHERE id = %s", (absorb,))

    # ------------------------------------------------------------------ flow versions
    def save_flow_version(self, version: str, graph: dict[str, Any]) -> None:
        """Keep a flow version's graph (once: a version's content never changes)."""
        with _unless_read_only(), self.transaction():
            self.db.execute(
                "INSERT INTO flow_versions (version, graph) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (version, _dumps(graph)),
            )

    def flow_version(self, version: str) -> dict[str, Any] | None:
        """The graph of a flow version kept by `save_flow_version`, or None."""
        row = self.db.execute(
            "SELECT graph FROM flow_versions WHERE version = %s", (version,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def flow_versions(self) -> list[tuple[str, str]]:
        """Every flow version kept, as (version, the flow's name), in the order the event log
        first shows each run or published (any it never shows first)."""
        rows = self.db.execute(
            "SELECT version, name FROM (SELECT v.version, v.graph::json->>'name' AS name, ("
            "  SELECT min(e.seq) FROM events e WHERE e.kind IN ('flow_path', 'flow_published')"
            "  AND e.data::json->>'version' = v.version"
            ") AS first_seq FROM flow_versions v) AS kept"
            " ORDER BY first_seq IS NOT NULL, first_seq, version"
        ).fetchall()
        return [(version, name or "") for version, name in rows]

    def flow_publications(self) -> list[dict[str, Any]]:
        """The `flow_published` events of the log ({"at", "version", "flow", "by"}), in order."""
        rows = self.db.execute(
            "SELECT at, data FROM events WHERE kind = 'flow_published' ORDER BY seq"
        ).fetchall()
        return [{**json.loads(data), "at": datetime.fromisoformat(at)} for at, data in rows]

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, role: str, token_hash: str, at: datetime) -> User:
        with self.transaction():
            check_new_user(name, role, self.user(name))
            self.db.execute(
                "INSERT INTO users (name, role, token_hash, created_at) "
                "VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
                "token_hash = excluded.token_hash, created_at = excluded.created_at, "
                "revoked_at = NULL",
                (name, role, token_hash, _utc_text(at)),
            )
        return User(name, role, token_hash, in_utc(at))

    def user(self, name: str) -> User | None:
        return self._user("name", name)

    def user_by_token_hash(self, token_hash: str) -> User | None:
        return self._user("token_hash", token_hash)

    def _user(self, column: str, value: str) -> User | None:
        row = self.db.execute(
            "SELECT name, role, token_hash, created_at, revoked_at FROM users "
            f"WHERE {column} = %s".encode(),
            (value,),
        ).fetchone()
        return _user(row) if row else None

    def users(self) -> list[User]:
        rows = self.db.execute(
            "SELECT name, role, token_hash, created_at, revoked_at FROM users ORDER BY name"
        )
        return [_user(row) for row in rows]

    def revoke_user(self, name: str, at: datetime) -> bool:
        with self.transaction():
            changed = self.db.execute(
                "UPDATE users SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL "
                "RETURNING name",
                (_utc_text(at), name),
            ).fetchone()
        return changed is not None

    # ------------------------------------------------------------------ the policy's ledger
    def opted_out(self, channel: str, account: str, address: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM opt_outs WHERE channel = %s AND account = %s AND address = %s",
            (channel, account, address),
        ).fetchone()
        return row is not None

    def set_opted_out(
        self, channel: str, account: str, address: str, opted_out: bool, at: datetime
    ) -> None:
        with self.transaction():
            if opted_out:
                self.db.execute(
                    "INSERT INTO opt_outs (channel, account, address, at) "
                    "VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (channel, account, address) DO UPDATE SET at = excluded.at",
                    (channel, account, address, _utc_text(at)),
                )
            else:
                self.db.execute(
                    "DELETE FROM opt_outs WHERE channel = %s AND account = %s AND address = %s",
                    (channel, account, address),
                )

    def opt_outs(self) -> list[dict[str, str]]:
        """Every opt-out in force: channel, account, address and when, oldest first."""
        rows = self.db.execute(
            "SELECT channel, account, address, at FROM opt_outs ORDER BY at, address"
        ).fetchall()
        return [dict(zip(("channel", "account", "address", "at"), r, strict=True)) for r in rows]

    def reached(self, scope: str, since: datetime, recipient: str) -> tuple[int, bool]:
        row = self.db.execute(
            "SELECT count(*), count(*) FILTER (WHERE recipient = %s) FROM reaches "
            "WHERE scope = %s AND at > %s",
            (recipient, scope, _utc_text(since)),
        ).fetchone()
        assert row is not None
        return int(row[0]), bool(row[1])

    def record_reach(self, scope: str, recipient: str, at: datetime) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO reaches (scope, recipient, at) VALUES (%s, %s, %s) "
                "ON CONFLICT (scope, recipient) DO UPDATE "
                "SET at = greatest(reaches.at, excluded.at)",
                (scope, recipient, _utc_text(at)),
            )

    # ------------------------------------------------------------------ conversations
    def conversation_for(
        self, customer_id: str, channel: str, account: str, now: datetime, window: timedelta
    ) -> ConversationView:
        with self.transaction():
            row = self.db.execute(
                "SELECT conversation_id FROM current_conversation "
                "WHERE customer_id = %s AND channel = %s",
                (customer_id, channel),
            ).fetchone()
            current = self.get_conversation(row[0]) if row else None
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
            self.save_conversation(conv)
            self.db.execute(
                "INSERT INTO current_conversation (customer_id, channel, conversation_id) "
                "VALUES (%s, %s, %s) ON CONFLICT (customer_id, channel) "
                "DO UPDATE SET conversation_id = excluded.conversation_id",
                (customer_id, channel, conv.id),
            )
        return conv

    def get_conversation(self, conversation_id: str) -> ConversationView | None:
        row = self.db.execute(
            "SELECT body FROM conversations WHERE id = %s", (conversation_id,)
        ).fetchone()
        return _view(json.loads(row[0])) if row else None

    def save_conversation(self, conversation: ConversationView) -> None:
        body = {f.name: getattr(conversation, f.name) for f in fields(ConversationView)}
        self.db.execute(
            "INSERT INTO conversations (id, customer_id, channel, started_at, last_activity_at, "
            "body) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "customer_id = excluded.customer_id, last_activity_at = excluded.last_activity_at, "
            "body = excluded.body",
            (
                conversation.id,
                conversation.customer_id,
                conversation.channel,
                conversation.started_at.isoformat(),
                conversation.last_activity_at.isoformat(),
                _dumps(body),
            ),
        )

    def conversations_of(self, customer_id: str) -> list[ConversationView]:
        rows = self.db.execute(
            "SELECT body FROM conversations WHERE customer_id = %s ORDER BY started_at",
            (customer_id,),
        ).fetchall()
        return [_view(json.loads(r[0])) for r in rows]

    def routed_conversations(self) -> list[ConversationView]:
        """Conversations queued or with an agent that have a stored routing request (what an
        ACD takes back after a restart), oldest routing first."""
        found = []
        for (body,) in self.db.execute("SELECT body FROM conversations"):
            data = json.loads(body)
            if data.get("status") in ("queued", "with_agent") and data.get("routing"):
                found.append(_view(data))
        return sorted(found, key=lambda c: (str(c.routing.get("entered_at")), c.id))

    def waiting_timers(self) -> list[tuple[datetime, str, str]]:
        """(deadline, conversation id, timer) of every flow waiting with a time limit."""
        out = []
        for (body,) in self.db.execute("SELECT body FROM conversations"):
            data = json.loads(body)
            waiting = (data.get("flow_state") or {}).get("waiting") or {}
            if waiting.get("deadline") and waiting.get("timer"):
                deadline = datetime.fromisoformat(waiting["deadline"])
                out.append((deadline, str(data["id"]), str(waiting["timer"])))
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
        self.db.execute(
            "INSERT INTO messages (customer_id, conversation_id, direction, content, at, sender) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
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
        rows = self.db.execute(
            "SELECT seq, conversation_id, direction, content, at, sender FROM messages "
            "WHERE customer_id = %s AND seq < %s ORDER BY seq DESC LIMIT %s",
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
        self.db.execute(
            "INSERT INTO events (kind, at, conversation_id, data) VALUES (%s, %s, %s, %s)",
            (kind, _utc_text(at), conversation_id, _dumps(data)),
        )

    def iter_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        through_seq: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The event log in time order: {"kind", "at", "conversation_id", **data} (only those
        written up to `through_seq`, when given: see `last_event_seq`)."""
        query = "SELECT kind, at, conversation_id, data, seq FROM events WHERE 1 = 1"
        args: list[Any] = []
        if through_seq is not None:
            query += " AND seq <= %s"
            args.append(through_seq)
        if start is not None:
            query += " AND at >= %s"
            args.append(_utc_text(start))
        if end is not None:
            query += " AND at < %s"
            args.append(_utc_text(end))
        # Pages by (at, seq): a long log streams without holding the connection in between.
        query += " AND (at, seq) > (%s, %s) ORDER BY at, seq LIMIT %s"
        after: tuple[str, int] = ("", 0)
        while True:
            rows = self.db.execute(query.encode(), [*args, *after, _PAGE]).fetchall()
            for kind, at, conv, data, _seq in rows:
                yield {
                    **json.loads(data),
                    "kind": kind,
                    "at": datetime.fromisoformat(at),
                    "conversation_id": conv,
                }
            if len(rows) < _PAGE:
                return
            after = (rows[-1][1], rows[-1][4])

    def agent_states(self) -> dict[str, str]:
        """Each agent's last state in the event log (its `agent_state` events)."""
        rows = self.db.execute(
            "SELECT data FROM events WHERE kind = 'agent_state' ORDER BY seq"
        ).fetchall()
        return {(d := json.loads(r[0]))["agent"]: d["state"] for r in rows}

    def last_event_seq(self) -> int:
        """The sequence number of the last event written (0 when there is none)."""
        return self._count("SELECT coalesce(max(seq), 0) FROM events")

    # ------------------------------------------------------------------ report checkpoints
    def save_report_checkpoint(
        self, at: datetime, version: int, through_seq: int, body: dict[str, Any], keep: int
    ) -> None:
        """Keep the event log folded up to `at` (the events written up to `through_seq`), and
        only the `keep` latest checkpoints. A checkpoint only saves time: a read-only login
        keeps none."""
        packed = zlib.compress(_dumps(body).encode("utf-8"))
        with _unless_read_only(), self.transaction():
            self.db.execute(
                "INSERT INTO report_checkpoints (at, version, through_seq, body) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (at) DO UPDATE SET "
                "version = excluded.version, through_seq = excluded.through_seq, "
                "body = excluded.body",
                (_utc_text(at), version, through_seq, packed),
            )
            self.db.execute(
                "DELETE FROM report_checkpoints WHERE at NOT IN "
                "(SELECT at FROM report_checkpoints ORDER BY at DESC LIMIT %s)",
                (keep,),
            )

    def report_checkpoint(
        self, not_after: datetime | None, version: int
    ) -> tuple[datetime, dict[str, Any]] | None:
        """The latest checkpoint of `version` (at or before `not_after`) that is still true; one
        that an event written later but dated before it has made stale is dropped."""
        query = "SELECT at, through_seq, body FROM report_checkpoints WHERE version = %s"
        args: list[Any] = [version]
        if not_after is not None:
            query += " AND at <= %s"
            args.append(_utc_text(not_after))
        rows = self.db.execute((query + " ORDER BY at DESC").encode(), args).fetchall()
        for at, through_seq, body in rows:
            late = self.db.execute(
                "SELECT 1 FROM events WHERE seq > %s AND at < %s LIMIT 1", (through_seq, at)
            ).fetchone()
            if late is None:
                return datetime.fromisoformat(at), json.loads(zlib.decompress(body))
            with _unless_read_only(), self.transaction():
                self.db.execute("DELETE FROM report_checkpoints WHERE at = %s", (at,))
        return None

    def report_checkpoints(self) -> list[dict[str, Any]]:
        """The checkpoints kept, latest first: moment, fold version, events folded, bytes."""
        rows = self.db.execute(
            "SELECT at, version, through_seq, octet_length(body) FROM report_checkpoints "
            "ORDER BY at DESC"
        )
        return [
            {"at": datetime.fromisoformat(at), "version": v, "through_seq": seq, "bytes": size}
            for at, v, seq, size in rows
        ]

    def clear_report_checkpoints(self) -> int:
        """Drop every checkpoint (reports then fold from the first event); how many there were."""
        with self.transaction():
            return len(self.db.execute("DELETE FROM report_checkpoints RETURNING at").fetchall())

    # ------------------------------------------------------------------ outbox
    def add_outbound(
        self,
        conversation_id: str,
        message: dict[str, Any],
        at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> int:
        """Queue a message to deliver once the current transaction commits."""
        row = self.db.execute(
            "INSERT INTO outbox (conversation_id, message, queued_at, delivered_to) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            (conversation_id, _dumps(message), at.isoformat(), json.dumps(list(delivered_to))),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def pending_outbound(
        self, conversation_ids: Collection[str] | None = None
    ) -> list[PendingSend]:
        """Messages waiting to be delivered (of these conversations), oldest first."""
        query = (
            "SELECT id, conversation_id, message, queued_at, attempts, last_error, "
            "next_attempt_at, delivered_to FROM outbox"
        )
        params: list[Any] = []
        if conversation_ids is not None:
            if not conversation_ids:
                return []
            params = [sorted(conversation_ids)]
            query += " WHERE conversation_id = ANY(%s)"
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
            for i, conv, message, queued, attempts, error, retry, took in self.db.execute(
                (query + " ORDER BY id").encode(), params
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
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s, "
            "delivered_to = %s WHERE id = %s",
            (reason, next_attempt_at.isoformat(), json.dumps(list(delivered_to)), send_id),
        )

    def outbound_done(self, send_id: int) -> None:
        """Delivered or given up on. Outside a transaction the row is deleted with the next one,
        which saves a commit per message; a crash before then delivers it again on recovery."""
        if self._depth:
            self.db.execute("DELETE FROM outbox WHERE id = %s", (send_id,))
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
            with self.db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO sent_messages ({sent_table.COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
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
        row = self.db.execute(
            f"SELECT {sent_table.COLUMNS} FROM sent_messages "
            "WHERE channel = %s AND vendor_id = %s FOR UPDATE",
            (channel, vendor_id),
        ).fetchone()
        if row is None:
            return None
        sent = sent_table.sent_of(row)
        if status_advances(sent.status, status):
            sent.status, sent.status_at, sent.error = status, at, error
            self.db.execute(
                "UPDATE sent_messages SET status = %s, status_at = %s, error = %s "
                "WHERE channel = %s AND vendor_id = %s",
                (status, _utc_text(at), error, channel, vendor_id),
            )
        return sent

    def update_sent_until(
        self, channel: str, recipient: str, status: str, until: datetime, at: datetime
    ) -> list[SentMessage]:
        rows = self.db.execute(
            f"SELECT {sent_table.COLUMNS} FROM sent_messages "
            "WHERE channel = %s AND recipient = %s AND sent_at <= %s ORDER BY sent_at FOR UPDATE",
            (channel, recipient, _utc_text(until)),
        ).fetchall()
        changed = []
        for row in rows:
            sent = sent_table.sent_of(row)
            if status_advances(sent.status, status):
                sent.status, sent.status_at = status, at
                changed.append(sent)
        if changed:
            with self.db.cursor() as cursor:
                cursor.executemany(
                    "UPDATE sent_messages SET status = %s, status_at = %s "
                    "WHERE channel = %s AND vendor_id = %s",
                    [(status, _utc_text(at), s.channel, s.vendor_id) for s in changed],
                )
        return changed

    def sent_messages(self, message_ids: Collection[str]) -> dict[str, SentMessage]:
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}
        rows = self.db.execute(
            f"SELECT {sent_table.COLUMNS} FROM sent_messages WHERE message_id = ANY(%s)",
            (wanted,),
        ).fetchall()
        found = {s.message_id: s for s in map(sent_table.sent_of, rows)}
        found.update({s.message_id: s for s in self._sent if s.message_id in set(wanted)})
        return found

    # ------------------------------------------------------------------ active flow versions
    def active_flows(self) -> dict[str, ActiveFlow]:
        """Each flow's active version, by the flow's name."""
        rows = self.db.execute(f"SELECT {active_table.COLUMNS} FROM active_flows").fetchall()
        return {row[0]: active_table.active_flow_of(row) for row in rows}

    def set_active_flow(
        self, flow: str, version: str, by: str, at: datetime, file_version: str | None = None
    ) -> None:
        """Make `version` the active one of `flow`, published `by` someone `at` a time; a
        `file_version` is the version the flow's file has at this start (None: unchanged)."""
        self.db.execute(
            f"INSERT INTO active_flows ({active_table.COLUMNS}) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (flow) DO UPDATE SET version = excluded.version, "
            "published_by = excluded.published_by, published_at = excluded.published_at, "
            "file_version = coalesce(%s, active_flows.file_version)",
            (flow, version, by, _utc_text(at), file_version or "", file_version),
        )

    # ------------------------------------------------------------------ dead letters
    def dead_letter(self, source: str, payload: dict[str, Any], reason: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO dead_letters (source, payload, reason, at) VALUES (%s, %s, %s, %s)",
            (source, _dumps(payload), reason, at.isoformat()),
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
            for i, s, p, r, a, done in self.db.execute((query + " ORDER BY id").encode())
        ]

    def mark_replayed(self, letter_id: int, at: datetime) -> None:
        self.db.execute(
            "UPDATE dead_letters SET replayed_at = %s WHERE id = %s", (at.isoformat(), letter_id)
        )


def _reason(exc: BaseException) -> str:
    """The first line of a driver error: what the server said, without the context lines."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@contextmanager
def _unless_read_only() -> Iterator[None]:
    with suppress(psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege):
        yield


def count_unprocessed(url: str, timeout: float = 2.0) -> int:
    """Inbound events stored and not processed, read on a connection of its own; raises
    psycopg.Error."""
    with psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(timeout))) as db:
        row = db.execute("SELECT count(*) FROM inbound WHERE processed = 0").fetchone()
        return int(row[0]) if row else 0
