"""The PostgreSQL store's schema, as ordered forward migrations numbered in step with SQLite's
(`migrations.py`): migration N makes the same tables in both.

A database (or schema, the first on its `search_path`) records its version in `schema_version`;
opening it applies every later migration in one transaction, under an advisory lock so that
processes starting together migrate once. A migration is never edited once released.
"""

from __future__ import annotations

import psycopg

from flowlang.store.migrations import StoreError

MIGRATIONS: tuple[str, ...] = (
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
        seq BIGINT NOT NULL,
        PRIMARY KEY (channel, event_id)
    );
    CREATE INDEX inbound_pending ON inbound(processed, seq);
    CREATE TABLE messages (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        customer_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        content TEXT NOT NULL,
        at TEXT NOT NULL,
        sender TEXT NOT NULL
    );
    CREATE INDEX messages_by_customer ON messages(customer_id, seq);
    CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        conversation_id TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events(at);
    CREATE TABLE dead_letters (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source TEXT NOT NULL,
        payload TEXT NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL,
        replayed_at TEXT
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)
    """,
    # 2: the outbox: messages saved with the state that made them, delivered after commit
    """
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        message TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        next_attempt_at TEXT
    );
    CREATE INDEX outbox_by_conversation ON outbox(conversation_id, id)
    """,
    # 3: which adapters already took a message, so a retry goes only to those that failed
    """
    ALTER TABLE outbox ADD COLUMN delivered_to TEXT NOT NULL DEFAULT '[]'
    """,
    # 4: report checkpoints: the event log folded up to a moment (flowlang/reporting/checkpoint.py)
    """
    CREATE TABLE report_checkpoints (
        at TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        through_seq BIGINT NOT NULL,
        body BYTEA NOT NULL
    )
    """,
    # 5: (SQLite: event times converted to UTC text) Postgres stores always wrote UTC text
    "",
    # 6: the channel policy's ledger (SQLite also carried opt-outs over from conversations,
    # which no Postgres store kept)
    """
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
    CREATE INDEX reaches_by_time ON reaches(scope, at)
    """,
    # 7: the flow versions an engine ran (each graph, by its version)
    """
    CREATE TABLE flow_versions (version TEXT PRIMARY KEY, graph TEXT NOT NULL)
    """,
    # 8: identities customers claimed that nothing proved (a typed account number)
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
    # 10: the leader among the service processes sharing the store (docs/scaling.md): the
    # epoch each process bumps when it takes the lead fences out the one before; its URL
    """
    CREATE TABLE leader (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        epoch BIGINT NOT NULL,
        url TEXT,
        since TEXT
    );
    INSERT INTO leader (id, epoch) VALUES (1, 0)
    """,
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
)


def current_version(db: psycopg.Connection[tuple[object, ...]]) -> int:
    row = db.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    (version,) = db.execute("SELECT max(version) FROM schema_version").fetchone() or (0,)
    return int(str(version or 0))


def migrate(
    db: psycopg.Connection[tuple[object, ...]], migrations: tuple[str, ...] = MIGRATIONS
) -> int:
    """Bring the schema up to the latest version; returns the version it is at."""
    if current_version(db) == len(migrations):
        return len(migrations)
    with db.transaction():
        if db.execute("SELECT current_schema()").fetchone() == (None,):
            raise StoreError("no schema to create the tables in: check the search_path")
        # One process migrates; the others wait here, then find the work done.
        db.execute("SELECT pg_advisory_xact_lock(hashtext('flowlang:' || current_schema()))")
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = current_version(db)
        if version > len(migrations):
            raise StoreError(
                f"this store has schema version {version}, newer than this flowlang "
                f"({len(migrations)}); upgrade flowlang to open it"
            )
        for number in range(version + 1, len(migrations) + 1):
            for statement in migrations[number - 1].split(";"):
                if statement.strip():
                    db.execute(statement.encode())
            db.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
    return len(migrations)
