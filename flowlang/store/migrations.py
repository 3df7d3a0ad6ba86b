"""The stores' schema, as ordered forward migrations: one numbered list for SQLite and
PostgreSQL, the SQL written once and spelled per database only where it must differ (`Step`).

A store records its version in `schema_version`; opening it applies every later migration in
one transaction (on PostgreSQL under an advisory lock, so that processes starting together
migrate once). A migration is never edited once released: changes are new migrations.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowlang.errors import FlowError
from flowlang.store.dialect import Dialect


@dataclass(frozen=True)
class Step:
    """One migration: SQL run on `both` databases, then what only one of them needs. In all
    of it `{serial}` is an auto-numbered key, `{bigint}` a 64-bit integer, `{blob}` bytes."""

    both: str = ""
    sqlite: str = ""
    postgres: str = ""

    def sql(self, database: str) -> str:
        """The step's SQL on `database` ("sqlite" or "postgres")."""
        own = self.sqlite if database == "sqlite" else self.postgres
        return ";".join(part for part in (self.both, own) if part.strip()).format_map(
            _TYPES[database]
        )


_TYPES = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "bigint": "INTEGER", "blob": "BLOB"},
    "postgres": {
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "bigint": "BIGINT",
        "blob": "BYTEA",
    },
}

MIGRATIONS: tuple[Step | str, ...] = (
    # 1: customers, identities, conversations, inbound events, history, event log, dead letters
    """
    CREATE TABLE customers (
        id TEXT PRIMARY KEY,
        name TEXT,
        phone TEXT,
        volunteered TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE identities (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        PRIMARY KEY (kind, value)
    );
    CREATE INDEX identities_by_customer ON identities(customer_id);
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        started_at TEXT NOT NULL,
        last_activity_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX conversations_by_customer ON conversations(customer_id, channel);
    CREATE TABLE current_conversation (
        customer_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        PRIMARY KEY (customer_id, channel)
    );
    CREATE TABLE inbound (
        channel TEXT NOT NULL,
        event_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        processed INTEGER NOT NULL DEFAULT 0,
        seq {bigint} NOT NULL,
        PRIMARY KEY (channel, event_id)
    );
    CREATE INDEX inbound_pending ON inbound(processed, seq);
    CREATE TABLE messages (
        seq {serial},
        customer_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        content TEXT NOT NULL,
        at TEXT NOT NULL,
        sender TEXT NOT NULL
    );
    CREATE INDEX messages_by_customer ON messages(customer_id, seq);
    CREATE TABLE events (
        seq {serial},
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        conversation_id TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events(at);
    CREATE TABLE dead_letters (
        id {serial},
        source TEXT NOT NULL,
        payload TEXT NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL,
        replayed_at TEXT
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value {bigint} NOT NULL);
    """,
    # 2: the outbox: messages saved with the state that made them, delivered after commit
    """
    CREATE TABLE outbox (
        id {serial},
        conversation_id TEXT NOT NULL,
        message TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        next_attempt_at TEXT
    );
    CREATE INDEX outbox_by_conversation ON outbox(conversation_id, id);
    """,
    # 3: which adapters already took a message, so a retry goes only to those that failed
    """
    ALTER TABLE outbox ADD COLUMN delivered_to TEXT NOT NULL DEFAULT '[]';
    """,
    # 4: report checkpoints: the event log folded up to a moment (flowlang/reporting/checkpoint.py)
    """
    CREATE TABLE report_checkpoints (
        at TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        through_seq {bigint} NOT NULL,
        body {blob} NOT NULL
    );
    """,
    # 5: event times in UTC text, so that the log sorts and filters by time as text: files
    # written before flowlang converted event times kept a host's offset ("+01:00") as given,
    # or no offset at all (taken as UTC, as the CLI takes them)
    Step(
        sqlite="""
    UPDATE events SET at = strftime('%Y-%m-%dT%H:%M:%S', at)
        || CASE WHEN substr(at, 20, 1) = '.' THEN substr(at, 20, length(at) - 25) ELSE '' END
        || '+00:00'
    WHERE at NOT LIKE '%+00:00' AND substr(at, -6, 1) IN ('+', '-') AND substr(at, -3, 1) = ':';
    UPDATE events SET at = at || '+00:00'
    WHERE substr(at, -6, 1) NOT IN ('+', '-') AND length(at) IN (19, 26)
    """,
        postgres="",  # PostgreSQL stores always wrote UTC text
    ),
    # 6: the channel policy's ledger, shared by every conversation and process: opt-outs per
    # customer address and business number (kept on one conversation before, so they are
    # carried over from there), and the customers reached outside the window per scope
    Step(
        both="""
    CREATE TABLE opt_outs (
        channel TEXT NOT NULL,
        account TEXT NOT NULL,
        address TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (channel, account, address)
    );
    CREATE TABLE reaches (
        scope TEXT NOT NULL,
        recipient TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (scope, recipient)
    );
    CREATE INDEX reaches_by_time ON reaches(scope, at);
    """,
        # opt-outs a SQLite file kept on conversations (no PostgreSQL store kept them there)
        sqlite="""
    INSERT OR IGNORE INTO opt_outs (channel, account, address, at)
        SELECT channel, coalesce(json_extract(body, '$.account'), ''),
            json_extract(body, '$.last_sender_id'), last_activity_at
        FROM conversations
        WHERE json_extract(body, '$.channel_state.opted_out') = 1
            AND coalesce(json_extract(body, '$.last_sender_id'), '') != ''
    """,
    ),
    # 7: the flow versions an engine ran (each graph, by its version), so that after a restart a
    # conversation in flight resumes on the version it started on
    """
    CREATE TABLE flow_versions (version TEXT PRIMARY KEY, graph TEXT NOT NULL);
    """,
    # 8: identities customers claimed that nothing proved (a typed account number): recorded and
    # shown, but never used to recognise or merge customers
    """
    CREATE TABLE identity_claims (
        customer_id TEXT NOT NULL REFERENCES customers(id),
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (customer_id, kind, value)
    )
    """,
    # 9: the service's users (agents, supervisors, admins) and the SHA-256 of their API token
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )
    """,
    # 10: the leader among the service processes sharing a PostgreSQL store (docs/scaling.md):
    # the epoch each process bumps when it takes the lead fences out the one before; its URL.
    # One process writes a SQLite file, so it has no leader to record.
    Step(
        postgres="""
    CREATE TABLE leader (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        epoch BIGINT NOT NULL,
        url TEXT,
        since TEXT
    );
    INSERT INTO leader (id, epoch) VALUES (1, 0)
    """
    ),
    # 11: the vendor's id of each message it accepted and the latest status its webhooks
    # reported (delivered, read, failed and why), so that a status finds its conversation
    """
    CREATE TABLE sent_messages (
        channel TEXT NOT NULL,
        vendor_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        status TEXT NOT NULL,
        status_at TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (channel, vendor_id)
    );
    CREATE INDEX sent_messages_by_message ON sent_messages(message_id);
    CREATE INDEX sent_messages_by_recipient ON sent_messages(channel, recipient, sent_at)
    """,
    # 12: each flow's active version (published over the admin API, or its file's at a start)
    # and the version its file had at the last start, so a restart runs what was published
    """
    CREATE TABLE active_flows (
        flow TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        published_by TEXT NOT NULL,
        published_at TEXT NOT NULL,
        file_version TEXT NOT NULL DEFAULT ''
    )
    """,
    # 13: on PostgreSQL the inbound log is numbered by a sequence (no cache: a number taken
    # later is larger) rather than the counter row, whose lock serialised the intake commits of
    # every process (docs/scaling.md); it goes on from the counter. A SQLite file has one
    # writer: it keeps the counter.
    Step(
        postgres="""
    CREATE SEQUENCE inbound_seq AS BIGINT CACHE 1 OWNED BY inbound.seq;
    SELECT setval('inbound_seq', 1 + greatest(
        coalesce((SELECT max(seq) FROM inbound), 0),
        coalesce((SELECT value FROM counters WHERE name = 'inbound'), 0)), false);
    ALTER TABLE inbound ALTER COLUMN seq SET DEFAULT nextval('inbound_seq');
    DELETE FROM counters WHERE name = 'inbound'
    """
    ),
    # 14: a conversation's events without reading the whole log since it started (the agent
    # workspace's flow path: a scan of every conversation's events held the engine seconds)
    "CREATE INDEX events_by_conversation ON events(conversation_id, at)",
    # 15: on SQLite the customers and their identities are stored in their keys (WITHOUT
    # ROWID): a returning customer's identity and record are one search each, where a key's
    # index led to a row stored apart (two searches each; with a million customers, pages the
    # cache rarely holds). Rebuilt in place with the same rows; PostgreSQL keeps its tables.
    Step(
        sqlite="""
    CREATE TABLE customers_keyed (
        id TEXT PRIMARY KEY,
        name TEXT,
        phone TEXT,
        volunteered TEXT NOT NULL DEFAULT '[]'
    ) WITHOUT ROWID;
    INSERT INTO customers_keyed (id, name, phone, volunteered)
        SELECT id, name, phone, volunteered FROM customers;
    CREATE TABLE identities_keyed (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        PRIMARY KEY (kind, value)
    ) WITHOUT ROWID;
    INSERT INTO identities_keyed (kind, value, customer_id)
        SELECT kind, value, customer_id FROM identities;
    DROP TABLE identities;
    DROP TABLE customers;
    ALTER TABLE customers_keyed RENAME TO customers;
    ALTER TABLE identities_keyed RENAME TO identities;
    CREATE INDEX identities_by_customer ON identities(customer_id)
    """
    ),
    # 16: the stored fold: the whole event log folded once, which reports resume from
    # (flowlang/reporting/stored_fold.py); one generation at a time
    """
    CREATE TABLE report_fold (
        generation {bigint} PRIMARY KEY,
        version INTEGER NOT NULL,
        through_seq {bigint} NOT NULL,
        events {bigint} NOT NULL,
        last_at TEXT NOT NULL,
        items {bigint} NOT NULL,
        activity {bigint} NOT NULL,
        body {blob} NOT NULL
    );
    CREATE TABLE report_fold_items (
        generation {bigint} NOT NULL,
        id TEXT NOT NULL,
        start {bigint} NOT NULL,
        media TEXT NOT NULL,
        body {blob} NOT NULL,
        PRIMARY KEY (generation, id)
    );
    CREATE TABLE report_fold_activity (
        generation {bigint} NOT NULL,
        n {bigint} NOT NULL,
        at TEXT NOT NULL,
        agent TEXT NOT NULL,
        what TEXT NOT NULL,
        conv TEXT NOT NULL,
        media TEXT,
        PRIMARY KEY (generation, n)
    )
    """,
    # 17: a webhook's unreadable payload is kept as a dead letter once: the vendor's retry of
    # the request (after a 503 whose commit had reached the store) finds its key taken
    # (`SqlStore.keep_unreadable`); other dead letters have none
    """
    ALTER TABLE dead_letters ADD COLUMN intake_key TEXT;
    CREATE UNIQUE INDEX dead_letters_by_intake_key ON dead_letters(intake_key)
    """,
    # 18: the browser's sign-in sessions (docs/workspace.md), by the SHA-256 of their id, with
    # the token they were opened with (a token revoked or replaced ends them), when they were
    # last used and when they end at the latest; an API token's optional expiry; and where the
    # customer's history stood when an agent's interaction ended (their after-call work reads
    # it up to there, never what the customer wrote after: docs/api.md)
    """
    CREATE TABLE work_ends (
        conversation_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        through_seq {bigint} NOT NULL,
        PRIMARY KEY (conversation_id, agent)
    );
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        ends_at TEXT NOT NULL
    );
    CREATE INDEX sessions_by_end ON sessions(ends_at);
    ALTER TABLE users ADD COLUMN expires_at TEXT
    """,
)


class StoreError(FlowError):
    """A store that cannot be opened: not a database, unreachable, or from a newer flowlang."""


def current_version(dialect: Dialect) -> int:
    """The schema version the store is at (0: an empty one)."""
    if not dialect.has_table("schema_version"):
        return 0
    (version,) = dialect.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(version or 0)


def migrate(dialect: Dialect, migrations: tuple[Step | str, ...] = MIGRATIONS) -> int:
    """Bring the store up to the latest version; returns the version it is at. A plain string
    among `migrations` is a step whose SQL is the same on both databases."""
    if current_version(dialect) == len(migrations):
        return len(migrations)
    with dialect.migrating():
        dialect.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = current_version(dialect)
        if version > len(migrations):
            raise StoreError(
                f"this store has schema version {version}, newer than this flowlang "
                f"({len(migrations)}); upgrade flowlang to open it"
            )
        for number in range(version + 1, len(migrations) + 1):
            step = migrations[number - 1]
            text = (Step(both=step) if isinstance(step, str) else step).sql(dialect.name)
            for statement in text.split(";"):
                if statement.strip():
                    dialect.execute(statement, None)
            dialect.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    return len(migrations)
