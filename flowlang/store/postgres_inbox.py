"""The webhook intake's writer on a PostgreSQL store (docs/scaling.md, "The intake").

Every `flowlang serve` process sharing a PostgreSQL store makes its webhooks' events durable
in the shared inbound log on a connection of its own, from the intake's thread
(`flowlang/service/intake.py`, as on SQLite with the inbox file): the acknowledgement waits
for that commit only, never for the engine's turn, whichever process leads. The events are
numbered and their conversations locked as `PostgresStore.number_inbound` says, in a
transaction that waits for the server once (the numbers come back with its commit); a commit
that stored new events tells the leader (`NOTIFY`), unless `announce()` says this process
leads: its engine is woken directly (`Intake.on_commit`), and a transaction that notifies
holds PostgreSQL's one notification lock from its commit until it is durable. Unreadable payloads
are kept as dead letters in the same transaction. The connection is never fenced: taking a
webhook decides nothing, so a process that is not (or no longer) the leader still takes them.
A connection the server dropped is opened again at the next batch (`Reconnect`): the batch that
found it lost is refused (503: the vendor sends it again), none after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from flowlang.store.inbox import Appended, Entry
from flowlang.store.postgres import PostgresStore
from flowlang.store.reconnect import Reconnect, StoreUnreachable

APPLICATION_NAME = "flowlang-intake"


class PostgresInbox:
    """Appends webhook requests' entries to the shared inbound log (`append`), on its own
    connection; `close` when done."""

    def __init__(self, url: str, announce: Callable[[], bool] = lambda: True) -> None:
        """Raises StoreError when the store cannot be opened. `announce()`: whether a commit
        should NOTIFY (asked at each; False while this process leads)."""
        self.store = PostgresStore(url, APPLICATION_NAME)
        self.announce = announce
        self.reconnect = Reconnect(APPLICATION_NAME)

    def append(self, requests: Sequence[Sequence[Entry]]) -> list[Appended]:
        """Every request's entries in one transaction (one disk sync): the events numbered in
        the order given (a seq each, None for one seen before), the letters kept as dead
        letters (None: they are not in the log). Raises psycopg.Error when nothing could be
        written, StoreUnreachable when the connection was found lost (nothing written) and
        until it is open again."""
        store = self.store
        store.ensure_open(self.reconnect)
        events = [
            (entry.channel, entry.event_id, entry.payload)
            for entries in requests
            for entry in entries
            if entry.letter is None and entry.event_id is not None
        ]
        store.announce_inbound = self.announce()
        try:
            with store.transaction():  # one round trip: the numbers come back with the commit
                numbers = store.accept_numbered(events)
                for entries in requests:
                    for entry in entries:
                        letter = entry.letter
                        if letter is not None:
                            store.keep_unreadable(
                                letter.source, letter.payload, letter.reason, letter.at
                            )
        except psycopg.Error as exc:
            if not store.dialect.closed:
                raise
            self.reconnect.lost(exc)  # opened again at the next batch
            raise StoreUnreachable(f"{APPLICATION_NAME}: the connection was lost") from exc
        seqs = iter(numbers())
        return [
            Appended(
                [
                    next(seqs) if entry.letter is None and entry.event_id is not None else None
                    for entry in entries
                ]
            )
            for entries in requests
        ]

    def close(self) -> None:
        self.store.close()
