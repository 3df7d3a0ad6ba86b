"""The SQLite store's schema, as ordered forward migrations.

A file records its version in `schema_version`; opening it applies every later migration in
one transaction. A migration is never edited once released: changes are new migrations.
"""

from __future__ import annotations

import sqlite3

from flowlang.errors import FlowError

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
        seq INTEGER NOT NULL,
        PRIMARY KEY (channel, event_id)
    );
    CREATE INDEX inbound_pending ON inbound(processed, seq);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        customer_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        content TEXT NOT NULL,
        at TEXT NOT NULL,
        sender TEXT NOT NULL
    );
    CREATE INDEX messages_by_customer ON messages(customer_id, seq);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        conversation_id TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events(at);
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        payload TEXT NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL,
        replayed_at TEXT
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
    # 2: the outbox: messages saved with the state that made them, delivered after commit
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
        through_seq INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    """,
    # 5: event times in UTC text, so that the log sorts and filters by time as text: files
    # written before flowlang converted event times kept a host's offset ("+01:00") as given,
    # or no offset at all (taken as UTC, as the CLI takes them)
    """
    UPDATE events SET at = strftime('%Y-%m-%dT%H:%M:%S', at)
        || CASE WHEN substr(at, 20, 1) = '.' THEN substr(at, 20, length(at) - 25) ELSE '' END
        || '+00:00'
    WHERE at NOT LIKE '%+00:00' AND substr(at, -6, 1) IN ('+', '-') AND substr(at, -3, 1) = ':';
    UPDATE events SET at = at || '+00:00'
    WHERE substr(at, -6, 1) NOT IN ('+', '-') AND length(at) IN (19, 26)
    """,
    # 6: the channel policy's ledger, shared by every conversation and process: opt-outs per
    # customer address and business number (kept on one conversation before, so they are
    # carried over from there), and the customers reached outside the window per scope
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
    CREATE INDEX reaches_by_time ON reaches(scope, at);
    INSERT OR IGNORE INTO opt_outs (channel, account, address, at)
        SELECT channel, coalesce(json_extract(body, '$.account'), ''),
            json_extract(body, '$.last_sender_id'), last_activity_at
        FROM conversations
        WHERE json_extract(body, '$.channel_state.opted_out') = 1
            AND coalesce(json_extract(body, '$.last_sender_id'), '') != ''
    """,
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
    # 10: (PostgreSQL: the leader among the service processes sharing the store) one process
    # writes a SQLite file, so it has no leader to record
    "",
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


class StoreError(FlowError):
    """A store file that cannot be opened: not a database, or from a newer flowlang."""


def current_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection, migrations: tuple[str, ...] = MIGRATIONS) -> int:
    """Bring the file up to the latest version; returns the version it is at."""
    version = current_version(db)
    if version > len(migrations):
        raise StoreError(
            f"this store file has schema version {version}, newer than this flowlang "
            f"({len(migrations)}); upgrade flowlang to open it"
        )
    if version == len(migrations):
        return version
    db.execute("BEGIN IMMEDIATE")
    try:
        for number in range(version + 1, len(migrations) + 1):
            for statement in migrations[number - 1].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(migrations)
